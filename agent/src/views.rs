//! JSON documents of `GET /v1/status` and `GET /v1/outbox`: served by the API, read by
//! outpostctl. Adding a field is compatible; renaming one is not.

use outpost_proto::Priority;
use serde::{Deserialize, Serialize};

use crate::uploader::status::UploaderState;

mod update;
pub use update::{
    InstallRequest, InstallState, InstallView, MarkRequest, MarkView, SlotStatusView, SlotView,
    SlotsView, WrittenSlot,
};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusView {
    pub version: String,
    pub device_id: Option<String>,
    pub uptime_s: u64,
    /// `[hub] url`, or null when the agent only queues.
    pub hub: Option<String>,
    pub outbox: TotalsView,
    pub uploader: UploaderView,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TotalsView {
    pub pending: u64,
    pub pending_bytes: u64,
    pub used_bytes: u64,
    pub max_bytes: u64,
    pub delivered: u64,
    pub evicted: u64,
    pub refused: u64,
    pub rejected: u64,
    /// Records kept aside (rejected by the hub or found damaged), not counted as pending.
    #[serde(default)]
    pub dead_letter: u64,
    /// Outbox write transactions since the agent started.
    pub commits: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OutboxView {
    pub totals: TotalsView,
    pub streams: Vec<StreamView>,
    pub uploader: UploaderView,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StreamView {
    pub stream: String,
    /// Priority of the stream's most recent record.
    pub priority: Option<Priority>,
    pub pending: u64,
    pub pending_bytes: u64,
    pub delivered: u64,
    pub evicted: u64,
    pub refused: u64,
    pub rejected: u64,
    /// Records found damaged on disk and set aside.
    #[serde(default)]
    pub quarantined: u64,
    /// Unix ms at which the oldest pending record was stored.
    pub oldest_pending_ms: Option<i64>,
    /// Unix ms of the last record of this stream the hub acknowledged.
    pub last_delivered_ms: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UploaderView {
    pub state: UploaderState,
    pub last_success_ms: Option<i64>,
    pub last_error: Option<String>,
    pub last_error_ms: Option<i64>,
    pub consecutive_failures: u32,
    pub next_attempt_ms: Option<i64>,
    pub batches_total: u64,
    pub errors_total: u64,
}
