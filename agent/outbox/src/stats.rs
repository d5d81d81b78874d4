//! Counters and gauges for `outpostctl status` and metrics, read from the committed state.

use outpost_proto::Priority;
use rusqlite::{Connection, OptionalExtension};
use serde::Serialize;

use crate::ledger::priority_from_rank;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StreamStats {
    pub stream: String,
    /// Priority of the stream's most recent write.
    pub priority: Priority,
    pub pending: u64,
    pub pending_bytes: u64,
    /// Acknowledged by the hub and removed.
    pub delivered: u64,
    /// Removed to make room for a write of equal or higher priority.
    pub evicted: u64,
    /// Writes refused because the store was full or the record too large.
    pub refused: u64,
    /// Refused by the hub and moved to the dead letters.
    pub rejected: u64,
    /// Found corrupt on disk and moved to the dead letters (an addition to the brief's list).
    pub quarantined: u64,
    /// `created_at_ms` of the oldest pending record.
    pub oldest_pending_ms: Option<i64>,
    pub last_delivered_ms: Option<i64>,
    pub last_evicted_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Totals {
    pub pending: u64,
    /// Sum of the accounted sizes of pending records (compare with `max_bytes`).
    pub used_bytes: u64,
    pub max_bytes: u64,
    pub dead_letter: u64,
    /// Transactions committed by the writer since this process opened the outbox.
    pub commits: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutboxStats {
    /// Sorted by stream name; includes streams with nothing pending.
    pub streams: Vec<StreamStats>,
    pub totals: Totals,
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// Reads all stats in one read transaction, so the numbers are mutually consistent.
pub(crate) fn read(
    conn: &Connection,
    max_bytes: u64,
    commits: u64,
) -> rusqlite::Result<OutboxStats> {
    let tx = conn.unchecked_transaction()?;
    let mut streams = Vec::new();
    {
        let mut stmt = tx.prepare_cached(
            "SELECT stream, priority, pending, pending_bytes, delivered, evicted, refused, rejected,
                    quarantined, last_delivered_ms, last_evicted_ms
             FROM stream_stats ORDER BY stream",
        )?;
        let mut oldest = tx.prepare_cached(
            "SELECT created_at_ms FROM records WHERE stream = ?1 ORDER BY seq LIMIT 1",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let stream: String = r.get(0)?;
            let pending = to_u64(r.get(2)?);
            // Uses the (stream, seq) index: one probe per stream, no scan.
            let oldest_pending_ms = if pending > 0 {
                oldest.query_row([&stream], |o| o.get(0)).optional()?
            } else {
                None
            };
            streams.push(StreamStats {
                priority: priority_from_rank(r.get(1)?),
                pending,
                pending_bytes: to_u64(r.get(3)?),
                delivered: to_u64(r.get(4)?),
                evicted: to_u64(r.get(5)?),
                refused: to_u64(r.get(6)?),
                rejected: to_u64(r.get(7)?),
                quarantined: to_u64(r.get(8)?),
                oldest_pending_ms,
                last_delivered_ms: r.get(9)?,
                last_evicted_ms: r.get(10)?,
                stream,
            });
        }
    }
    let (used_bytes, pending): (i64, i64) = tx.query_row(
        "SELECT COALESCE(SUM(bytes), 0), COALESCE(SUM(records), 0) FROM usage",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let dead_letter: i64 = tx.query_row("SELECT COUNT(*) FROM dead_letter", [], |r| r.get(0))?;
    tx.finish()?;
    Ok(OutboxStats {
        streams,
        totals: Totals {
            pending: to_u64(pending),
            used_bytes: to_u64(used_bytes),
            max_bytes,
            dead_letter: to_u64(dead_letter),
            commits,
        },
    })
}
