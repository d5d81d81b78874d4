//! The effect of each request inside the writer's open transaction.
//!
//! Every operation is written so that a per-request refusal (full, too large, conflict) leaves
//! the transaction untouched and usable for the other requests of the batch: refusals are
//! decided before anything is written, a duplicate is detected by the UNIQUE index (a failed
//! INSERT only rolls back its own statement), and eviction runs inside a savepoint.
//! A `rusqlite::Error` returned from here means the storage itself failed.

use outpost_proto::Priority;
use rusqlite::{ffi, params, Connection, OptionalExtension};

use crate::admission::{admit, eviction_order, Admission};
use crate::ledger::{priority_from_rank, Ledger, Removal};
use crate::request::PreparedRecord;
use crate::{Accepted, EnqueueError, Sent};

/// Longest reason kept in `dead_letter`, in characters (the hub's text is not trusted).
const MAX_REASON_CHARS: usize = 1000;

/// Records evicted to admit one write, for the eviction log.
#[derive(Debug)]
pub(crate) struct EvictionNote {
    pub priority: Priority,
    pub count: u64,
    /// The stream whose write caused the eviction.
    pub for_stream: String,
}

/// One transaction's worth of context.
pub(crate) struct Apply<'a> {
    pub conn: &'a Connection,
    pub ledger: &'a mut Ledger,
    pub max_bytes: u64,
    pub now_ms: i64,
    pub evictions: Vec<EvictionNote>,
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(err, _) if err.extended_code == ffi::SQLITE_CONSTRAINT_UNIQUE)
}

