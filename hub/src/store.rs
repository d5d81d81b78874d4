//! The hub's SQLite database: one row per `(device, id)`. Inserting is idempotent (`INSERT OR
//! IGNORE` on the unique key) so a batch that is retried after a lost response is stored once
//! and acked again. WAL with `synchronous=FULL` makes a commit durable before the hub answers,
//! and lets `records`/`stats` read while the hub is writing.

use std::path::Path;
use std::time::Duration;

use rusqlite::{params, Connection, OpenFlags, OptionalExtension};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no hub database at {0} (has `outpost-hub serve` run with this config yet?)")]
    Missing(String),
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS records (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    device         TEXT    NOT NULL,
    id             TEXT    NOT NULL,
    stream         TEXT    NOT NULL,
    created_at_ms  INTEGER NOT NULL,
    received_at_ms INTEGER NOT NULL,
    sha256         TEXT    NOT NULL,
    payload        TEXT    NOT NULL,
    UNIQUE (device, id)
);
CREATE INDEX IF NOT EXISTS records_by_time ON records (device, stream, created_at_ms, seq);
";

/// A record to store. `payload` is the exact JSON text the checksum covers.
#[derive(Debug, Clone, Copy)]
pub struct NewRecord<'a> {
    pub id: &'a str,
    pub stream: &'a str,
    pub created_at_ms: i64,
    pub sha256: &'a str,
    pub payload: &'a str,
}

/// What happened to one record of an insert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Newly stored.
    Stored,
    /// Already stored for this device with the same checksum: nothing written, ack again.
    Duplicate,
    /// Already stored for this device with a different checksum: refuse, keep the first.
    Conflict,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    pub seq: i64,
    pub device: String,
    pub id: String,
    pub stream: String,
    pub created_at_ms: i64,
    pub received_at_ms: i64,
    pub sha256: String,
    pub payload: String,
}

/// Optional equality filters for listing.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub device: Option<String>,
    pub stream: Option<String>,
}

pub struct Store {
    /// Also used by `crate::devices` (tokens, enrolled and revoked devices).
    pub(crate) conn: Connection,
}

