//! API errors: a status, a one-line `{"error":"..."}` body and a reason label for metrics.

use std::sync::atomic::{AtomicU64, Ordering};

use hyper::StatusCode;
use outpost_outbox::EnqueueError;

use super::response::{json_error, Resp};

/// Why a request was refused; the label of `outpost_api_requests_rejected_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    BodyTooLarge,
    InvalidJson,
    InvalidStream,
    InvalidPriority,
    InvalidIdempotencyKey,
    InvalidQuery,
    BodyRead,
    OutboxFull,
    RecordTooLarge,
    Conflict,
    ShuttingDown,
    Storage,
    NotFound,
    MethodNotAllowed,
    InvalidRequest,
    UpdatesNotConfigured,
    WorkloadsNotConfigured,
    InstallBusy,
    UpdateFailed,
}

impl Reason {
    pub const ALL: [Reason; 19] = [
        Reason::BodyTooLarge,
        Reason::InvalidJson,
        Reason::InvalidStream,
        Reason::InvalidPriority,
        Reason::InvalidIdempotencyKey,
        Reason::InvalidQuery,
        Reason::BodyRead,
        Reason::OutboxFull,
        Reason::RecordTooLarge,
        Reason::Conflict,
        Reason::ShuttingDown,
        Reason::Storage,
        Reason::NotFound,
        Reason::MethodNotAllowed,
        Reason::InvalidRequest,
        Reason::UpdatesNotConfigured,
        Reason::WorkloadsNotConfigured,
        Reason::InstallBusy,
        Reason::UpdateFailed,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Reason::BodyTooLarge => "body_too_large",
            Reason::InvalidJson => "invalid_json",
            Reason::InvalidStream => "invalid_stream",
            Reason::InvalidPriority => "invalid_priority",
            Reason::InvalidIdempotencyKey => "invalid_idempotency_key",
            Reason::InvalidQuery => "invalid_query",
            Reason::BodyRead => "body_read_error",
            Reason::OutboxFull => "outbox_full",
            Reason::RecordTooLarge => "record_too_large",
            Reason::Conflict => "conflict",
            Reason::ShuttingDown => "shutting_down",
            Reason::Storage => "storage_error",
            Reason::NotFound => "not_found",
            Reason::MethodNotAllowed => "method_not_allowed",
            Reason::InvalidRequest => "invalid_request",
            Reason::UpdatesNotConfigured => "updates_not_configured",
            Reason::WorkloadsNotConfigured => "workloads_not_configured",
            Reason::InstallBusy => "install_busy",
            Reason::UpdateFailed => "update_failed",
        }
    }

    fn index(self) -> usize {
        Reason::ALL.iter().position(|r| *r == self).unwrap_or(0)
    }
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub reason: Reason,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, reason: Reason, message: impl Into<String>) -> Self {
        Self {
            status,
            reason,
            message: message.into(),
        }
    }

    pub fn bad_request(reason: Reason, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, reason, message)
    }

    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            Reason::BodyTooLarge,
            format!("request body is larger than api.max_body_bytes ({limit} bytes)"),
        )
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, Reason::NotFound, "no such endpoint (see GET /v1/status, GET /v1/outbox, GET /metrics, POST /v1/outbox/{stream}, GET|POST /v1/install, GET /v1/slots, POST /v1/slots/mark)")
    }

    pub fn method_not_allowed(allowed: &str) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            Reason::MethodNotAllowed,
            format!("method not allowed here; use {allowed}"),
        )
    }

    pub fn into_response(self) -> Resp {
        json_error(self.status, &self.message)
    }
}

impl From<EnqueueError> for ApiError {
    fn from(e: EnqueueError) -> Self {
        let (status, reason) = match &e {
            EnqueueError::Full { .. } => (StatusCode::INSUFFICIENT_STORAGE, Reason::OutboxFull),
            EnqueueError::TooLarge { .. } => {
                (StatusCode::PAYLOAD_TOO_LARGE, Reason::RecordTooLarge)
            }
            EnqueueError::Conflict { .. } => (StatusCode::CONFLICT, Reason::Conflict),
            EnqueueError::Closed => (StatusCode::SERVICE_UNAVAILABLE, Reason::ShuttingDown),
            EnqueueError::Storage(_) => (StatusCode::INTERNAL_SERVER_ERROR, Reason::Storage),
        };
        Self::new(status, reason, crate::oneline(&e.to_string()))
    }
}

/// Counts refused requests per reason with plain atomics: no lock on the request path.
#[derive(Debug, Default)]
pub struct RejectCounters([AtomicU64; Reason::ALL.len()]);

impl RejectCounters {
    pub fn count(&self, reason: Reason) {
        self.0[reason.index()].fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(&self, reason: Reason) -> u64 {
        self.0[reason.index()].load(Ordering::Relaxed)
    }
}
