//! Read-only endpoints: `GET /v1/status`, `GET /v1/outbox`, `GET /metrics`.

use hyper::StatusCode;
use outpost_outbox::OutboxStats;

use super::errors::{ApiError, Reason};
use super::response::{json, with_type, Resp};
use super::state::AppState;
use crate::metrics;
use crate::uploader::status::UploaderSnapshot;
use crate::views::{OutboxView, StatusView, StreamView, TotalsView, UploaderView};

/// Outbox statistics read on the blocking pool (they may touch SQLite).
async fn outbox_stats(state: &AppState) -> Result<(TotalsView, Vec<StreamView>), ApiError> {
    let outbox = state.outbox.clone();
    let stats = tokio::task::spawn_blocking(move || outbox.stats())
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                Reason::Storage,
                format!("reading outbox statistics: {e}"),
            )
        })?
        .map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                Reason::Storage,
                format!("reading outbox statistics: {e}"),
            )
        })?;
    Ok(views_from(&stats))
}

pub fn views_from(stats: &OutboxStats) -> (TotalsView, Vec<StreamView>) {
    let mut totals = TotalsView {
        pending: stats.totals.pending,
        used_bytes: stats.totals.used_bytes,
        max_bytes: stats.totals.max_bytes,
        dead_letter: stats.totals.dead_letter,
        commits: stats.totals.commits,
        ..Default::default()
    };
    let mut streams = Vec::with_capacity(stats.streams.len());
    for s in &stats.streams {
        // Counters come from a file; a damaged one must not panic a debug build.
        totals.pending_bytes = totals.pending_bytes.saturating_add(s.pending_bytes);
        totals.delivered = totals.delivered.saturating_add(s.delivered);
        totals.evicted = totals.evicted.saturating_add(s.evicted);
        totals.refused = totals.refused.saturating_add(s.refused);
        totals.rejected = totals.rejected.saturating_add(s.rejected);
        streams.push(StreamView {
            stream: s.stream.clone(),
            priority: Some(s.priority),
            pending: s.pending,
            pending_bytes: s.pending_bytes,
            delivered: s.delivered,
            evicted: s.evicted,
            refused: s.refused,
            rejected: s.rejected,
            quarantined: s.quarantined,
            oldest_pending_ms: s.oldest_pending_ms,
            last_delivered_ms: s.last_delivered_ms,
        });
    }
    (totals, streams)
}

fn uploader_view(s: UploaderSnapshot) -> UploaderView {
    UploaderView {
        state: s.state,
        last_success_ms: s.last_success_ms,
        last_error: s.last_error,
        last_error_ms: s.last_error_ms,
        consecutive_failures: s.consecutive_failures,
        next_attempt_ms: s.next_attempt_ms,
        batches_total: s.batches_total,
        errors_total: s.errors_total,
    }
}

pub async fn status(state: &AppState) -> Result<Resp, ApiError> {
    let (totals, _) = outbox_stats(state).await?;
    let view = StatusView {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        device_id: state.config.device_id.clone(),
        uptime_s: state.started.elapsed().as_secs(),
        hub: state
            .config
            .hub
            .as_ref()
            .map(|h| h.url.to_string().trim_end_matches('/').to_owned()),
        outbox: totals,
        uploader: uploader_view(state.uploader.snapshot()),
    };
    Ok(json(StatusCode::OK, &view))
}

pub async fn outbox(state: &AppState) -> Result<Resp, ApiError> {
    let (totals, streams) = outbox_stats(state).await?;
    let view = OutboxView {
        totals,
        streams,
        uploader: uploader_view(state.uploader.snapshot()),
    };
    Ok(json(StatusCode::OK, &view))
}

pub async fn metrics(state: &AppState) -> Result<Resp, ApiError> {
    let (totals, streams) = outbox_stats(state).await?;
    let uploader = uploader_view(state.uploader.snapshot());
    let text = metrics::render(&metrics::Snapshot {
        totals: &totals,
        streams: &streams,
        uploader: &uploader,
        rejected: &state.rejected,
        uptime_s: state.started.elapsed().as_secs(),
    });
    Ok(with_type(StatusCode::OK, metrics::CONTENT_TYPE, text))
}
