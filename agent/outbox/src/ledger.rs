//! The writer's in-memory accounting: bytes per priority (for O(1) admission), pending counts
//! per stream, and the counter changes of the transaction in progress.
//!
//! The ledger mirrors the `usage` and `stream_stats` tables. It is loaded at open, updated as
//! each request is applied, and written back by [`Ledger::flush`] inside the same transaction,
//! so the counters always describe exactly the committed records. If a transaction fails the
//! writer discards the ledger and loads it again from the (rolled back) database.

use std::collections::HashMap;

use outpost_proto::Priority;
use rusqlite::{params, Connection};

use crate::admission::rank_index;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct StreamPending {
    /// Priority of the stream's most recent write, shown in stats.
    priority: Priority,
    pending: u64,
    pending_bytes: u64,
}

/// Counter changes of one stream in the current transaction.
#[derive(Debug, Default, Clone, Copy)]
struct CounterDelta {
    delivered: u64,
    evicted: u64,
    refused: u64,
    rejected: u64,
    quarantined: u64,
    last_delivered_ms: Option<i64>,
    last_evicted_ms: Option<i64>,
}

/// Why a record left `records`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Removal {
    Delivered,
    Evicted,
    Rejected,
    Quarantined,
}

#[derive(Debug, Default)]
pub(crate) struct Ledger {
    used: [u64; 3],
    records: [u64; 3],
    streams: HashMap<String, StreamPending>,
    /// Streams touched by the current transaction, with their counter deltas.
    dirty: HashMap<String, CounterDelta>,
    usage_dirty: bool,
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Priority from its stored rank; an unknown rank (only possible if someone edited the file)
/// is treated as the least important.
pub(crate) fn priority_from_rank(rank: i64) -> Priority {
    Priority::from_rank(rank).unwrap_or(Priority::BestEffort)
}

impl Ledger {
    /// Reads the committed accounting.
    pub(crate) fn load(conn: &Connection) -> rusqlite::Result<Self> {
        let mut ledger = Ledger::default();
        let mut stmt = conn.prepare_cached("SELECT priority, bytes, records FROM usage")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let i = rank_index(priority_from_rank(row.get(0)?));
            ledger.used[i] = ledger.used[i].saturating_add(to_u64(row.get(1)?));
            ledger.records[i] = ledger.records[i].saturating_add(to_u64(row.get(2)?));
        }
        let mut stmt = conn
            .prepare_cached("SELECT stream, priority, pending, pending_bytes FROM stream_stats")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let pending = StreamPending {
                priority: priority_from_rank(row.get(1)?),
                pending: to_u64(row.get(2)?),
                pending_bytes: to_u64(row.get(3)?),
            };
            ledger.streams.insert(row.get(0)?, pending);
        }
        Ok(ledger)
    }

    /// Rebuilds the pending accounting from `records` itself (a full scan), inside the current
    /// transaction. Only used if the counters were found to disagree with the rows.
    pub(crate) fn recount(&mut self, conn: &Connection) -> rusqlite::Result<()> {
        self.used = [0; 3];
        self.records = [0; 3];
        for entry in self.streams.values_mut() {
            entry.pending = 0;
            entry.pending_bytes = 0;
        }
        let mut stmt = conn.prepare_cached(
            "SELECT stream, priority, COUNT(*), COALESCE(SUM(size), 0) FROM records GROUP BY stream, priority",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let stream: String = row.get(0)?;
            let priority = priority_from_rank(row.get(1)?);
            let (count, bytes) = (to_u64(row.get(2)?), to_u64(row.get(3)?));
            self.used[rank_index(priority)] = self.used[rank_index(priority)].saturating_add(bytes);
            self.records[rank_index(priority)] =
                self.records[rank_index(priority)].saturating_add(count);
            let entry = self.streams.entry(stream).or_insert(StreamPending {
                priority,
                pending: 0,
                pending_bytes: 0,
            });
            entry.pending = entry.pending.saturating_add(count);
            entry.pending_bytes = entry.pending_bytes.saturating_add(bytes);
        }
        // Every stream's absolute pending values may have changed: write them all back.
        for name in self.streams.keys() {
            self.dirty.entry(name.clone()).or_default();
        }
        self.usage_dirty = true;
        Ok(())
    }

    /// Bytes in use per priority rank.
    pub(crate) fn used(&self) -> &[u64; 3] {
        &self.used
    }

    /// Applies `f` to the counter delta of `stream`, creating it on first touch. Written as a
    /// lookup first so the common case (stream already touched) does not allocate a key.
    fn with_delta(&mut self, stream: &str, f: impl FnOnce(&mut CounterDelta)) {
        match self.dirty.get_mut(stream) {
            Some(delta) => f(delta),
            None => {
                let mut delta = CounterDelta::default();
                f(&mut delta);
                self.dirty.insert(stream.to_owned(), delta);
            }
        }
    }

    /// Applies `f` to the pending totals of `stream`, creating them on first sight.
    fn with_stream(
        &mut self,
        stream: &str,
        priority: Priority,
        f: impl FnOnce(&mut StreamPending),
    ) {
        match self.streams.get_mut(stream) {
            Some(entry) => f(entry),
            None => {
                let mut entry = StreamPending {
                    priority,
                    pending: 0,
                    pending_bytes: 0,
                };
                f(&mut entry);
                self.streams.insert(stream.to_owned(), entry);
            }
        }
    }

    pub(crate) fn added(&mut self, stream: &str, priority: Priority, size: u64) {
        let i = rank_index(priority);
        self.used[i] = self.used[i].saturating_add(size);
        self.records[i] = self.records[i].saturating_add(1);
        self.usage_dirty = true;
        self.with_stream(stream, priority, |entry| {
            entry.priority = priority;
            entry.pending = entry.pending.saturating_add(1);
            entry.pending_bytes = entry.pending_bytes.saturating_add(size);
        });
        self.with_delta(stream, |_| {});
    }

    pub(crate) fn removed(
        &mut self,
        stream: &str,
        priority: Priority,
        size: u64,
        why: Removal,
        now_ms: i64,
    ) {
        let i = rank_index(priority);
        self.used[i] = self.used[i].saturating_sub(size);
        self.records[i] = self.records[i].saturating_sub(1);
        self.usage_dirty = true;
        self.with_stream(stream, priority, |entry| {
            entry.pending = entry.pending.saturating_sub(1);
            entry.pending_bytes = entry.pending_bytes.saturating_sub(size);
        });
        self.with_delta(stream, |delta| match why {
            Removal::Delivered => {
                delta.delivered += 1;
                delta.last_delivered_ms = Some(now_ms);
            }
            Removal::Evicted => {
                delta.evicted += 1;
                delta.last_evicted_ms = Some(now_ms);
            }
            Removal::Rejected => delta.rejected += 1,
            Removal::Quarantined => delta.quarantined += 1,
        });
    }

    /// A write to `stream` was refused (store full or record too large).
    pub(crate) fn refused(&mut self, stream: &str, priority: Priority) {
        self.with_stream(stream, priority, |entry| entry.priority = priority);
        self.with_delta(stream, |delta| delta.refused += 1);
    }

    /// Writes the changes of the current transaction to `stream_stats` and `usage`.
    pub(crate) fn flush(&mut self, conn: &Connection) -> rusqlite::Result<()> {
        if !self.dirty.is_empty() {
            let mut upsert = conn.prepare_cached(
                "INSERT INTO stream_stats (stream, priority, pending, pending_bytes, delivered, evicted,
                     refused, rejected, quarantined, last_delivered_ms, last_evicted_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
                 ON CONFLICT (stream) DO UPDATE SET
                     priority = excluded.priority,
                     pending = excluded.pending,
                     pending_bytes = excluded.pending_bytes,
                     delivered = delivered + excluded.delivered,
                     evicted = evicted + excluded.evicted,
                     refused = refused + excluded.refused,
                     rejected = rejected + excluded.rejected,
                     quarantined = quarantined + excluded.quarantined,
                     last_delivered_ms = COALESCE(excluded.last_delivered_ms, last_delivered_ms),
                     last_evicted_ms = COALESCE(excluded.last_evicted_ms, last_evicted_ms)",
            )?;
            for (stream, d) in &self.dirty {
                let Some(p) = self.streams.get(stream) else {
                    continue;
                };
                upsert.execute(params![
                    stream,
                    p.priority.rank(),
                    to_i64(p.pending),
                    to_i64(p.pending_bytes),
                    to_i64(d.delivered),
                    to_i64(d.evicted),
                    to_i64(d.refused),
                    to_i64(d.rejected),
                    to_i64(d.quarantined),
                    d.last_delivered_ms,
                    d.last_evicted_ms,
                ])?;
            }
        }
        if self.usage_dirty {
            let mut update = conn
                .prepare_cached("UPDATE usage SET bytes = ?2, records = ?3 WHERE priority = ?1")?;
            for p in Priority::ALL {
                let i = rank_index(p);
                update.execute(params![
                    p.rank(),
                    to_i64(self.used[i]),
                    to_i64(self.records[i])
                ])?;
            }
        }
        self.dirty.clear();
        self.usage_dirty = false;
        Ok(())
    }
}
