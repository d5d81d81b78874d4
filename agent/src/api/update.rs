//! Update endpoints: `POST /v1/install` (start, 202; 409 while one runs), `GET /v1/install`
//! (progress or last result), `GET /v1/slots` (like `rauc status`), `POST /v1/slots/mark`.
//!
//! The work is synchronous file and device I/O and runs on the blocking pool; an install runs
//! detached from the request, so the client polls `GET /v1/install`.

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use outpost_update::mark::MarkError;

use super::errors::{ApiError, Reason};
use super::response::{json, Resp};
use super::state::AppState;
use crate::config::UpdateConfig;
use crate::update::install::{Overrides, StartError};
use crate::update::{self, UpdateError};
use crate::views::{InstallRequest, MarkRequest};

fn configured(state: &AppState) -> Result<Arc<UpdateConfig>, ApiError> {
    state.update.clone().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            Reason::UpdatesNotConfigured,
            UpdateError::NotConfigured.to_string(),
        )
    })
}

async fn read_json<T: serde::de::DeserializeOwned>(
    state: &AppState,
    req: Request<Incoming>,
) -> Result<T, ApiError> {
    let body = super::publish::read_body(req.into_body(), state.config.api.max_body_bytes).await?;
    serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(Reason::InvalidJson, format!("invalid request body: {e}"))
    })
}

fn busy() -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        Reason::InstallBusy,
        "an installation is already running (see GET /v1/install)",
    )
}

pub async fn start_install(state: &AppState, req: Request<Incoming>) -> Result<Resp, ApiError> {
    let cfg = configured(state)?;
    let body: InstallRequest = read_json(state, req).await?;
    let view = update::install::start(
        cfg,
        state.install.clone(),
        &body.bundle,
        Overrides::default(),
    )
    .await
    .map_err(|e| match e {
        StartError::Busy => busy(),
        StartError::Held(reason) => {
            ApiError::new(StatusCode::CONFLICT, Reason::InstallBusy, reason)
        }
        e @ (StartError::NotAbsolute(_) | StartError::Unreadable { .. }) => {
            ApiError::bad_request(Reason::InvalidRequest, e.to_string())
        }
    })?;
    Ok(json(StatusCode::ACCEPTED, &view))
}

pub async fn install_status(state: &AppState) -> Result<Resp, ApiError> {
    configured(state)?;
    Ok(json(StatusCode::OK, &state.install.snapshot()))
}

pub async fn slots(state: &AppState) -> Result<Resp, ApiError> {
    let cfg = configured(state)?;
    let view = tokio::task::spawn_blocking(move || update::slots::view(&cfg))
        .await
        .map_err(task_failed)?
        .map_err(update_error)?;
    Ok(json(StatusCode::OK, &view))
}

pub async fn mark(state: &AppState, req: Request<Incoming>) -> Result<Resp, ApiError> {
    let cfg = configured(state)?;
    let body: MarkRequest = read_json(state, req).await?;
    // An install holds the bootloader for minutes: refuse rather than queue behind it.
    if state.install.is_running() {
        return Err(busy());
    }
    let tracker = state.install.clone();
    let view = tokio::task::spawn_blocking(move || {
        update::slots::mark(&cfg, &tracker, &body.state, &body.slot)
    })
    .await
    .map_err(task_failed)?
    .map_err(update_error)?;
    Ok(json(StatusCode::OK, &view))
}

fn task_failed(e: tokio::task::JoinError) -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        Reason::UpdateFailed,
        format!("internal task failed: {e}"),
    )
}

/// Caller mistakes (unknown slot, state) are 400; bootloader or file failures are 500.
fn update_error(e: UpdateError) -> ApiError {
    let caller = matches!(
        &e,
        UpdateError::Mark(
            MarkError::UnknownState(_)
                | MarkError::BadIdentifier(_)
                | MarkError::NoSuchSlot { .. }
                | MarkError::NoOtherSlot
                | MarkError::NoBootname(_)
        )
    );
    if caller {
        ApiError::bad_request(Reason::InvalidRequest, e.to_string())
    } else {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            Reason::UpdateFailed,
            e.to_string(),
        )
    }
}
