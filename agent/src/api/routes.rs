//! Request routing.

use std::convert::Infallible;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Method, Request};

use super::errors::ApiError;
use super::response::Resp;
use super::state::AppState;
use super::{info, publish};

pub async fn handle(state: Arc<AppState>, req: Request<Incoming>) -> Result<Resp, Infallible> {
    let result = route(&state, req).await;
    Ok(match result {
        Ok(resp) => resp,
        Err(e) => {
            state.rejected.count(e.reason);
            tracing::debug!(status = e.status.as_u16(), reason = e.reason.label(), error = %e.message, "request refused");
            e.into_response()
        }
    })
}

async fn route(state: &AppState, req: Request<Incoming>) -> Result<Resp, ApiError> {
    let path = req.uri().path();
    let method = req.method();
    if path.starts_with(publish::PREFIX) {
        return match *method {
            Method::POST => publish::publish(state, req).await,
            _ => Err(ApiError::method_not_allowed("POST")),
        };
    }
    let get = |m: &Method| *m == Method::GET || *m == Method::HEAD;
    match path {
        "/v1/status" if get(method) => info::status(state).await,
        "/v1/outbox" if get(method) => info::outbox(state).await,
        "/metrics" if get(method) => info::metrics(state).await,
        "/v1/status" | "/v1/outbox" | "/metrics" => Err(ApiError::method_not_allowed("GET")),
        _ => Err(ApiError::not_found()),
    }
}
