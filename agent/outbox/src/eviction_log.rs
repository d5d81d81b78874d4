//! Rate-limited reporting of evictions: a full store under load evicts on nearly every write,
//! and one log line per record would flood the journal. The first eviction after a quiet
//! period is reported at once; after that a summary is due every [`QUIET`] while evictions
//! continue, and a final one when a whole [`QUIET`] passes without any.
//!
//! The type only decides *what* to say and *when*; the writer thread emits the lines with
//! `tracing::warn!`, which keeps this logic testable with a fake clock.

use std::time::{Duration, Instant};

use outpost_proto::Priority;

use crate::admission::rank_index;

pub(crate) const QUIET: Duration = Duration::from_secs(10);

#[derive(Debug)]
struct Burst {
    started: Instant,
    last_eviction: Instant,
    last_report: Instant,
    /// Records evicted since the last line, per priority rank.
    unreported: [u64; 3],
    total: u64,
}

#[derive(Debug)]
pub(crate) struct EvictionLog {
    quiet: Duration,
    burst: Option<Burst>,
}

impl Default for EvictionLog {
    fn default() -> Self {
        Self::new(QUIET)
    }
}

fn describe(counts: &[u64; 3]) -> String {
    let parts: Vec<String> = [Priority::BestEffort, Priority::Normal]
        .into_iter()
        .filter(|p| counts[rank_index(*p)] > 0)
        .map(|p| format!("{} {}", counts[rank_index(p)], p))
        .collect();
    parts.join(", ")
}

impl EvictionLog {
    pub(crate) fn new(quiet: Duration) -> Self {
        Self { quiet, burst: None }
    }

    /// Notes `count` records of `priority` evicted to admit a write to `stream`. Returns the
    /// line to log now, if any.
    pub(crate) fn evicted(
        &mut self,
        now: Instant,
        priority: Priority,
        count: u64,
        stream: &str,
    ) -> Option<String> {
        match &mut self.burst {
            Some(burst) => {
                burst.last_eviction = now;
                burst.unreported[rank_index(priority)] += count;
                burst.total += count;
                None
            }
            None => {
                self.burst = Some(Burst {
                    started: now,
                    last_eviction: now,
                    last_report: now,
                    unreported: [0; 3],
                    total: count,
                });
                Some(format!(
                    "outbox full: evicted {count} {priority} record(s), oldest first, to admit a write to stream {stream}; \
                     further evictions are summarised every {}s",
                    self.quiet.as_secs()
                ))
            }
        }
    }

    /// Called regularly by the writer (after each batch and when its wait times out).
    /// Returns a summary line when one is due.
    pub(crate) fn tick(&mut self, now: Instant) -> Option<String> {
        let burst = self.burst.as_mut()?;
        if now.saturating_duration_since(burst.last_eviction) >= self.quiet {
            let line = format!(
                "outbox eviction burst over: {} record(s) evicted in {}s{}",
                burst.total,
                burst
                    .last_eviction
                    .saturating_duration_since(burst.started)
                    .as_secs(),
                if burst.unreported.iter().any(|c| *c > 0) {
                    format!(" ({} since the last report)", describe(&burst.unreported))
                } else {
                    String::new()
                }
            );
            self.burst = None;
            return Some(line);
        }
        if now.saturating_duration_since(burst.last_report) >= self.quiet
            && burst.unreported.iter().any(|c| *c > 0)
        {
            let line = format!(
                "outbox still full: evicted {} in the last {}s",
                describe(&burst.unreported),
                now.saturating_duration_since(burst.last_report).as_secs()
            );
            burst.unreported = [0; 3];
            burst.last_report = now;
            return Some(line);
        }
        None
    }

    /// How long the writer may block waiting for requests before [`tick`](Self::tick) is due;
    /// `None` when no burst is in progress (block indefinitely).
    pub(crate) fn next_deadline(&self, now: Instant) -> Option<Duration> {
        let burst = self.burst.as_ref()?;
        let end = burst.last_eviction + self.quiet;
        let report = burst.last_report + self.quiet;
        Some(end.min(report).saturating_duration_since(now))
    }

    /// Ends the burst (at shutdown) and returns its summary, if one was in progress.
    pub(crate) fn finish(&mut self) -> Option<String> {
        let burst = self.burst.take()?;
        Some(format!(
            "outbox closing after evicting {} record(s) in the current burst",
            burst.total
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_eviction_logs_then_bursts_are_summarised() {
        let t0 = Instant::now();
        let s = |n| t0 + Duration::from_secs(n);
        let mut log = EvictionLog::new(Duration::from_secs(10));
        assert_eq!(log.next_deadline(t0), None);
        assert!(log.evicted(t0, Priority::BestEffort, 1, "temp").is_some());
        // Evictions within the burst are silent...
        for i in 1..=9 {
            assert!(log.evicted(s(i), Priority::BestEffort, 2, "temp").is_none());
            assert!(log.tick(s(i)).is_none());
        }
        // ...until 10 s after the first line, when a summary is due.
        let line = log.tick(s(10)).unwrap();
        assert!(line.contains("18 best_effort"), "{line}");
        assert!(log.tick(s(11)).is_none());
        assert!(log.evicted(s(12), Priority::Normal, 1, "temp").is_none());
        // Quiet for 10 s after the last eviction: the burst ends with a final summary.
        assert!(log.next_deadline(s(13)).unwrap() <= Duration::from_secs(9));
        let end = log.tick(s(22)).unwrap();
        assert!(
            end.contains("20 record(s)") && end.contains("1 normal"),
            "{end}"
        );
        assert_eq!(log.next_deadline(s(23)), None);
        // A new burst logs its first eviction immediately again.
        assert!(log.evicted(s(40), Priority::Normal, 1, "x").is_some());
        assert!(log.finish().is_some());
        assert!(log.finish().is_none());
    }
}
