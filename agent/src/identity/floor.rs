//! The persisted time floor (`state_dir/identity/time_floor`): the latest time the agent knows
//! has passed. It is the latest of the agent's build time, the `Date` of the last successful
//! hub answer (over verified TLS) and the newest verified certificate's notBefore.
//!
//! A device whose clock reset (no RTC battery, 1970 after a power cut) would otherwise find
//! every certificate "not yet valid". When the system clock is behind the floor, certificate
//! validity (the hub's server certificate, the device's own) is judged at the floor instead,
//! and the agent logs once per start that the clock is wrong.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Mutex;

use rustls::pki_types::UnixTime;

/// File name inside `state_dir/identity/`.
pub const FLOOR_FILE: &str = "time_floor";

/// Written to disk only when it moved at least this much (flash wear: a `Date` comes with
/// every upload).
pub const PERSIST_STEP_MS: i64 = 10 * 60 * 1000;

/// A clock this far behind the floor is reported as wrong (hub and device clocks differ by
/// seconds in normal operation; the floor still applies below this).
pub const WRONG_CLOCK_MS: i64 = 60 * 1000;

/// 2026-11-01T00:00:00Z: no build of this agent is older. `OUTPOST_BUILD_EPOCH` or
/// `SOURCE_DATE_EPOCH` (seconds) at compile time replaces it when later.
const RELEASE_FLOOR_S: i64 = 1_793_491_200;

/// The agent's build time in ms since the epoch (see [`RELEASE_FLOOR_S`]).
pub fn build_time_ms() -> i64 {
    let env = option_env!("OUTPOST_BUILD_EPOCH").or(option_env!("SOURCE_DATE_EPOCH"));
    let built = env.and_then(|s| s.trim().parse::<i64>().ok()).unwrap_or(0);
    built.max(RELEASE_FLOOR_S).saturating_mul(1000)
}

#[derive(Debug)]
pub struct TimeFloor {
    path: PathBuf,
    floor_ms: AtomicI64,
    persisted_ms: AtomicI64,
    warned: AtomicBool,
    write: Mutex<()>,
}

