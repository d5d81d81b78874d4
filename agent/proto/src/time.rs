//! Timestamps travel as integer Unix milliseconds and are shown as RFC 3339 UTC.

use std::time::{Duration, UNIX_EPOCH};

/// `2026-11-22T05:08:07.123Z`. Negative or absurd values are clamped to the epoch.
pub fn rfc3339_millis(unix_ms: i64) -> String {
    let ms = u64::try_from(unix_ms).unwrap_or(0);
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(rfc3339_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            rfc3339_millis(1_795_323_287_123),
            "2026-11-22T04:54:47.123Z"
        );
        assert_eq!(rfc3339_millis(-5), "1970-01-01T00:00:00.000Z");
    }
}
