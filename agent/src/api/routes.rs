//! Request routing.

use std::convert::Infallible;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};

use super::errors::{ApiError, Reason};
use super::response::Resp;
use super::state::AppState;
use super::{delivery, health, identity, info, publish, update, workloads};

/// Which listener a request came through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    /// The unix socket, whose file mode decides who may call.
    Unix,
    /// The optional loopback TCP listener, open to every local user.
    Tcp,
}

pub async fn handle(
    state: Arc<AppState>,
    req: Request<Incoming>,
    via: Via,
) -> Result<Resp, Infallible> {
    let result = if via == Via::Tcp && changes_the_system(&req) {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            Reason::InvalidRequest,
            "installing, marking slots and enrolling are only served on the unix socket, whose mode decides who may change this device",
        ))
    } else {
        route(&state, req).await
    };
    Ok(match result {
        Ok(resp) => resp,
        Err(e) => {
            state.rejected.count(e.reason);
            tracing::debug!(status = e.status.as_u16(), reason = e.reason.label(), error = %e.message, "request refused");
            e.into_response()
        }
    })
}

/// Requests that change slots or the bootloader, as opposed to publishing telemetry.
fn changes_the_system(req: &Request<Incoming>) -> bool {
    *req.method() != Method::GET
        && *req.method() != Method::HEAD
        && matches!(
            req.uri().path(),
            "/v1/install"
                | "/v1/slots/mark"
                | "/v1/enroll"
                | "/v1/delivery/now"
                | "/v1/workloads/check"
        )
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
        "/v1/health" if get(method) => Ok(health::status(state)),
        "/metrics" if get(method) => info::metrics(state).await,
        "/v1/install" if get(method) => update::install_status(state).await,
        "/v1/install" if *method == Method::POST => update::start_install(state, req).await,
        "/v1/slots" if get(method) => update::slots(state).await,
        "/v1/slots/mark" if *method == Method::POST => update::mark(state, req).await,
        "/v1/identity" if get(method) => Ok(identity::status(state)),
        "/v1/delivery" if get(method) => delivery::status(state),
        "/v1/delivery/check" if *method == Method::POST => delivery::cycle(state, false).await,
        "/v1/delivery/now" if *method == Method::POST => delivery::cycle(state, true).await,
        "/v1/delivery" => Err(ApiError::method_not_allowed("GET")),
        "/v1/delivery/check" | "/v1/delivery/now" => Err(ApiError::method_not_allowed("POST")),
        "/v1/workloads" if get(method) => workloads::status(state),
        "/v1/workloads/check" if *method == Method::POST => workloads::cycle(state).await,
        "/v1/k3s" if get(method) => workloads::k3s(state),
        "/v1/workloads" | "/v1/k3s" => Err(ApiError::method_not_allowed("GET")),
        "/v1/workloads/check" => Err(ApiError::method_not_allowed("POST")),
        "/v1/enroll" if *method == Method::POST => identity::enroll(state, req).await,
        "/v1/identity" => Err(ApiError::method_not_allowed("GET")),
        "/v1/enroll" => Err(ApiError::method_not_allowed("POST")),
        "/v1/status" | "/v1/outbox" | "/metrics" | "/v1/slots" | "/v1/health" => {
            Err(ApiError::method_not_allowed("GET"))
        }
        "/v1/install" => Err(ApiError::method_not_allowed("GET, POST")),
        "/v1/slots/mark" => Err(ApiError::method_not_allowed("POST")),
        _ => Err(ApiError::not_found()),
    }
}
