//! The gate's clock: deadlines run on `CLOCK_BOOTTIME`, which starts at boot, survives agent
//! restarts (so a restarted agent keeps the trial's deadline) and never jumps with NTP.

use std::time::{Duration, SystemTime};

use nix::time::{clock_gettime, ClockId};
use outpost_health::runner::Clock;

pub struct BootClock;

impl Clock for BootClock {
    fn since_boot(&self) -> Duration {
        // CLOCK_BOOTTIME exists on every Linux since 2.6.39; a failure is impossible in
        // practice, and zero only makes the deadline later, never earlier.
        clock_gettime(ClockId::CLOCK_BOOTTIME)
            .map(Duration::from)
            .unwrap_or_default()
    }

    fn wall(&self) -> SystemTime {
        SystemTime::now()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_time_is_at_least_the_uptime_and_moves_forward() {
        let uptime: f64 = std::fs::read_to_string("/proc/uptime")
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let a = BootClock.since_boot();
        assert!(a.as_secs_f64() + 1.0 >= uptime, "{a:?} vs uptime {uptime}");
        std::thread::sleep(Duration::from_millis(5));
        assert!(BootClock.since_boot() > a);
    }
}
