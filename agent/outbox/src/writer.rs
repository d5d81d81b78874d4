//! The writer thread: the only connection that writes, and group commit.
//!
//! It blocks for a first request, drains whatever else is already queued (up to
//! [`MAX_BATCH_REQUESTS`]), applies all of it in ONE transaction and commits — one fsync for
//! the whole batch — and only then answers each request. Publishers that arrive while a commit
//! is in progress simply form the next batch, so throughput grows with concurrency while every
//! answer still means "on disk".

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::sync::Arc;
use std::time::Instant;

use rusqlite::Connection;
use tokio::sync::Notify;

use crate::eviction_log::EvictionLog;
use crate::ledger::Ledger;
use crate::ops::{Apply, EvictionNote};
use crate::request::Request;
use crate::{Accepted, Clock, EnqueueError, OutboxError};

/// Upper bound on requests per transaction, so one commit (and the latency of its first
/// request) stays bounded under any load.
pub(crate) const MAX_BATCH_REQUESTS: usize = 4096;

/// State shared between the writer thread and `Outbox` handles.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub commits: AtomicU64,
    pub new_records: Arc<Notify>,
}

/// What one request produced inside the transaction; sent only after COMMIT.
enum Outcome {
    Enqueued(Result<Accepted, EnqueueError>),
    Count(usize),
}

/// Why a batch failed.
enum BatchError {
    /// A statement failed while applying the requests: other requests may still succeed alone.
    Apply(rusqlite::Error),
    /// BEGIN or COMMIT failed: retrying request by request would most likely fail the same way.
    Transaction(rusqlite::Error),
}

pub(crate) struct Writer {
    conn: Connection,
    /// `None` after a failed transaction: reloaded from the database before the next batch.
    ledger: Option<Ledger>,
    max_bytes: u64,
    clock: Clock,
    shared: Arc<Shared>,
    eviction_log: EvictionLog,
}

/// rusqlite errors are not `Clone`; when one failure must be reported to many requests, each
/// gets an equivalent copy.
fn copy_error(e: &rusqlite::Error) -> rusqlite::Error {
    match e {
        rusqlite::Error::SqliteFailure(code, message) => {
            rusqlite::Error::SqliteFailure(*code, message.clone())
        }
        other => crate::schema::custom_error(rusqlite::ffi::SQLITE_ERROR, other.to_string()),
    }
}

impl Writer {
    pub(crate) fn new(
        conn: Connection,
        max_bytes: u64,
        clock: Clock,
        shared: Arc<Shared>,
    ) -> Result<Self, OutboxError> {
        let ledger = Ledger::load(&conn)?;
        Ok(Self {
            conn,
            ledger: Some(ledger),
            max_bytes,
            clock,
            shared,
            eviction_log: EvictionLog::default(),
        })
    }

