//! The durable outbox: records acknowledged to a publisher are on disk (SQLite, WAL,
//! `synchronous=FULL`) and stay there until the hub acknowledges them, they are evicted for a
//! more important write, or the hub rejects them (then they move to the dead letters).
//!
//! Every write goes through one writer thread that owns the only write connection and commits
//! whatever requests are waiting in one transaction (group commit: one fsync per batch); each
//! request is answered only after that COMMIT returned. Reads (`next_batch`, `stats`,
//! `dead_letters`) use a separate connection and never block the writer.
//!
//! Modules, one concept each: `schema` (open, pragmas, migrations), `writer` (group commit),
//! `ops` (what each request does in the transaction), `admission` (bounded store, eviction
//! choice), `ledger` (in-memory byte accounting mirrored in the counters), `eviction_log`
//! (rate-limited eviction warnings), `reader` (upload batches, dead letters), `stats`,
//! `receipt` (the future/blocking answer), `request` (messages to the writer).

mod admission;
mod eviction_log;
mod ledger;
mod ops;
mod reader;
mod receipt;
mod request;
mod schema;
mod stats;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use outpost_proto::{Priority, RecordId, StreamName};
use rusqlite::Connection;
use tokio::sync::{oneshot, Notify};

pub use admission::{record_size, RECORD_OVERHEAD};
pub use reader::{DeadLetter, CORRUPT_CHECKSUM};
pub use receipt::Receipt;
pub use stats::{OutboxStats, StreamStats, Totals};

use request::{PreparedRecord, Request};
use writer::{Shared, Writer};

/// Wall clock in Unix milliseconds; replaceable in tests.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

fn system_clock() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[derive(Debug, Clone)]
pub struct OutboxConfig {
    /// SQLite file; its directory must exist.
    pub path: PathBuf,
    /// Upper bound on the sum of stored record sizes (payload + per-record overhead).
    pub max_bytes: u64,
}

/// A record to store. `payload` must already be validated JSON (the API does that).
#[derive(Debug, Clone)]
pub struct NewRecord {
    pub id: Option<RecordId>,
    pub stream: StreamName,
    pub priority: Priority,
    pub payload: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub id: RecordId,
    /// The id was already pending with the same payload: nothing new was stored.
    pub duplicate: bool,
}

/// Which stored record an upload carried: its id AND its checksum. Acks and rejections name
/// records this way, because an id alone can meanwhile belong to another record (the one sent
/// was evicted and the id published again with a new payload) that the hub never saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    pub id: RecordId,
    pub sha256: String,
}

#[derive(Debug, Clone)]
pub struct StoredRecord {
    pub seq: i64,
    pub id: RecordId,
    pub stream: StreamName,
    pub priority: Priority,
    pub created_at_ms: i64,
    pub payload: Vec<u8>,
    pub sha256: String,
}

impl StoredRecord {
    pub fn sent(&self) -> Sent {
        Sent {
            id: self.id.clone(),
            sha256: self.sha256.clone(),
        }
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum EnqueueError {
    #[error("outbox full: stream {stream} ({priority}) needs {needed} bytes and nothing of lower or equal evictable priority is left to evict")]
    Full {
        stream: String,
        priority: Priority,
        needed: u64,
    },
    #[error("record of {size} bytes can never fit in an outbox of {max_bytes} bytes")]
    TooLarge { size: u64, max_bytes: u64 },
    #[error("id {id} is already pending with a different payload")]
    Conflict { id: String },
    #[error("outbox is shutting down")]
    Closed,
    #[error("storage error: {0}")]
    Storage(String),
}

#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("cannot open outbox {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("storage error: {0}")]
    Storage(#[from] rusqlite::Error),
    #[error("outbox is shutting down")]
    Closed,
}

/// Handle to an open outbox. Cheap to clone (all clones share one writer thread and one read
/// connection); `Send + Sync`. The writer stops when [`Outbox::close`] is called or the last
/// clone is dropped, after finishing every request queued before that.
#[derive(Clone)]
pub struct Outbox {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    max_bytes: u64,
    requests: mpsc::Sender<Request>,
    closed: AtomicBool,
    writer: Mutex<Option<JoinHandle<()>>>,
    /// The read connection. A Mutex because a SQLite connection is not Sync; readers are
    /// short and do not contend with the writer.
    reader: Mutex<Connection>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox")
            .field("path", &self.inner.path)
            .field("max_bytes", &self.inner.max_bytes)
            .field("closed", &self.inner.closed.load(Ordering::Relaxed))
            .finish()
    }
}

/// Locks a mutex even if a thread panicked while holding it: the guarded values (a read
/// connection, a join handle) stay valid after such a panic.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn enqueue_closed() -> Result<Accepted, EnqueueError> {
    Err(EnqueueError::Closed)
}

