//! `GET /v1/health`: the health gate's status (`outpost_health::status::HealthStatus` as JSON),
//! read by `outpostctl health` and `outpostctl health --wait` (outpost-health.service).

use hyper::StatusCode;

use super::response::{json, Resp};
use super::state::AppState;

pub fn status(state: &AppState) -> Resp {
    let status = state.health.borrow().clone();
    json(StatusCode::OK, &status)
}