impl TimeFloor {
    /// Reads the floor file (a missing or damaged one counts as nothing: the build time is
    /// still there) and takes the later of it and `build_ms`.
    pub fn load(path: PathBuf, build_ms: i64) -> Self {
        let stored = match std::fs::read_to_string(&path) {
            Ok(text) => match text.trim().parse::<i64>() {
                Ok(ms) => ms,
                Err(_) => {
                    tracing::warn!(path = %path.display(), "time floor file is damaged; using the build time");
                    0
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot read the time floor");
                0
            }
        };
        Self {
            path,
            floor_ms: AtomicI64::new(stored.max(build_ms)),
            // The build time is known at every start: it never needs writing.
            persisted_ms: AtomicI64::new(stored.max(build_ms)),
            warned: AtomicBool::new(false),
            write: Mutex::new(()),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn get(&self) -> i64 {
        self.floor_ms.load(Ordering::Relaxed)
    }

    /// Raises the floor to `ms` if later; persists it (atomically, 0600) when it moved at least
    /// [`PERSIST_STEP_MS`] past what is on disk, or when `force`.
    pub fn raise(&self, ms: i64, source: &'static str, force: bool) {
        let before = self.floor_ms.fetch_max(ms, Ordering::Relaxed);
        let now = before.max(ms);
        let persisted = self.persisted_ms.load(Ordering::Relaxed);
        if ms <= persisted || now <= persisted || (!force && now - persisted < PERSIST_STEP_MS) {
            return;
        }
        let Ok(_one) = self.write.lock() else { return };
        let now = self.get();
        if now <= self.persisted_ms.load(Ordering::Relaxed) {
            return;
        }
        match super::cert::write_atomically(&self.path, format!("{now}\n").as_bytes()) {
            Ok(()) => {
                self.persisted_ms.store(now, Ordering::Relaxed);
                tracing::debug!(floor = %outpost_proto::time::rfc3339_millis(now), source, "time floor raised");
            }
            Err(e) => {
                tracing::warn!(path = %self.path.display(), error = %e, "cannot store the time floor")
            }
        }
    }

    /// The time to judge certificates at: `clock_ms`, or the floor when the clock is behind it
    /// (logged once per start when it is behind by more than [`WRONG_CLOCK_MS`]).
    pub fn now_ms(&self, clock_ms: i64) -> i64 {
        let floor = self.get();
        if clock_ms >= floor {
            return clock_ms;
        }
        if floor - clock_ms > WRONG_CLOCK_MS && !self.warned.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                system_clock = %outpost_proto::time::rfc3339_millis(clock_ms),
                time_floor = %outpost_proto::time::rfc3339_millis(floor),
                "the system clock is behind the time floor (the latest time known to have passed): \
                 certificates are checked at the floor; fix the clock (NTP, RTC)"
            );
        }
        floor
    }

    /// [`TimeFloor::now_ms`] for rustls.
    pub fn unix_time(&self, clock: UnixTime) -> UnixTime {
        let clock_ms = i64::try_from(clock.as_secs().saturating_mul(1000)).unwrap_or(i64::MAX);
        let ms = self.now_ms(clock_ms);
        UnixTime::since_unix_epoch(std::time::Duration::from_millis(
            u64::try_from(ms).unwrap_or(0),
        ))
    }

    /// Whether the clock-is-wrong warning was given (tests).
    pub fn warned(&self) -> bool {
        self.warned.load(Ordering::Relaxed)
    }
}

/// The `Date` header of an HTTP response, in ms since the epoch.
pub fn date_header_ms(headers: &hyper::HeaderMap) -> Option<i64> {
    let value = headers.get(hyper::header::DATE)?.to_str().ok()?;
    let t = httpdate::parse_http_date(value).ok()?;
    let d = t.duration_since(std::time::UNIX_EPOCH).ok()?;
    i64::try_from(d.as_millis()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floor_is_the_latest_source_and_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("identity").join(FLOOR_FILE);
        let build = build_time_ms();
        assert!(build >= RELEASE_FLOOR_S * 1000);
        let f = TimeFloor::load(path.clone(), build);
        assert_eq!(f.get(), build);
        // Older than the floor: ignored. Small steps: in memory only.
        f.raise(0, "test", true);
        assert!(!path.exists());
        f.raise(build + 1000, "date", false);
        assert_eq!(f.get(), build + 1000);
        assert!(!path.exists(), "small steps are not written");
        f.raise(build + PERSIST_STEP_MS + 1000, "date", false);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap().trim(),
            (build + PERSIST_STEP_MS + 1000).to_string()
        );
        f.raise(build + PERSIST_STEP_MS + 2000, "cert", true);
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&path).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
        // Read back at the next start, later than the build time.
        let again = TimeFloor::load(path.clone(), build);
        assert_eq!(again.get(), build + PERSIST_STEP_MS + 2000);
        // A damaged file falls back to the build time.
        std::fs::write(&path, "not a number").unwrap();
        assert_eq!(TimeFloor::load(path, build).get(), build);
    }

    #[test]
    fn clock_behind_the_floor_is_replaced_by_the_floor_and_reported_once() {
        let dir = tempfile::tempdir().unwrap();
        let f = TimeFloor::load(dir.path().join(FLOOR_FILE), 2_000_000_000_000);
        // A correct clock is used as is.
        assert_eq!(f.now_ms(2_000_000_500_000), 2_000_000_500_000);
        // A few seconds behind (skew against the hub's Date): floor, no warning.
        assert_eq!(f.now_ms(1_999_999_990_000), 2_000_000_000_000);
        assert!(!f.warned());
        // 1970: the floor, and the warning.
        assert_eq!(f.now_ms(5_000), 2_000_000_000_000);
        assert!(f.warned());
        let t = f.unix_time(UnixTime::since_unix_epoch(std::time::Duration::from_secs(
            5,
        )));
        assert_eq!(t.as_secs(), 2_000_000_000);
    }

    #[test]
    fn http_dates_parse() {
        let mut h = hyper::HeaderMap::new();
        assert_eq!(date_header_ms(&h), None);
        h.insert(
            hyper::header::DATE,
            "Sun, 22 Nov 2026 09:38:38 GMT".parse().unwrap(),
        );
        assert_eq!(date_header_ms(&h), Some(1_795_340_318_000));
        h.insert(hyper::header::DATE, "yesterday".parse().unwrap());
        assert_eq!(date_header_ms(&h), None);
    }
}
