//! Opening connections and creating/migrating the schema, versioned with `PRAGMA user_version`.

use std::path::Path;
use std::time::Duration;

use rusqlite::{ffi, Connection, OpenFlags};

use crate::OutboxError;

/// The schema this code reads and writes. Bump it and add a step to [`migrate`] for each change.
pub(crate) const SCHEMA_VERSION: i64 = 1;

/// How long a connection waits for a lock held by another process (e.g. `outpostctl`) before
/// giving up with SQLITE_BUSY.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Version 1.
///
/// - `records`: pending records. `seq` is AUTOINCREMENT so it never goes backwards, even after the
///   newest record was deleted: upload order is `seq` order, which keeps every stream in order.
///   `records_evict` serves eviction (lowest priority, oldest first); `records_stream` serves the
///   oldest pending record per stream in `stats`.
/// - `dead_letter`: records the hub rejected or that were corrupt on disk; kept, never retried.
/// - `stream_stats`: per-stream counters, updated in the same transaction as the change they count.
///   `pending`/`pending_bytes` are absolute values mirrored from the writer's in-memory ledger;
///   the other counters only ever grow.
/// - `usage`: bytes and records per priority, so opening needs no scan of `records`.
const V1: &str = "
CREATE TABLE records (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    id            TEXT    NOT NULL UNIQUE,
    stream        TEXT    NOT NULL,
    priority      INTEGER NOT NULL,
    created_at_ms INTEGER NOT NULL,
    payload       BLOB    NOT NULL,
    sha256        TEXT    NOT NULL,
    size          INTEGER NOT NULL
);
CREATE INDEX records_evict ON records (priority, seq);
CREATE INDEX records_stream ON records (stream, seq);

CREATE TABLE dead_letter (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    id            TEXT    NOT NULL,
    stream        TEXT    NOT NULL,
    priority      INTEGER NOT NULL,
    created_at_ms INTEGER NOT NULL,
    payload       BLOB    NOT NULL,
    sha256        TEXT    NOT NULL,
    size          INTEGER NOT NULL,
    reason        TEXT    NOT NULL,
    dead_at_ms    INTEGER NOT NULL
);
CREATE INDEX dead_letter_at ON dead_letter (dead_at_ms);

CREATE TABLE stream_stats (
    stream            TEXT PRIMARY KEY,
    priority          INTEGER NOT NULL,
    pending           INTEGER NOT NULL DEFAULT 0,
    pending_bytes     INTEGER NOT NULL DEFAULT 0,
    delivered         INTEGER NOT NULL DEFAULT 0,
    evicted           INTEGER NOT NULL DEFAULT 0,
    refused           INTEGER NOT NULL DEFAULT 0,
    rejected          INTEGER NOT NULL DEFAULT 0,
    quarantined       INTEGER NOT NULL DEFAULT 0,
    last_delivered_ms INTEGER,
    last_evicted_ms   INTEGER
) WITHOUT ROWID;

CREATE TABLE usage (
    priority INTEGER PRIMARY KEY,
    bytes    INTEGER NOT NULL DEFAULT 0,
    records  INTEGER NOT NULL DEFAULT 0
);
INSERT INTO usage (priority) VALUES (0), (1), (2);
";

fn open_error(path: &Path) -> impl Fn(rusqlite::Error) -> OutboxError + '_ {
    move |source| OutboxError::Open {
        path: path.to_owned(),
        source,
    }
}

/// A rusqlite error carrying our own message (for conditions SQLite itself does not report).
pub(crate) fn custom_error(code: i32, message: String) -> rusqlite::Error {
    rusqlite::Error::SqliteFailure(ffi::Error::new(code), Some(message))
}

/// Opens the single write connection: WAL, `synchronous=FULL` (a commit is on disk when COMMIT
/// returns, which is what lets the writer acknowledge after COMMIT), and creates or migrates
/// the schema.
pub(crate) fn open_writer(path: &Path) -> Result<Connection, OutboxError> {
    let err = open_error(path);
    let mut conn = Connection::open(path).map_err(&err)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(&err)?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(&err)?;
    if !mode.eq_ignore_ascii_case("wal") {
        // Without WAL the reader would block the writer and vice versa.
        return Err(err(custom_error(
            ffi::SQLITE_CANTOPEN,
            format!("journal_mode=WAL is not available here (SQLite kept {mode:?})"),
        )));
    }
    conn.execute_batch(
        "PRAGMA synchronous = FULL;
         PRAGMA foreign_keys = OFF;
         PRAGMA temp_store = MEMORY;
         PRAGMA cache_size = -8192;
         PRAGMA journal_size_limit = 67108864;",
    )
    .map_err(&err)?;
    // The writer uses about a dozen distinct statements; keep them all prepared.
    conn.set_prepared_statement_cache_capacity(64);
    migrate(&mut conn).map_err(&err)?;
    Ok(conn)
}

/// Opens a connection for reads only. In WAL mode it sees the last committed state and never
/// blocks the writer.
pub(crate) fn open_reader(path: &Path) -> Result<Connection, OutboxError> {
    let err = open_error(path);
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let conn = Connection::open_with_flags(path, flags).map_err(&err)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(&err)?;
    // A programming error that tries to write through this connection fails instead of
    // competing with the writer thread.
    conn.execute_batch("PRAGMA query_only = ON; PRAGMA cache_size = -4096;")
        .map_err(&err)?;
    conn.set_prepared_statement_cache_capacity(16);
    Ok(conn)
}

/// Brings the schema to [`SCHEMA_VERSION`] in one transaction, so a crash mid-migration leaves
/// the previous version intact.
fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(custom_error(
            ffi::SQLITE_MISMATCH,
            format!("database schema version {version} is newer than this agent understands ({SCHEMA_VERSION})"),
        ));
    }
    if version == SCHEMA_VERSION {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    if version < 1 {
        tx.execute_batch(V1)?;
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    tx.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_schema_once_and_refuses_newer_versions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("o.db");
        drop(open_writer(&path).unwrap());
        // Reopening must not try to create the tables again.
        let conn = open_writer(&path).unwrap();
        let v: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, SCHEMA_VERSION);
        let mode: String = conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        drop(conn);
        assert!(matches!(open_writer(&path), Err(OutboxError::Open { .. })));
    }
}
