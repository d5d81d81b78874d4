//! Reads on the separate read connection: the next upload batch and the dead letters.
//!
//! In WAL mode these reads see the last committed state and never block the writer.

use outpost_proto::{checksum, RecordId, StreamName};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, Row};
use serde::Serialize;

use crate::StoredRecord;

/// Reason recorded for a row whose payload no longer matches its checksum.
pub const CORRUPT_CHECKSUM: &str = "corrupt on disk: checksum mismatch";

/// A record the hub rejected or that was found corrupt, kept for inspection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeadLetter {
    /// Text as stored; not validated, since a corrupt row may hold anything.
    pub id: String,
    pub stream: String,
    pub reason: String,
    pub dead_at_ms: i64,
    pub created_at_ms: i64,
    pub sha256: String,
    pub size: u64,
}

/// A pending row that cannot be sent as it is, and why.
#[derive(Debug)]
pub(crate) struct Corrupt {
    pub seq: i64,
    pub id: String,
    pub reason: String,
}

/// What one pass over pending rows found.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    pub records: Vec<StoredRecord>,
    pub corrupt: Vec<Corrupt>,
}

/// Text of a column whatever its storage class (a tampered row may hold a blob or a number).
fn lossy_text(row: &Row<'_>, i: usize) -> rusqlite::Result<String> {
    Ok(match row.get_ref(i)? {
        ValueRef::Text(t) | ValueRef::Blob(t) => String::from_utf8_lossy(t).into_owned(),
        ValueRef::Integer(n) => n.to_string(),
        ValueRef::Real(f) => f.to_string(),
        ValueRef::Null => String::new(),
    })
}

/// Decodes and verifies one pending row; `Err` carries the quarantine reason.
fn decode(row: &Row<'_>, seq: i64) -> rusqlite::Result<Result<(StoredRecord, u64), String>> {
    let Ok(id) = RecordId::parse(&lossy_text(row, 1)?) else {
        return Ok(Err("corrupt on disk: invalid id".into()));
    };
    let Ok(stream) = StreamName::parse(&lossy_text(row, 2)?) else {
        return Ok(Err("corrupt on disk: invalid stream name".into()));
    };
    let priority = match row.get_ref(3)? {
        ValueRef::Integer(rank) => outpost_proto::Priority::from_rank(rank),
        _ => None,
    };
    let Some(priority) = priority else {
        return Ok(Err("corrupt on disk: invalid priority".into()));
    };
    let created_at_ms = match row.get_ref(4)? {
        ValueRef::Integer(ms) => ms,
        _ => return Ok(Err("corrupt on disk: invalid created_at_ms".into())),
    };
    let payload = match row.get_ref(5)? {
        ValueRef::Blob(b) | ValueRef::Text(b) => b.to_vec(),
        _ => return Ok(Err("corrupt on disk: missing payload".into())),
    };
    let sha256 = lossy_text(row, 6)?;
    if !checksum::matches(&payload, &sha256) {
        return Ok(Err(CORRUPT_CHECKSUM.into()));
    }
    let size = match row.get_ref(7)? {
        ValueRef::Integer(n) => u64::try_from(n).unwrap_or(0),
        _ => 0,
    };
    Ok(Ok((
        StoredRecord {
            seq,
            id,
            stream,
            priority,
            created_at_ms,
            payload,
            sha256,
        },
        size,
    )))
}

/// The oldest pending records in `seq` order (global creation order, hence per-stream order),
/// up to `max_records` and `max_bytes` of accounted size — but at least one record if any is
/// pending, so a single record larger than `max_bytes` can still be uploaded. Corrupt rows do
/// not count towards either limit; they are returned separately for quarantine.
pub(crate) fn next_batch(
    conn: &Connection,
    max_records: usize,
    max_bytes: usize,
) -> rusqlite::Result<Batch> {
    let mut batch = Batch::default();
    if max_records == 0 {
        return Ok(batch);
    }
    let max_bytes = max_bytes as u64;
    let mut bytes = 0u64;
    let mut after = i64::MIN;
    // One read transaction, so all pages come from the same snapshot.
    let tx = conn.unchecked_transaction()?;
    let mut stmt = tx.prepare_cached(
        "SELECT seq, id, stream, priority, created_at_ms, payload, sha256, size
         FROM records WHERE seq > ?1 ORDER BY seq LIMIT ?2",
    )?;
    'pages: loop {
        let want = max_records - batch.records.len();
        // A little slack so a few corrupt rows do not cost an extra round trip.
        let limit = i64::try_from(want.saturating_add(8)).unwrap_or(i64::MAX);
        let mut rows = stmt.query(rusqlite::params![after, limit])?;
        let mut seen = 0i64;
        while let Some(row) = rows.next()? {
            seen += 1;
            let seq: i64 = row.get(0)?;
            after = seq;
            match decode(row, seq)? {
                Ok((record, size)) => {
                    if !batch.records.is_empty() && bytes.saturating_add(size) > max_bytes {
                        break 'pages;
                    }
                    bytes = bytes.saturating_add(size);
                    batch.records.push(record);
                    if batch.records.len() >= max_records {
                        break 'pages;
                    }
                }
                Err(reason) => batch.corrupt.push(Corrupt {
                    seq,
                    id: lossy_text(row, 1)?,
                    reason,
                }),
            }
        }
        if seen < limit {
            break; // no more rows
        }
    }
    drop(stmt);
    tx.finish()?;
    Ok(batch)
}

/// The most recent dead letters, newest first.
pub(crate) fn dead_letters(conn: &Connection, limit: usize) -> rusqlite::Result<Vec<DeadLetter>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut stmt = conn.prepare_cached(
        "SELECT id, stream, reason, dead_at_ms, created_at_ms, sha256, size
         FROM dead_letter ORDER BY seq DESC LIMIT ?1",
    )?;
    let rows = stmt.query_map([limit], |r| {
        Ok(DeadLetter {
            id: lossy_text(r, 0)?,
            stream: lossy_text(r, 1)?,
            reason: lossy_text(r, 2)?,
            dead_at_ms: r.get(3)?,
            created_at_ms: r.get(4)?,
            sha256: lossy_text(r, 5)?,
            size: u64::try_from(r.get::<_, i64>(6)?).unwrap_or(0),
        })
    })?;
    rows.collect()
}
