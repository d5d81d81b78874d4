//! What every request handler shares. Read-only after start except for atomics.

use std::sync::Arc;
use std::time::Instant;

use outpost_outbox::Outbox;

use super::errors::RejectCounters;
use crate::config::Config;
use crate::uploader::status::UploaderStatus;

pub struct AppState {
    pub outbox: Outbox,
    pub config: Arc<Config>,
    pub started: Instant,
    pub rejected: RejectCounters,
    pub uploader: Arc<UploaderStatus>,
}

impl AppState {
    pub fn new(outbox: Outbox, config: Arc<Config>, uploader: Arc<UploaderStatus>) -> Self {
        Self {
            outbox,
            config,
            started: Instant::now(),
            rejected: RejectCounters::default(),
            uploader,
        }
    }
}
