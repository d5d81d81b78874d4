//! `GET /metrics`: Prometheus text exposition format 0.0.4.

use std::fmt::Write;

use crate::api::errors::{Reason, RejectCounters};
use crate::views::{StreamView, TotalsView, UploaderView};

pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

pub struct Snapshot<'a> {
    pub totals: &'a TotalsView,
    pub streams: &'a [StreamView],
    pub uploader: &'a UploaderView,
    pub rejected: &'a RejectCounters,
    pub uptime_s: u64,
}

/// Escapes a label value: backslash, double quote and line feed are the only specials.
pub fn escape_label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    // Writing to a String cannot fail.
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn per_stream(
    out: &mut String,
    name: &str,
    kind: &str,
    help: &str,
    streams: &[StreamView],
    f: fn(&StreamView) -> u64,
) {
    header(out, name, kind, help);
    for s in streams {
        let _ = writeln!(
            out,
            "{name}{{stream=\"{}\"}} {}",
            escape_label(&s.stream),
            f(s)
        );
    }
}

fn single(out: &mut String, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
    header(out, name, kind, help);
    let _ = writeln!(out, "{name} {value}");
}

pub fn render(s: &Snapshot<'_>) -> String {
    let mut out = String::with_capacity(4096);
    let streams = s.streams;
    per_stream(
        &mut out,
        "outpost_outbox_pending_records",
        "gauge",
        "Records stored and not yet acknowledged by the hub.",
        streams,
        |v| v.pending,
    );
    per_stream(
        &mut out,
        "outpost_outbox_pending_bytes",
        "gauge",
        "Payload bytes of pending records.",
        streams,
        |v| v.pending_bytes,
    );
    per_stream(
        &mut out,
        "outpost_outbox_delivered_total",
        "counter",
        "Records the hub acknowledged.",
        streams,
        |v| v.delivered,
    );
    per_stream(
        &mut out,
        "outpost_outbox_evicted_total",
        "counter",
        "Pending records evicted to make room for more important ones.",
        streams,
        |v| v.evicted,
    );
    per_stream(
        &mut out,
        "outpost_outbox_refused_total",
        "counter",
        "Publishes refused because the outbox was full.",
        streams,
        |v| v.refused,
    );
    per_stream(
        &mut out,
        "outpost_outbox_rejected_total",
        "counter",
        "Records the hub rejected permanently (dropped).",
        streams,
        |v| v.rejected,
    );
    single(
        &mut out,
        "outpost_outbox_used_bytes",
        "gauge",
        "Bytes the outbox accounts as used.",
        s.totals.used_bytes,
    );
    single(
        &mut out,
        "outpost_outbox_max_bytes",
        "gauge",
        "Configured outbox capacity (outbox.max_bytes).",
        s.totals.max_bytes,
    );
    single(
        &mut out,
        "outpost_outbox_commits_total",
        "counter",
        "Outbox write transactions committed.",
        s.totals.commits,
    );
    single(
        &mut out,
        "outpost_upload_batches_total",
        "counter",
        "Batches the hub answered with 200.",
        s.uploader.batches_total,
    );
    single(
        &mut out,
        "outpost_upload_errors_total",
        "counter",
        "Failed upload attempts (connect, TLS, timeout, HTTP error, bad response).",
        s.uploader.errors_total,
    );
    let last = s
        .uploader
        .last_success_ms
        .map_or(0.0, |ms| ms as f64 / 1000.0);
    single(
        &mut out,
        "outpost_last_successful_upload_timestamp_seconds",
        "gauge",
        "Unix time of the last successful upload (0 if none yet).",
        last,
    );
    single(
        &mut out,
        "outpost_upload_consecutive_failures",
        "gauge",
        "Failed upload attempts since the last success.",
        s.uploader.consecutive_failures,
    );
    header(
        &mut out,
        "outpost_api_requests_rejected_total",
        "counter",
        "Local API requests refused, by reason.",
    );
    for r in Reason::ALL {
        let _ = writeln!(
            out,
            "outpost_api_requests_rejected_total{{reason=\"{}\"}} {}",
            r.label(),
            s.rejected.get(r)
        );
    }
    single(
        &mut out,
        "outpost_agent_uptime_seconds",
        "gauge",
        "Seconds since the agent started.",
        s.uptime_s,
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::uploader::status::UploaderState;

    fn uploader() -> UploaderView {
        UploaderView {
            state: UploaderState::Idle,
            last_success_ms: Some(1_500),
            last_error: None,
            last_error_ms: None,
            consecutive_failures: 0,
            next_attempt_ms: None,
            batches_total: 4,
            errors_total: 2,
        }
    }

    #[test]
    fn exposition_format() {
        let streams = vec![
            StreamView {
                stream: "alarms".into(),
                pending: 3,
                pending_bytes: 30,
                delivered: 7,
                ..Default::default()
            },
            StreamView {
                stream: "we\"ird\\x\n".into(),
                ..Default::default()
            },
        ];
        let totals = TotalsView {
            used_bytes: 99,
            max_bytes: 1000,
            ..Default::default()
        };
        let rejected = RejectCounters::default();
        rejected.count(Reason::InvalidJson);
        rejected.count(Reason::InvalidJson);
        let up = uploader();
        let text = render(&Snapshot {
            totals: &totals,
            streams: &streams,
            uploader: &up,
            rejected: &rejected,
            uptime_s: 5,
        });
        assert!(text.contains("# HELP outpost_outbox_pending_records "));
        assert!(text.contains("# TYPE outpost_outbox_pending_records gauge\n"));
        assert!(text.contains("outpost_outbox_pending_records{stream=\"alarms\"} 3\n"));
        assert!(text.contains("outpost_outbox_pending_bytes{stream=\"alarms\"} 30\n"));
        assert!(text.contains("# TYPE outpost_outbox_delivered_total counter\n"));
        assert!(text.contains("outpost_outbox_delivered_total{stream=\"alarms\"} 7\n"));
        assert!(text.contains("outpost_outbox_pending_records{stream=\"we\\\"ird\\\\x\\n\"} 0\n"));
        assert!(text.contains("outpost_outbox_used_bytes 99\n"));
        assert!(text.contains("outpost_outbox_max_bytes 1000\n"));
        assert!(text.contains("outpost_upload_errors_total 2\n"));
        assert!(text.contains("outpost_upload_batches_total 4\n"));
        assert!(text.contains("outpost_last_successful_upload_timestamp_seconds 1.5\n"));
        assert!(text.contains("outpost_api_requests_rejected_total{reason=\"invalid_json\"} 2\n"));
        assert!(text.contains("outpost_api_requests_rejected_total{reason=\"body_too_large\"} 0\n"));
        // Every sample line belongs to a family announced with HELP and TYPE before it.
        let mut announced = std::collections::HashSet::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                announced.insert(rest.split(' ').next().unwrap().to_owned());
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap();
                assert!(announced.contains(name), "{line}");
                let value = line.rsplit(' ').next().unwrap();
                assert!(value.parse::<f64>().is_ok(), "{line}");
            }
        }
    }
}
