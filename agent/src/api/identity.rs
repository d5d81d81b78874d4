//! `GET /v1/identity` (device id, key, certificate, enrollment state) and `POST /v1/enroll`
//! (`{"token": "..."}`: enroll with the hub now; unix socket only, like installs).

use hyper::body::Incoming;
use hyper::{Request, StatusCode};

use super::errors::{ApiError, Reason};
use super::response::{json, Resp};
use super::state::AppState;
use crate::identity::view::{self, EnrollCommand};
use crate::identity::EnrollFailure;

pub fn status(state: &AppState) -> Resp {
    let view = match &state.identity {
        Some(identity) => identity.view(),
        None => view::without_identity(&state.config),
    };
    json(StatusCode::OK, &view)
}

pub async fn enroll(state: &AppState, req: Request<Incoming>) -> Result<Resp, ApiError> {
    let Some(identity) = state.identity.clone() else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            Reason::InvalidRequest,
            "enrollment needs [identity] (and [hub]) in the agent configuration",
        ));
    };
    let body = super::publish::read_body(req.into_body(), state.config.api.max_body_bytes).await?;
    // serde's message could quote the token: keep only the position.
    let cmd: EnrollCommand = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(
            Reason::InvalidJson,
            format!(
                "body must be {{\"token\": \"...\"}} (line {}, column {})",
                e.line(),
                e.column()
            ),
        )
    })?;
    if cmd.token.trim().is_empty() {
        return Err(ApiError::bad_request(
            Reason::InvalidRequest,
            "token must not be empty",
        ));
    }
    match identity.enroll_with(cmd.token.trim()).await {
        Ok(enrolled) => Ok(json(StatusCode::OK, &enrolled)),
        Err(e) => {
            let status = match &e {
                EnrollFailure::KeyNotReady(_) => StatusCode::SERVICE_UNAVAILABLE,
                EnrollFailure::Unreachable(_) | EnrollFailure::BadCertificate(_) => {
                    StatusCode::BAD_GATEWAY
                }
                EnrollFailure::Refused { .. } => StatusCode::FORBIDDEN,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            Err(ApiError::new(status, Reason::InvalidRequest, e.to_string()))
        }
    }
}