fn count_closed() -> Result<usize, OutboxError> {
    Err(OutboxError::Closed)
}

impl Outbox {
    /// Opens (creating or migrating) the outbox at `cfg.path` and starts its writer thread.
    pub fn open(cfg: OutboxConfig) -> Result<Self, OutboxError> {
        Self::open_with_clock(cfg, Arc::new(system_clock))
    }

    /// Like [`open`](Self::open) with a custom clock (Unix ms) for `created_at_ms`,
    /// `dead_at_ms` and the `last_*_ms` counters.
    pub fn open_with_clock(cfg: OutboxConfig, clock: Clock) -> Result<Self, OutboxError> {
        let conn = schema::open_writer(&cfg.path)?;
        let reader = schema::open_reader(&cfg.path)?;
        let shared = Arc::new(Shared::default());
        let writer = Writer::new(conn, cfg.max_bytes, clock, Arc::clone(&shared))?;
        let (requests, rx) = mpsc::channel();
        let handle = std::thread::Builder::new()
            .name("outbox-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| OutboxError::Open {
                path: cfg.path.clone(),
                source: schema::custom_error(
                    rusqlite::ffi::SQLITE_ERROR,
                    format!("cannot start writer thread: {e}"),
                ),
            })?;
        Ok(Self {
            inner: Arc::new(Inner {
                path: cfg.path,
                max_bytes: cfg.max_bytes,
                requests,
                closed: AtomicBool::new(false),
                writer: Mutex::new(Some(handle)),
                reader: Mutex::new(reader),
                shared,
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    pub fn max_bytes(&self) -> u64 {
        self.inner.max_bytes
    }

    /// Queues a record for the next group commit. The receipt resolves once the record is on
    /// disk (`Accepted`), or with the reason it was not stored. Assigns a UUIDv7 when `id` is
    /// `None`.
    pub fn submit(&self, record: NewRecord) -> Receipt<Result<Accepted, EnqueueError>> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Receipt::ready(Err(EnqueueError::Closed), enqueue_closed);
        }
        let record = match PreparedRecord::new(record) {
            Ok(record) => record,
            Err(e) => return Receipt::ready(Err(e), enqueue_closed),
        };
        let (reply, rx) = oneshot::channel();
        self.send(Request::Enqueue { record, reply }, rx, enqueue_closed)
    }

    /// [`submit`](Self::submit) and wait: returns once the record is durable.
    pub fn enqueue(&self, record: NewRecord) -> Result<Accepted, EnqueueError> {
        self.submit(record).wait()
    }

    /// Deletes records the hub acknowledged and counts them as delivered. Unknown ids (evicted
    /// meanwhile, or acknowledged twice) are ignored. Resolves to the number deleted.
    pub fn ack(&self, ids: Vec<Sent>) -> Receipt<Result<usize, OutboxError>> {
        let (reply, rx) = oneshot::channel();
        self.send(Request::Ack { ids, reply }, rx, count_closed)
    }

    /// Commits a write transaction that changes no data (the health gate's "outbox writable"
    /// check). Resolves to `Ok(1)` once the commit is on disk.
    pub fn probe(&self) -> Receipt<Result<usize, OutboxError>> {
        let (reply, rx) = oneshot::channel();
        self.send(Request::Probe { reply }, rx, count_closed)
    }

    /// Moves records the hub rejected to the dead letters with its reason (kept, never
    /// retried). Resolves to the number moved.
    pub fn reject(&self, rejected: Vec<(Sent, String)>) -> Receipt<Result<usize, OutboxError>> {
        let (reply, rx) = oneshot::channel();
        self.send(
            Request::Reject {
                items: rejected,
                reply,
            },
            rx,
            count_closed,
        )
    }

    fn send<T>(&self, request: Request, rx: oneshot::Receiver<T>, closed: fn() -> T) -> Receipt<T> {
        if self.inner.closed.load(Ordering::Acquire) || self.inner.requests.send(request).is_err() {
            return Receipt::ready(closed(), closed);
        }
        Receipt::waiting(rx, closed)
    }

    /// The oldest pending records (by `seq`, so every stream stays in order), up to
    /// `max_records` and about `max_bytes` of accounted record size; at least one record
    /// whenever any is pending, even if it alone exceeds `max_bytes`. Every payload is checked
    /// against its SHA-256: a corrupt row is moved to the dead letters (reason
    /// [`CORRUPT_CHECKSUM`]) and skipped. Blocks on SQLite I/O (and, if a corrupt row was found,
    /// on the commit that quarantines it): call it from a blocking context.
    pub fn next_batch(
        &self,
        max_records: usize,
        max_bytes: usize,
    ) -> Result<Vec<StoredRecord>, OutboxError> {
        let batch = reader::next_batch(&lock(&self.inner.reader), max_records, max_bytes)?;
        if !batch.corrupt.is_empty() {
            for c in &batch.corrupt {
                tracing::error!(seq = c.seq, id = %c.id, reason = %c.reason, "outbox record is corrupt on disk; moved to the dead letters");
            }
            let items = batch
                .corrupt
                .into_iter()
                .map(|c| (c.seq, c.reason))
                .collect();
            let (reply, rx) = oneshot::channel();
            if let Err(e) = self
                .send(Request::Quarantine { items, reply }, rx, count_closed)
                .wait()
            {
                // The rows are skipped in this batch either way; they will be found again.
                tracing::warn!(error = %e, "could not quarantine corrupt outbox records");
            }
        }
        Ok(batch.records)
    }

    /// Counters per stream and totals.
    pub fn stats(&self) -> Result<OutboxStats, OutboxError> {
        let commits = self.commits();
        Ok(stats::read(
            &lock(&self.inner.reader),
            self.inner.max_bytes,
            commits,
        )?)
    }

    /// The most recent `limit` dead letters, newest first.
    pub fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, OutboxError> {
        Ok(reader::dead_letters(&lock(&self.inner.reader), limit)?)
    }

    /// Notified after each commit that stored at least one new record. Uses `notify_one`, so a
    /// commit that happens while nobody waits leaves a permit: meant for a single uploader.
    pub fn new_records(&self) -> Arc<Notify> {
        Arc::clone(&self.inner.shared.new_records)
    }

    /// Transactions committed since open (each is one fsync); with concurrent publishers this
    /// grows much slower than the number of records.
    pub fn commits(&self) -> u64 {
        self.inner
            .shared
            .commits
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Stops accepting writes, lets the writer finish every request queued so far, and waits
    /// for it to exit. Other clones then get `Closed` from writes; reads keep working.
    pub fn close(self) {
        self.inner.shutdown();
    }
}

impl Inner {
    fn shutdown(&self) {
        self.closed.store(true, Ordering::Release);
        let handle = lock(&self.writer).take();
        if let Some(handle) = handle {
            // If the writer already exited the send fails, which is fine.
            let _ = self.requests.send(Request::Shutdown);
            if handle.join().is_err() {
                tracing::error!("outbox writer thread panicked");
            }
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.shutdown();
    }
}
