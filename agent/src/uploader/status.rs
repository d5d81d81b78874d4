//! What the uploader last did, shared read-only with the API (status, outbox view, metrics).
//! Only the uploader task writes it, a few times per batch, so a mutex costs nothing here and
//! publishes never touch it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UploaderState {
    /// No `[hub]` configured: records are only queued.
    Disabled,
    /// No connection open; waiting for records.
    Idle,
    /// A connection to the hub is open (uploading or kept alive for the next batch).
    Connected,
    /// The last attempt failed; waiting `next_attempt_ms` before retrying.
    BackingOff,
}

#[derive(Debug, Clone, Serialize)]
pub struct UploaderSnapshot {
    pub state: UploaderState,
    pub last_success_ms: Option<i64>,
    pub last_error: Option<String>,
    pub last_error_ms: Option<i64>,
    pub consecutive_failures: u32,
    pub next_attempt_ms: Option<i64>,
    pub batches_total: u64,
    pub errors_total: u64,
    pub records_acked_total: u64,
    pub records_rejected_total: u64,
}

#[derive(Debug)]
struct Inner {
    state: UploaderState,
    last_success_ms: Option<i64>,
    last_error: Option<String>,
    last_error_ms: Option<i64>,
    consecutive_failures: u32,
    next_attempt_ms: Option<i64>,
}

#[derive(Debug)]
pub struct UploaderStatus {
    inner: Mutex<Inner>,
    batches_total: AtomicU64,
    errors_total: AtomicU64,
    acked_total: AtomicU64,
    rejected_total: AtomicU64,
}

impl UploaderStatus {
    pub fn new(enabled: bool) -> Self {
        let state = if enabled {
            UploaderState::Idle
        } else {
            UploaderState::Disabled
        };
        Self {
            inner: Mutex::new(Inner {
                state,
                last_success_ms: None,
                last_error: None,
                last_error_ms: None,
                consecutive_failures: 0,
                next_attempt_ms: None,
            }),
            batches_total: AtomicU64::new(0),
            errors_total: AtomicU64::new(0),
            acked_total: AtomicU64::new(0),
            rejected_total: AtomicU64::new(0),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        // A poisoned lock only means a panic elsewhere mid-update; the fields are still sane.
        let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }

    pub fn set_connected(&self, connected: bool) {
        self.with(|i| {
            if i.state != UploaderState::BackingOff {
                i.state = if connected {
                    UploaderState::Connected
                } else {
                    UploaderState::Idle
                };
            }
        });
    }

    pub fn success(&self, now_ms: i64, acked: u64, rejected: u64) {
        self.batches_total.fetch_add(1, Ordering::Relaxed);
        self.acked_total.fetch_add(acked, Ordering::Relaxed);
        self.rejected_total.fetch_add(rejected, Ordering::Relaxed);
        self.with(|i| {
            i.state = UploaderState::Connected;
            i.last_success_ms = Some(now_ms);
            i.consecutive_failures = 0;
            i.next_attempt_ms = None;
        });
    }

    /// Records a failed attempt; returns the new consecutive-failure count.
    pub fn failure(&self, now_ms: i64, error: String) -> u32 {
        self.errors_total.fetch_add(1, Ordering::Relaxed);
        self.with(|i| {
            i.last_error = Some(error);
            i.last_error_ms = Some(now_ms);
            i.consecutive_failures = i.consecutive_failures.saturating_add(1);
            i.consecutive_failures
        })
    }

    pub fn backing_off(&self, until_ms: i64) {
        self.with(|i| {
            i.state = UploaderState::BackingOff;
            i.next_attempt_ms = Some(until_ms);
        });
    }

    pub fn retrying(&self) {
        self.with(|i| {
            if i.state == UploaderState::BackingOff {
                i.state = UploaderState::Idle;
            }
            i.next_attempt_ms = None;
        });
    }

    pub fn snapshot(&self) -> UploaderSnapshot {
        let (
            state,
            last_success_ms,
            last_error,
            last_error_ms,
            consecutive_failures,
            next_attempt_ms,
        ) = self.with(|i| {
            (
                i.state,
                i.last_success_ms,
                i.last_error.clone(),
                i.last_error_ms,
                i.consecutive_failures,
                i.next_attempt_ms,
            )
        });
        UploaderSnapshot {
            state,
            last_success_ms,
            last_error,
            last_error_ms,
            consecutive_failures,
            next_attempt_ms,
            batches_total: self.batches_total.load(Ordering::Relaxed),
            errors_total: self.errors_total.load(Ordering::Relaxed),
            records_acked_total: self.acked_total.load(Ordering::Relaxed),
            records_rejected_total: self.rejected_total.load(Ordering::Relaxed),
        }
    }
}
