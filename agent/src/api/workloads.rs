//! `[workloads]` endpoints: `GET /v1/workloads` (bound and applied revisions, objects, last
//! error) and `POST /v1/workloads/check` (ask the hub now and apply what it wants; the
//! answer comes when the cycle ended).

use hyper::StatusCode;

use super::errors::{ApiError, Reason};
use super::response::{json, Resp};
use super::state::AppState;

fn workloads(state: &AppState) -> Result<&crate::workloads::Workloads, ApiError> {
    state.workloads.as_deref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            Reason::WorkloadsNotConfigured,
            "workloads are not configured (no [workloads] in the agent configuration)",
        )
    })
}

pub fn status(state: &AppState) -> Result<Resp, ApiError> {
    Ok(json(StatusCode::OK, &workloads(state)?.view()))
}

pub async fn cycle(state: &AppState) -> Result<Resp, ApiError> {
    let outcome = workloads(state)?.cycle().await;
    let status = if outcome.result == "failed" {
        StatusCode::BAD_GATEWAY
    } else {
        StatusCode::OK
    };
    Ok(json(status, &outcome))
}

/// `GET /v1/k3s`: the supervisor's view of K3s.
pub fn k3s(state: &AppState) -> Result<Resp, ApiError> {
    let k3s = state.k3s.as_deref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            Reason::WorkloadsNotConfigured,
            "K3s is not configured (no [k3s] in the agent configuration)",
        )
    })?;
    Ok(json(StatusCode::OK, &k3s.status()))
}
