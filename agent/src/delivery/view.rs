//! What `GET /v1/delivery` shows (and `outpostctl update check|now` prints).

use outpost_proto::updates::UpdateOffer;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Idle,
    Checking,
    /// An offer is waiting for a download window (metered mode).
    WaitingForWindow,
    Downloading,
    Installing,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryView {
    pub channel: String,
    pub phase: Phase,
    /// The version of the booted slot's bundle (what the hub is told).
    pub current_version: Option<String>,
    pub last_check: Option<String>,
    /// The hub's current offer, if any.
    pub offer: Option<UpdateOffer>,
    /// Bytes of the offered bundle on disk, and received from the hub since the agent started.
    pub downloaded: u64,
    pub fetched: u64,
    /// One line: the outcome of the last cycle.
    pub last_result: Option<String>,
}

impl DeliveryView {
    pub fn new(channel: &str) -> Self {
        DeliveryView {
            channel: channel.to_owned(),
            phase: Phase::Idle,
            current_version: None,
            last_check: None,
            offer: None,
            downloaded: 0,
            fetched: 0,
            last_result: None,
        }
    }
}

/// `POST /v1/delivery/check` and `/v1/delivery/now` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CycleView {
    /// `up_to_date`, `offered`, `installed`, `skipped`, `waiting_for_window`, `failed`.
    pub result: String,
    pub message: String,
    pub offer: Option<UpdateOffer>,
    pub fetched: u64,
}
