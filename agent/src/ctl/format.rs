//! Human-readable renderings of the status and outbox documents.

use std::fmt::Write;

use outpost_proto::time::rfc3339_millis;

use crate::views::{OutboxView, StatusView, UploaderView};

pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

pub fn duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

fn when(ms: Option<i64>) -> String {
    ms.map_or_else(|| "never".to_owned(), rfc3339_millis)
}

fn uploader_lines(out: &mut String, u: &UploaderView) {
    let state = match u.state {
        crate::uploader::status::UploaderState::Disabled => {
            "disabled (no [hub] configured)".to_owned()
        }
        crate::uploader::status::UploaderState::Idle => "idle".to_owned(),
        crate::uploader::status::UploaderState::Connected => "connected".to_owned(),
        crate::uploader::status::UploaderState::BackingOff => format!(
            "backing off after {} failure(s); next attempt {}",
            u.consecutive_failures,
            when(u.next_attempt_ms)
        ),
    };
    let _ = writeln!(out, "uploader:     {state}");
    let _ = writeln!(out, "last upload:  {}", when(u.last_success_ms));
    match (&u.last_error, u.last_error_ms) {
        (Some(e), ms) => {
            let _ = writeln!(out, "last error:   {} {e}", when(ms));
        }
        (None, _) => {
            let _ = writeln!(out, "last error:   none");
        }
    }
    let _ = writeln!(
        out,
        "batches:      {} uploaded, {} failed attempts",
        u.batches_total, u.errors_total
    );
}

pub fn status(v: &StatusView) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "agent:        outpost-agent {}, up {}",
        v.version,
        duration(v.uptime_s)
    );
    let _ = writeln!(
        out,
        "device:       {}",
        v.device_id.as_deref().unwrap_or("(not set)")
    );
    let _ = writeln!(
        out,
        "hub:          {}",
        v.hub
            .as_deref()
            .unwrap_or("(none: records are only queued)")
    );
    uploader_lines(&mut out, &v.uploader);
    let o = &v.outbox;
    let _ = writeln!(
        out,
        "pending:      {} records, {}",
        o.pending,
        bytes(o.pending_bytes)
    );
    let _ = writeln!(
        out,
        "storage:      {} used of {}",
        bytes(o.used_bytes),
        bytes(o.max_bytes)
    );
    let _ = writeln!(
        out,
        "records:      {} delivered, {} evicted, {} refused, {} rejected",
        o.delivered, o.evicted, o.refused, o.rejected
    );
    out
}

pub fn outbox(v: &OutboxView) -> String {
    let header = [
        "STREAM",
        "PENDING",
        "BYTES",
        "DELIVERED",
        "EVICTED",
        "REFUSED",
        "REJECTED",
        "LAST UPLOAD",
    ];
    let mut rows: Vec<[String; 8]> = v
        .streams
        .iter()
        .map(|s| {
            [
                s.stream.clone(),
                s.pending.to_string(),
                bytes(s.pending_bytes),
                s.delivered.to_string(),
                s.evicted.to_string(),
                s.refused.to_string(),
                s.rejected.to_string(),
                when(s.last_delivered_ms),
            ]
        })
        .collect();
    let t = &v.totals;
    rows.push([
        "TOTAL".into(),
        t.pending.to_string(),
        bytes(t.pending_bytes),
        t.delivered.to_string(),
        t.evicted.to_string(),
        t.refused.to_string(),
        t.rejected.to_string(),
        String::new(),
    ]);
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[&str]| {
        let mut text = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            // Names left-aligned, numbers right-aligned.
            if i == 0 || i == 7 {
                let _ = write!(text, "{cell:<w$}  ");
            } else {
                let _ = write!(text, "{cell:>w$}  ");
            }
        }
        let _ = writeln!(out, "{}", text.trim_end());
    };
    line(&header);
    for row in &rows {
        let cells: Vec<&str> = row.iter().map(String::as_str).collect();
        line(&cells);
    }
    let _ = writeln!(
        out,
        "\nstorage:      {} used of {}",
        bytes(t.used_bytes),
        bytes(t.max_bytes)
    );
    uploader_lines(&mut out, &v.uploader);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::uploader::status::UploaderState;
    use crate::views::{StreamView, TotalsView};

    #[test]
    fn units_and_durations() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(256 << 20), "256.0 MiB");
        assert_eq!(duration(5), "5s");
        assert_eq!(duration(125), "2m 5s");
        assert_eq!(duration(3 * 3600 + 120), "3h 2m");
        assert_eq!(duration(2 * 86_400 + 3600), "2d 1h");
    }

    #[test]
    fn outbox_table_lists_streams_and_errors() {
        let v = OutboxView {
            totals: TotalsView {
                pending: 3,
                ..Default::default()
            },
            streams: vec![StreamView {
                stream: "alarms".into(),
                pending: 3,
                pending_bytes: 2048,
                ..Default::default()
            }],
            uploader: UploaderView {
                state: UploaderState::BackingOff,
                last_success_ms: None,
                last_error: Some(
                    "TLS with hub h:1 failed: invalid peer certificate: UnknownIssuer".into(),
                ),
                last_error_ms: Some(0),
                consecutive_failures: 2,
                next_attempt_ms: Some(1000),
                batches_total: 0,
                errors_total: 2,
            },
        };
        let text = outbox(&v);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("STREAM") && lines[0].contains("LAST UPLOAD"));
        assert!(
            lines[1].starts_with("alarms")
                && lines[1].contains("2.0 KiB")
                && lines[1].contains("never")
        );
        assert!(lines[2].starts_with("TOTAL"));
        assert!(text.contains("UnknownIssuer"));
        assert!(text.contains("backing off after 2 failure(s)"));
    }
}
