//! outpost-agent: the thin tokio shell around the durable outbox. It accepts records on a local
//! HTTP API, stores them through `outpost-outbox` (202 only after the durable commit) and
//! uploads them in batches to `outpost-hub` over mTLS, deleting a record only once the hub
//! acknowledged its id. `outpostctl` (see [`ctl`]) is the command-line client of the local API.

pub mod api;
pub mod bus;
pub mod config;
pub mod ctl;
pub mod daemon;
pub mod delivery;
pub mod health;
pub mod identity;
pub mod k3s;
pub mod logging;
pub mod metrics;
pub mod records;
pub mod shutdown;
pub mod systemd;
pub mod update;
pub mod uploader;
pub mod views;
pub mod workloads;

/// Current Unix time in milliseconds (0 if the clock is before 1970).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Squeezes a message onto one line (status fields, error bodies and log lines stay greppable)
/// and bounds its length.
pub fn oneline(s: &str) -> String {
    const MAX: usize = 500;
    let mut out = String::with_capacity(s.len().min(MAX));
    let mut last_space = false;
    for c in s.chars() {
        let c = if c.is_control() || c.is_whitespace() {
            ' '
        } else {
            c
        };
        if c == ' ' && last_space {
            continue;
        }
        last_space = c == ' ';
        if out.len() + c.len_utf8() > MAX {
            out.push('…');
            break;
        }
        out.push(c);
    }
    out.trim().to_owned()
}

#[cfg(test)]
mod tests {
    #[test]
    fn oneline_flattens_and_bounds() {
        assert_eq!(super::oneline("a\n  b\r\n\tc "), "a b c");
        assert!(super::oneline(&"x".repeat(2000)).chars().count() <= 501);
    }
}
