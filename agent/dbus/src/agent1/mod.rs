//! `io.outpost.Agent1` at `/io/outpost/Agent1`: what RAUC's API has no word for: the health
//! gate, the outbox, the device identity, and publishing a record.
//!
//! The structured answers are JSON strings, the same documents `outpostctl` and the HTTP API
//! already speak (`GET /v1/health`, `GET /v1/outbox`): one schema, versioned with the API,
//! rather than a second, D-Bus-typed copy that would drift from it.
//!
//! | member | answer |
//! |---|---|
//! | `HealthStatus() -> s` | the health gate's status (JSON) |
//! | `OutboxStats() -> s` | totals, streams and uploader state (JSON, as `GET /v1/outbox`) |
//! | `Identity() -> s` | device id and hub (JSON) |
//! | `Publish(s stream, s json_payload, s priority) -> s record_id` | stored durably before it answers; `priority` `""` takes the configured default |
//!
//! Errors: `org.freedesktop.DBus.Error.InvalidArgs` for a bad stream, priority or payload,
//! `org.freedesktop.DBus.Error.Failed` otherwise; the message is the same one line the HTTP
//! API would answer.

pub mod interface;

use outpost_health::runner::BoxFuture;

pub const OBJECT_PATH: &str = "/io/outpost/Agent1";
pub const INTERFACE: &str = "io.outpost.Agent1";

/// A failed call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AgentError {
    /// The caller's arguments are wrong.
    #[error("{0}")]
    InvalidArgs(String),
    #[error("{0}")]
    Failed(String),
}

/// The agent behind `io.outpost.Agent1`.
pub trait AgentBackend: Send + Sync {
    fn health_status(&self) -> BoxFuture<'_, Result<String, AgentError>>;
    fn outbox_stats(&self) -> BoxFuture<'_, Result<String, AgentError>>;
    fn identity(&self) -> BoxFuture<'_, Result<String, AgentError>>;
    /// Stores one record; answers its id once it is durable.
    fn publish(
        &self,
        stream: String,
        payload: String,
        priority: String,
    ) -> BoxFuture<'_, Result<String, AgentError>>;
}
