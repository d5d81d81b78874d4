//! The uptime check and the system clock (`/proc/uptime`).

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use super::{CheckOutcome, Clock};

/// Passes once the system has been up for `min`.
pub fn check(uptime: Duration, min: Duration) -> CheckOutcome {
    let up = humantime::format_duration(Duration::from_secs(uptime.as_secs()));
    if uptime >= min {
        CheckOutcome::pass(format!("up {up}"))
    } else {
        CheckOutcome::fail(format!("up {up}, need {}", humantime::format_duration(min)))
    }
}

/// Parses the first field of `/proc/uptime` ("12345.67 23456.78").
pub fn parse_proc_uptime(text: &str) -> Option<Duration> {
    let secs: f64 = text.split_whitespace().next()?.parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs))
}

/// The real clock: uptime from `/proc/uptime` (CLOCK_BOOTTIME: counts suspend, restarts of the
/// agent do not reset it). If the file cannot be read, the time since this clock was made,
/// offset by the last good reading, keeps the deadline monotonic.
pub struct SystemClock {
    path: PathBuf,
    origin: Instant,
    origin_uptime: Duration,
}

impl SystemClock {
    pub fn new() -> Self {
        Self::with_path("/proc/uptime")
    }

    pub fn with_path(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        let origin_uptime = read(&path).unwrap_or_default();
        Self {
            path,
            origin: Instant::now(),
            origin_uptime,
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

fn read(path: &std::path::Path) -> Option<Duration> {
    parse_proc_uptime(&std::fs::read_to_string(path).ok()?)
}

impl Clock for SystemClock {
    fn since_boot(&self) -> Duration {
        read(&self.path).unwrap_or_else(|| self.origin_uptime + self.origin.elapsed())
    }

    fn wall(&self) -> SystemTime {
        SystemTime::now()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_uptime_and_checks_the_minimum() {
        assert_eq!(
            parse_proc_uptime("350.25 1200.00\n"),
            Some(Duration::from_millis(350_250))
        );
        assert_eq!(parse_proc_uptime("x"), None);
        assert_eq!(parse_proc_uptime("-1 2"), None);
        assert_eq!(
            check(Duration::from_secs(60), Duration::from_secs(90)).verdict,
            crate::Verdict::Fail
        );
        assert_eq!(
            check(Duration::from_secs(90), Duration::from_secs(90)).verdict,
            crate::Verdict::Pass
        );
        let real = SystemClock::new().since_boot();
        assert!(real > Duration::ZERO);
    }
}
