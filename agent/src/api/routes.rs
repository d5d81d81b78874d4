//! Request routing.

use std::convert::Infallible;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Method, Request};

use super::errors::ApiError;
use super::response::Resp;
use super::state::AppState;
use super::{info, publish, update};

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
    // Owned: some handlers take the request (and its body) by value.
    let path = req.uri().path().to_owned();
    let method = &req.method().clone();
    if path.starts_with(publish::PREFIX) {
        return match *method {
            Method::POST => publish::publish(state, req).await,
            _ => Err(ApiError::method_not_allowed("POST")),
        };
    }
    let get = |m: &Method| *m == Method::GET || *m == Method::HEAD;
    match path.as_str() {
        "/v1/status" if get(method) => info::status(state).await,
        "/v1/outbox" if get(method) => info::outbox(state).await,
        "/metrics" if get(method) => info::metrics(state).await,
        "/v1/install" if get(method) => update::install_status(state).await,
        "/v1/install" if *method == Method::POST => update::start_install(state, req).await,
        "/v1/slots" if get(method) => update::slots(state).await,
        "/v1/slots/mark" if *method == Method::POST => update::mark(state, req).await,
        "/v1/status" | "/v1/outbox" | "/metrics" | "/v1/slots" => {
            Err(ApiError::method_not_allowed("GET"))
        }
        "/v1/install" => Err(ApiError::method_not_allowed("GET, POST")),
        "/v1/slots/mark" => Err(ApiError::method_not_allowed("POST")),
        _ => Err(ApiError::not_found()),
    }
}