    /// The thread body. Returns after a `Shutdown` request (having answered everything queued
    /// before it) or when every sender is gone. Requests still queued behind `Shutdown` are
    /// dropped unanswered, so their receipts resolve to "closed" — never to a false success.
    pub(crate) fn run(mut self, rx: Receiver<Request>) {
        let mut batch: Vec<Request> = Vec::new();
        loop {
            let first = match self.eviction_log.next_deadline(Instant::now()) {
                None => match rx.recv() {
                    Ok(request) => request,
                    Err(_) => break,
                },
                Some(timeout) => match rx.recv_timeout(timeout) {
                    Ok(request) => request,
                    Err(RecvTimeoutError::Timeout) => {
                        self.log_eviction_tick();
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => break,
                },
            };
            let mut shutdown = false;
            match first {
                Request::Shutdown => shutdown = true,
                request => batch.push(request),
            }
            while !shutdown && batch.len() < MAX_BATCH_REQUESTS {
                match rx.try_recv() {
                    Ok(Request::Shutdown) => shutdown = true,
                    Ok(request) => batch.push(request),
                    Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
                }
            }
            if !batch.is_empty() {
                self.process(std::mem::take(&mut batch));
            }
            self.log_eviction_tick();
            if shutdown {
                break;
            }
        }
        if let Some(line) = self.eviction_log.finish() {
            tracing::warn!("{line}");
        }
    }

    fn log_eviction_tick(&mut self) {
        if let Some(line) = self.eviction_log.tick(Instant::now()) {
            tracing::warn!("{line}");
        }
    }

    /// Runs `batch` as one transaction and answers every request. If a statement fails, the
    /// batch is rolled back and each request is retried in a transaction of its own, so one
    /// failing request cannot take the others down with it.
    fn process(&mut self, batch: Vec<Request>) {
        let now_ms = (self.clock)();
        match self.apply_batch(&batch, now_ms) {
            Ok((outcomes, evictions)) => {
                self.shared.commits.fetch_add(1, Ordering::Relaxed);
                self.note_evictions(evictions);
                let mut inserted = false;
                for (request, outcome) in batch.into_iter().zip(outcomes) {
                    inserted |= matches!(
                        &outcome,
                        Outcome::Enqueued(Ok(Accepted {
                            duplicate: false,
                            ..
                        }))
                    );
                    reply(request, outcome);
                }
                if inserted {
                    // notify_one stores a permit when the uploader is not waiting yet, so a
                    // commit that lands just before it starts waiting is not missed.
                    self.shared.new_records.notify_one();
                }
            }
            Err(BatchError::Apply(e)) if batch.len() > 1 => {
                tracing::warn!(error = %e, requests = batch.len(), "outbox batch failed; retrying its requests one by one");
                for request in batch {
                    self.process(vec![request]);
                }
            }
            Err(BatchError::Apply(e) | BatchError::Transaction(e)) => {
                tracing::error!(error = %e, requests = batch.len(), "outbox transaction failed");
                for request in batch {
                    fail(request, &e);
                }
            }
        }
    }

    fn apply_batch(
        &mut self,
        batch: &[Request],
        now_ms: i64,
    ) -> Result<(Vec<Outcome>, Vec<EvictionNote>), BatchError> {
        if self.ledger.is_none() {
            self.ledger = Some(Ledger::load(&self.conn).map_err(BatchError::Transaction)?);
        }
        // IMMEDIATE takes the write lock up front, so a concurrent writer in another process
        // (outpostctl) makes us wait busy_timeout here rather than fail mid-batch.
        self.conn
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(BatchError::Transaction)?;
        let applied = self.apply_all(batch, now_ms);
        let result = match applied {
            Ok(done) => match self.conn.execute_batch("COMMIT") {
                Ok(()) => Ok(done),
                Err(e) => Err(BatchError::Transaction(e)),
            },
            Err(e) => Err(BatchError::Apply(e)),
        };
        if result.is_err() {
            if !self.conn.is_autocommit() {
                if let Err(e) = self.conn.execute_batch("ROLLBACK") {
                    tracing::error!(error = %e, "outbox rollback failed");
                }
            }
            // The in-memory ledger saw changes that were rolled back.
            self.ledger = None;
        }
        result
    }

    fn apply_all(
        &mut self,
        batch: &[Request],
        now_ms: i64,
    ) -> rusqlite::Result<(Vec<Outcome>, Vec<EvictionNote>)> {
        let ledger = match self.ledger.as_mut() {
            Some(ledger) => ledger,
            None => {
                return Err(crate::schema::custom_error(
                    rusqlite::ffi::SQLITE_ERROR,
                    "ledger not loaded".into(),
                ))
            }
        };
        let mut apply = Apply {
            conn: &self.conn,
            ledger,
            max_bytes: self.max_bytes,
            now_ms,
            evictions: Vec::new(),
        };
        let mut outcomes = Vec::with_capacity(batch.len());
        for request in batch {
            let outcome = match request {
                Request::Enqueue { record, .. } => Outcome::Enqueued(apply.enqueue(record)?),
                Request::Ack { ids, .. } => Outcome::Count(apply.ack(ids)?),
                Request::Reject { items, .. } => Outcome::Count(apply.reject(items)?),
                Request::Quarantine { items, .. } => Outcome::Count(apply.quarantine(items)?),
                Request::Probe { .. } => Outcome::Count(apply.probe()?),
                // Never queued in a batch (the run loop filters it out); answering nothing is right.
                Request::Shutdown => Outcome::Count(0),
            };
            outcomes.push(outcome);
        }
        let evictions = std::mem::take(&mut apply.evictions);
        apply.ledger.flush(&self.conn)?;
        Ok((outcomes, evictions))
    }

    fn note_evictions(&mut self, evictions: Vec<EvictionNote>) {
        let now = Instant::now();
        for note in evictions {
            if let Some(line) =
                self.eviction_log
                    .evicted(now, note.priority, note.count, &note.for_stream)
            {
                tracing::warn!("{line}");
            }
        }
    }
}

/// Sends a committed outcome. A receiver that was dropped (the caller stopped waiting) is not
/// an error: the change is committed either way.
fn reply(request: Request, outcome: Outcome) {
    match (request, outcome) {
        (Request::Enqueue { reply, .. }, Outcome::Enqueued(result)) => {
            let _ = reply.send(result);
        }
        (
            Request::Ack { reply, .. }
            | Request::Reject { reply, .. }
            | Request::Quarantine { reply, .. }
            | Request::Probe { reply },
            Outcome::Count(n),
        ) => {
            let _ = reply.send(Ok(n));
        }
        // Outcomes are produced in request order by `apply_all`, so kinds always match; a
        // mismatch would drop the sender, which the caller sees as "closed", not as success.
        _ => {}
    }
}

fn fail(request: Request, e: &rusqlite::Error) {
    match request {
        Request::Enqueue { reply, .. } => {
            let _ = reply.send(Err(EnqueueError::Storage(e.to_string())));
        }
        Request::Ack { reply, .. }
        | Request::Reject { reply, .. }
        | Request::Quarantine { reply, .. }
        | Request::Probe { reply } => {
            let _ = reply.send(Err(OutboxError::Storage(copy_error(e))));
        }
        Request::Shutdown => {}
    }
}