impl Apply<'_> {
    pub(crate) fn enqueue(
        &mut self,
        rec: &PreparedRecord,
    ) -> rusqlite::Result<Result<Accepted, EnqueueError>> {
        self.enqueue_once(rec, true)
    }

    /// `retry`: if eviction found the ledger wrong (it then rebuilt it from the rows), decide
    /// admission again, once; the rebuilt ledger is exact, so once is enough.
    fn enqueue_once(
        &mut self,
        rec: &PreparedRecord,
        retry: bool,
    ) -> rusqlite::Result<Result<Accepted, EnqueueError>> {
        match admit(self.ledger.used(), self.max_bytes, rec.size, rec.priority) {
            Admission::Fits => self.insert(rec),
            Admission::TooLarge => {
                self.ledger.refused(rec.stream.as_str(), rec.priority);
                Ok(Err(EnqueueError::TooLarge {
                    size: rec.size,
                    max_bytes: self.max_bytes,
                }))
            }
            Admission::Evict { need } => {
                // A duplicate needs no room: answer it before evicting anything for it.
                if let Some(answer) = self.existing(rec)? {
                    return Ok(answer);
                }
                if self.evict(rec, need)? {
                    self.insert(rec)
                } else if retry {
                    self.enqueue_once(rec, false)
                } else {
                    Ok(self.refuse_full(rec, need))
                }
            }
            Admission::Full { need } => match self.existing(rec)? {
                Some(answer) => Ok(answer),
                None => Ok(self.refuse_full(rec, need)),
            },
        }
    }

    fn refuse_full(&mut self, rec: &PreparedRecord, need: u64) -> Result<Accepted, EnqueueError> {
        self.ledger.refused(rec.stream.as_str(), rec.priority);
        Err(EnqueueError::Full {
            stream: rec.stream.to_string(),
            priority: rec.priority,
            needed: need,
        })
    }

    /// Inserts the record; if its id is already pending, answers duplicate or conflict instead.
    fn insert(&mut self, rec: &PreparedRecord) -> rusqlite::Result<Result<Accepted, EnqueueError>> {
        let mut stmt = self.conn.prepare_cached(
            "INSERT INTO records (id, stream, priority, created_at_ms, payload, sha256, size)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        let inserted = stmt.execute(params![
            rec.id.as_str(),
            rec.stream.as_str(),
            rec.priority.rank(),
            self.now_ms,
            rec.payload,
            rec.sha256,
            to_i64(rec.size),
        ]);
        match inserted {
            Ok(_) => {
                self.ledger
                    .added(rec.stream.as_str(), rec.priority, rec.size);
                Ok(Ok(Accepted {
                    id: rec.id.clone(),
                    duplicate: false,
                }))
            }
            Err(e) if is_unique_violation(&e) => match self.existing(rec)? {
                Some(answer) => Ok(answer),
                // The row vanished between the two statements: impossible on the only write
                // connection, so report the original error rather than guess.
                None => Err(e),
            },
            Err(e) => Err(e),
        }
    }

    /// If `rec.id` is already pending: duplicate when the payload is the same, else conflict.
    fn existing(
        &self,
        rec: &PreparedRecord,
    ) -> rusqlite::Result<Option<Result<Accepted, EnqueueError>>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT sha256 FROM records WHERE id = ?1")?;
        let sha: Option<String> = stmt.query_row([rec.id.as_str()], |r| r.get(0)).optional()?;
        Ok(sha.map(|sha| {
            if sha.eq_ignore_ascii_case(&rec.sha256) {
                Ok(Accepted {
                    id: rec.id.clone(),
                    duplicate: true,
                })
            } else {
                Err(EnqueueError::Conflict {
                    id: rec.id.to_string(),
                })
            }
        }))
    }

    /// Evicts the oldest records of the lowest evictable priorities until `need` bytes are
    /// free. All or nothing: returns false, with nothing evicted, if the candidates turn out
    /// smaller than the ledger said (only possible if the file was edited behind our back; the
    /// ledger is then rebuilt from the rows).
    fn evict(&mut self, rec: &PreparedRecord, need: u64) -> rusqlite::Result<bool> {
        self.conn.execute_batch("SAVEPOINT evict")?;
        let mut removed: Vec<(String, Priority, u64)> = Vec::new();
        let mut freed = 0u64;
        {
            let mut oldest = self.conn.prepare_cached(
                "DELETE FROM records WHERE seq = (SELECT seq FROM records WHERE priority = ?1 ORDER BY seq LIMIT 1)
                 RETURNING stream, size",
            )?;
            'priorities: for priority in eviction_order(rec.priority) {
                while freed < need {
                    let row = oldest
                        .query_row([priority.rank()], |r| {
                            Ok((r.get::<_, String>(0)?, to_u64(r.get(1)?)))
                        })
                        .optional()?;
                    let Some((stream, size)) = row else {
                        continue 'priorities;
                    };
                    freed = freed.saturating_add(size);
                    removed.push((stream, priority, size));
                }
                break;
            }
        }
        if freed < need {
            self.conn
                .execute_batch("ROLLBACK TO evict; RELEASE evict")?;
            tracing::error!(
                needed = need,
                found = freed,
                "outbox accounting disagreed with the stored records; recounting from the database"
            );
            self.ledger.recount(self.conn)?;
            return Ok(false);
        }
        self.conn.execute_batch("RELEASE evict")?;
        for (stream, priority, size) in &removed {
            self.ledger
                .removed(stream, *priority, *size, Removal::Evicted, self.now_ms);
        }
        for priority in eviction_order(rec.priority) {
            let count = removed.iter().filter(|(_, p, _)| *p == priority).count() as u64;
            if count > 0 {
                self.evictions.push(EvictionNote {
                    priority,
                    count,
                    for_stream: rec.stream.to_string(),
                });
            }
        }
        Ok(true)
    }

    /// Deletes delivered records. Unknown ones are not an error (evicted meanwhile, acked twice,
    /// or the id now names a newer record with another payload, which stays pending).
    pub(crate) fn ack(&mut self, sent: &[Sent]) -> rusqlite::Result<usize> {
        let mut count = 0;
        for s in sent {
            if let Some(seq) = self.seq_of(s)? {
                if self.delete_seq(seq, Removal::Delivered)? {
                    count += 1;
                }
            }
        }
        Ok(count)
    }

    /// Moves records the hub refused to `dead_letter` with its reason.
    pub(crate) fn reject(&mut self, items: &[(Sent, String)]) -> rusqlite::Result<usize> {
        let mut count = 0;
        for (s, reason) in items {
            if self.move_to_dead_letter(DeadKey::Sent(s), reason, Removal::Rejected)? {
                count += 1;
            }
        }
        Ok(count)
    }

    /// Rewrites one row with its own value: takes the write lock and puts a page in the WAL,
    /// so the commit proves the file, the disk and the journal still accept writes.
    pub(crate) fn probe(&mut self) -> rusqlite::Result<usize> {
        self.conn
            .execute("UPDATE usage SET bytes = bytes WHERE priority = 0", [])
    }

    /// Moves rows the reader found corrupt (by `seq`) to `dead_letter`.
    pub(crate) fn quarantine(&mut self, items: &[(i64, String)]) -> rusqlite::Result<usize> {
        let mut count = 0;
        for (seq, reason) in items {
            if self.move_to_dead_letter(DeadKey::Seq(*seq), reason, Removal::Quarantined)? {
                count += 1;
            }
        }
        Ok(count)
    }

    /// Moves the record a hub rejection names (id and checksum) to `dead_letter`.
    fn move_to_dead_letter(
        &mut self,
        key: DeadKey<'_>,
        reason: &str,
        why: Removal,
    ) -> rusqlite::Result<bool> {
        let seq = match key {
            DeadKey::Seq(seq) => seq,
            DeadKey::Sent(s) => match self.seq_of(s)? {
                Some(seq) => seq,
                None => return Ok(false),
            },
        };
        let reason: String = reason.chars().take(MAX_REASON_CHARS).collect();
        let copied = self
            .conn
            .prepare_cached(
                "INSERT INTO dead_letter (id, stream, priority, created_at_ms, payload, sha256, size, reason, dead_at_ms)
                 SELECT id, stream, priority, created_at_ms, payload, sha256, size, ?2, ?3 FROM records WHERE seq = ?1",
            )?
            .execute(params![seq, reason, self.now_ms])?;
        if copied == 0 {
            return Ok(false);
        }
        self.delete_seq(seq, why)?;
        Ok(true)
    }

    /// The pending record an upload carried, if it is still there with that payload.
    fn seq_of(&self, s: &Sent) -> rusqlite::Result<Option<i64>> {
        self.conn
            .prepare_cached("SELECT seq FROM records WHERE id = ?1 AND sha256 = ?2")?
            .query_row([s.id.as_str(), s.sha256.as_str()], |r| r.get::<_, i64>(0))
            .optional()
    }

    /// Deletes one pending record and accounts for why it left.
    fn delete_seq(&mut self, seq: i64, why: Removal) -> rusqlite::Result<bool> {
        let row = self
            .conn
            .prepare_cached("DELETE FROM records WHERE seq = ?1 RETURNING stream, priority, size")?
            .query_row([seq], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })
            .optional()?;
        let Some((stream, rank, size)) = row else {
            return Ok(false);
        };
        self.ledger.removed(
            &stream,
            priority_from_rank(rank),
            to_u64(size),
            why,
            self.now_ms,
        );
        Ok(true)
    }
}

#[derive(Clone, Copy)]
enum DeadKey<'a> {
    Sent(&'a Sent),
    Seq(i64),
}