impl Store {
    /// Opens (creating if needed) the database at `path`. The parent folder must exist.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::init(Connection::open(path)?)
    }

    /// Opens an existing database without creating one (for the read-side subcommands).
    pub fn open_existing(path: &Path) -> Result<Self, StoreError> {
        if !path.exists() {
            return Err(StoreError::Missing(path.display().to_string()));
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI;
        Self::init(Connection::open_with_flags(path, flags)?)
    }

    pub fn open_in_memory() -> Result<Self, StoreError> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(conn: Connection) -> Result<Self, StoreError> {
        conn.busy_timeout(Duration::from_secs(5))?;
        // journal_mode answers with a row, so it is queried rather than executed.
        let _mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute_batch(SCHEMA)?;
        conn.execute_batch(crate::devices::SCHEMA)?;
        crate::devices::migrate(&conn)?;
        conn.execute_batch(crate::releases::SCHEMA)?;
        conn.execute_batch(crate::workloads::SCHEMA)?;
        Ok(Self { conn })
    }

    /// Stores `records` for `device` in one transaction, committed before returning.
    /// Returns one outcome per record, in order.
    pub fn insert_all(
        &mut self,
        device: &str,
        records: &[NewRecord<'_>],
        received_at_ms: i64,
    ) -> Result<Vec<Outcome>, StoreError> {
        let tx = self.conn.transaction()?;
        let mut outcomes = Vec::with_capacity(records.len());
        {
            let mut insert = tx.prepare_cached(
                "INSERT OR IGNORE INTO records (device, id, stream, created_at_ms, received_at_ms, sha256, payload)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            let mut existing =
                tx.prepare_cached("SELECT sha256 FROM records WHERE device = ?1 AND id = ?2")?;
            for r in records {
                let sha = r.sha256.to_ascii_lowercase();
                let inserted = insert.execute(params![
                    device,
                    r.id,
                    r.stream,
                    r.created_at_ms,
                    received_at_ms,
                    sha,
                    r.payload
                ])?;
                let outcome = if inserted == 1 {
                    Outcome::Stored
                } else {
                    let stored: Option<String> = existing
                        .query_row(params![device, r.id], |row| row.get(0))
                        .optional()?;
                    match stored {
                        Some(s) if s.eq_ignore_ascii_case(&sha) => Outcome::Duplicate,
                        _ => Outcome::Conflict,
                    }
                };
                outcomes.push(outcome);
            }
        }
        // Last seen of an enrolled device: free, it rides on the batch's own commit.
        crate::devices::touch(&tx, device, received_at_ms)?;
        tx.commit()?;
        Ok(outcomes)
    }

    /// Calls `f` for every record matching `filter`, ordered by device, stream, created_at_ms
    /// and then insertion order. Streaming keeps `stats` flat in memory on large databases.
    pub fn for_each(
        &self,
        filter: &Filter,
        mut f: impl FnMut(StoredRecord),
    ) -> Result<(), StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT seq, device, id, stream, created_at_ms, received_at_ms, sha256, payload FROM records
             WHERE (?1 IS NULL OR device = ?1) AND (?2 IS NULL OR stream = ?2)
             ORDER BY device, stream, created_at_ms, seq",
        )?;
        let mut rows = stmt.query(params![filter.device, filter.stream])?;
        while let Some(row) = rows.next()? {
            f(StoredRecord {
                seq: row.get(0)?,
                device: row.get(1)?,
                id: row.get(2)?,
                stream: row.get(3)?,
                created_at_ms: row.get(4)?,
                received_at_ms: row.get(5)?,
                sha256: row.get(6)?,
                payload: row.get(7)?,
            });
        }
        Ok(())
    }

    pub fn list(&self, filter: &Filter) -> Result<Vec<StoredRecord>, StoreError> {
        let mut out = Vec::new();
        self.for_each(filter, |r| out.push(r))?;
        Ok(out)
    }

    pub fn count(&self) -> Result<u64, StoreError> {
        let n: i64 = self
            .conn
            .query_row("SELECT COUNT(*) FROM records", [], |r| r.get(0))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec<'a>(id: &'a str, sha: &'a str, created: i64) -> NewRecord<'a> {
        NewRecord {
            id,
            stream: "temp",
            created_at_ms: created,
            sha256: sha,
            payload: "{\"v\":1}",
        }
    }

    #[test]
    fn insert_is_idempotent_per_device() {
        let mut s = Store::open_in_memory().unwrap();
        let a = "a".repeat(64);
        assert_eq!(
            s.insert_all("d1", &[rec("x", &a, 1), rec("y", &a, 2)], 10)
                .unwrap(),
            [Outcome::Stored, Outcome::Stored]
        );
        // Same id and checksum again (case-insensitive hex): acked, not stored twice.
        assert_eq!(
            s.insert_all("d1", &[rec("x", &a.to_uppercase(), 1)], 11)
                .unwrap(),
            [Outcome::Duplicate]
        );
        // The same id from another device is a different record.
        assert_eq!(
            s.insert_all("d2", &[rec("x", &a, 1)], 12).unwrap(),
            [Outcome::Stored]
        );
        assert_eq!(s.count().unwrap(), 3);
        let first = &s
            .list(&Filter {
                device: Some("d1".into()),
                stream: None,
            })
            .unwrap()[0];
        assert_eq!((first.id.as_str(), first.received_at_ms), ("x", 10));
    }

    #[test]
    fn conflicting_checksum_keeps_the_first() {
        let mut s = Store::open_in_memory().unwrap();
        let (a, b) = ("a".repeat(64), "b".repeat(64));
        s.insert_all("d1", &[rec("x", &a, 1)], 10).unwrap();
        assert_eq!(
            s.insert_all("d1", &[rec("x", &b, 1), rec("z", &b, 1)], 11)
                .unwrap(),
            [Outcome::Conflict, Outcome::Stored]
        );
        let all = s.list(&Filter::default()).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all.iter().find(|r| r.id == "x").unwrap().sha256, a);
    }

    #[test]
    fn listing_order_and_filters() {
        let mut s = Store::open_in_memory().unwrap();
        let a = "a".repeat(64);
        s.insert_all("d2", &[rec("late", &a, 5)], 1).unwrap();
        s.insert_all(
            "d1",
            &[
                rec("second", &a, 5),
                rec("first", &a, 1),
                rec("third", &a, 5),
            ],
            1,
        )
        .unwrap();
        let ids: Vec<_> = s
            .list(&Filter::default())
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(ids, ["first", "second", "third", "late"]);
        let only = s
            .list(&Filter {
                device: Some("d2".into()),
                stream: Some("temp".into()),
            })
            .unwrap();
        assert_eq!(only.len(), 1);
        assert!(s
            .list(&Filter {
                device: None,
                stream: Some("other".into())
            })
            .unwrap()
            .is_empty());
    }

    #[test]
    fn open_existing_requires_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hub.sqlite");
        assert!(matches!(
            Store::open_existing(&path),
            Err(StoreError::Missing(_))
        ));
        Store::open(&path).unwrap();
        assert_eq!(Store::open_existing(&path).unwrap().count().unwrap(), 0);
    }
}
