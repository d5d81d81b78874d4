//! `[delivery]` endpoints: `GET /v1/delivery` (the poller's state), `POST /v1/delivery/check`
//! (ask the hub now, install nothing) and `POST /v1/delivery/now` (check, download and install
//! now, ignoring the download windows; the answer comes when the cycle ended).

use hyper::StatusCode;

use super::errors::{ApiError, Reason};
use super::response::{json, Resp};
use super::state::AppState;

fn delivery(state: &AppState) -> Result<&crate::delivery::Delivery, ApiError> {
    state.delivery.as_deref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            Reason::UpdatesNotConfigured,
            "update delivery is not configured (no [delivery] in the agent configuration)",
        )
    })
}

pub fn status(state: &AppState) -> Result<Resp, ApiError> {
    Ok(json(StatusCode::OK, &delivery(state)?.view()))
}

pub async fn cycle(state: &AppState, install: bool) -> Result<Resp, ApiError> {
    let outcome = delivery(state)?.cycle(install, true).await;
    let status = if outcome.result == "failed" {
        StatusCode::BAD_GATEWAY
    } else {
        StatusCode::OK
    };
    Ok(json(status, &outcome))
}
