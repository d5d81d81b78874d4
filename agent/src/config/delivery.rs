//! `[delivery]`: the device asks its hub for updates of its channel (`GET /v1/updates`), every
//! `interval` (± `jitter`, so that a fleet does not poll in lockstep), downloads the bundle
//! (resumable, optionally rate-capped and only inside time windows) and installs it.

use std::path::Path;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// Folder under `state_dir` for downloads and the delivery state.
pub const DELIVERY_DIR: &str = "delivery";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDelivery {
    channel: String,
    interval: Option<String>,
    jitter: Option<String>,
    max_bytes_per_second: Option<u64>,
    #[serde(default)]
    windows: Vec<String>,
    auto_install: Option<bool>,
}

/// A loaded `[delivery]`.
#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    pub channel: String,
    pub interval: Duration,
    pub jitter: Duration,
    /// Download rate cap; `None`: as fast as the link goes.
    pub max_bytes_per_second: Option<u64>,
    /// Metered mode: download only inside these windows (UTC). Empty: any time.
    pub windows: Vec<Window>,
    /// Install a downloaded release right away (else only `outpostctl update now` does).
    pub auto_install: bool,
    /// `state_dir/delivery`: partial and finished downloads, `state.json`.
    pub dir: PathBuf,
}

/// A daily time window, `HH:MM-HH:MM` UTC; it wraps past midnight when it ends before it
/// starts (`22:00-06:00`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start_min: u16,
    pub end_min: u16,
}

impl Window {
    pub fn parse(s: &str) -> Result<Self, String> {
        let bad = || format!("window {s:?}: use HH:MM-HH:MM (UTC), e.g. \"22:00-06:00\"");
        let (a, b) = s.trim().split_once('-').ok_or_else(bad)?;
        let minute = |t: &str| -> Option<u16> {
            let (h, m) = t.trim().split_once(':')?;
            let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
            (h < 24 && m < 60 && t.trim().len() == 5).then_some(h * 60 + m)
        };
        let (start_min, end_min) = (minute(a).ok_or_else(bad)?, minute(b).ok_or_else(bad)?);
        if start_min == end_min {
            return Err(format!("window {s:?} is empty"));
        }
        Ok(Window { start_min, end_min })
    }

    pub fn contains(&self, minute_of_day: u16) -> bool {
        if self.start_min < self.end_min {
            (self.start_min..self.end_min).contains(&minute_of_day)
        } else {
            minute_of_day >= self.start_min || minute_of_day < self.end_min
        }
    }
}

impl DeliveryConfig {
    /// Whether downloading is allowed at `unix_secs` (UTC).
    pub fn may_download_at(&self, unix_secs: u64) -> bool {
        let minute = ((unix_secs / 60) % (24 * 60)) as u16;
        self.windows.is_empty() || self.windows.iter().any(|w| w.contains(minute))
    }
}

pub(super) fn resolve(raw: RawDelivery, state_dir: &Path) -> Result<DeliveryConfig, String> {
    if !outpost_proto::updates::encode(&raw.channel).eq(&raw.channel) || raw.channel.is_empty() {
        return Err(format!(
            "delivery.channel {:?}: use letters, digits, '.', '-', '_'",
            raw.channel
        ));
    }
    let duration = |key: &str, v: &str| {
        humantime::parse_duration(v).map_err(|e| format!("delivery.{key} {v:?}: {e}"))
    };
    let interval = match &raw.interval {
        Some(v) => duration("interval", v)?,
        None => Duration::from_secs(3600),
    };
    if interval < Duration::from_secs(1) {
        return Err("delivery.interval must be at least 1s".into());
    }
    let jitter = match &raw.jitter {
        Some(v) => duration("jitter", v)?,
        None => interval / 10,
    };
    if jitter > interval {
        return Err("delivery.jitter must not exceed delivery.interval".into());
    }
    if raw.max_bytes_per_second == Some(0) {
        return Err("delivery.max_bytes_per_second must be positive (omit it for no cap)".into());
    }
    let windows = raw
        .windows
        .iter()
        .map(|w| Window::parse(w).map_err(|e| format!("delivery.windows: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(DeliveryConfig {
        channel: raw.channel,
        interval,
        jitter,
        max_bytes_per_second: raw.max_bytes_per_second,
        windows,
        auto_install: raw.auto_install.unwrap_or(true),
        dir: state_dir.join(DELIVERY_DIR),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_wrap_past_midnight_and_bad_ones_are_refused() {
        let night = Window::parse("22:00-06:00").unwrap();
        assert!(night.contains(23 * 60) && night.contains(0) && night.contains(5 * 60 + 59));
        assert!(!night.contains(6 * 60) && !night.contains(12 * 60));
        let day = Window::parse("09:30-10:00").unwrap();
        assert!(day.contains(9 * 60 + 30) && !day.contains(10 * 60));
        for bad in [
            "9:30-10:00",
            "24:00-01:00",
            "10:00",
            "10:00-10:00",
            "aa:bb-cc:dd",
        ] {
            assert!(Window::parse(bad).is_err(), "{bad}");
        }
        let cfg = resolve(
            RawDelivery {
                channel: "stable".into(),
                interval: Some("10m".into()),
                jitter: None,
                max_bytes_per_second: None,
                windows: vec!["22:00-06:00".into()],
                auto_install: None,
            },
            Path::new("/var/lib/outpost"),
        )
        .unwrap();
        assert_eq!(cfg.jitter, Duration::from_secs(60));
        assert!(cfg.may_download_at(23 * 3600) && !cfg.may_download_at(12 * 3600));
        assert!(cfg.auto_install);
        assert_eq!(cfg.dir, Path::new("/var/lib/outpost/delivery"));
    }
}
