//! `io.outpost.Agent1` over the daemon's state. Each answer is produced by the code that
//! serves the same thing over HTTP: `OutboxStats` is `GET /v1/outbox`'s own handler, `Publish`
//! takes the stream, priority and JSON rules and the outbox of `POST /v1/outbox/{stream}`.

use std::sync::Arc;

use http_body_util::BodyExt;
use outpost_dbus::agent1::{AgentBackend, AgentError};
use outpost_health::runner::BoxFuture;
use outpost_outbox::NewRecord;
use outpost_proto::{Priority, StreamName};

use crate::api::errors::ApiError;
use crate::api::publish::validate_json;
use crate::api::AppState;

pub struct AgentApi {
    state: Arc<AppState>,
}

impl AgentApi {
    pub fn new(state: Arc<AppState>) -> Self {
        AgentApi { state }
    }
}

/// Caller mistakes (4xx over HTTP) are `InvalidArgs`; the rest `Failed`.
fn from_api(e: ApiError) -> AgentError {
    if e.status.is_client_error() {
        AgentError::InvalidArgs(e.message)
    } else {
        AgentError::Failed(e.message)
    }
}

impl AgentBackend for AgentApi {
    fn health_status(&self) -> BoxFuture<'_, Result<String, AgentError>> {
        Box::pin(async move {
            let status = self.state.health.borrow().clone();
            serde_json::to_string(&status).map_err(|e| AgentError::Failed(e.to_string()))
        })
    }

    fn outbox_stats(&self) -> BoxFuture<'_, Result<String, AgentError>> {
        Box::pin(async move {
            let resp = crate::api::info::outbox(&self.state)
                .await
                .map_err(from_api)?;
            // The body is a complete in-memory buffer: collecting it cannot fail.
            let body = resp
                .into_body()
                .collect()
                .await
                .map(|c| c.to_bytes())
                .unwrap_or_default();
            String::from_utf8(body.to_vec())
                .map(|s| s.trim_end().to_owned())
                .map_err(|e| AgentError::Failed(e.to_string()))
        })
    }

    fn identity(&self) -> BoxFuture<'_, Result<String, AgentError>> {
        Box::pin(async move {
            // The same document as `GET /v1/identity` (`outpostctl identity --json`).
            let view = match &self.state.identity {
                Some(identity) => identity.view(),
                None => crate::identity::view::without_identity(&self.state.config),
            };
            serde_json::to_string(&view).map_err(|e| AgentError::Failed(e.to_string()))
        })
    }

    fn publish(
        &self,
        stream: String,
        payload: String,
        priority: String,
    ) -> BoxFuture<'_, Result<String, AgentError>> {
        Box::pin(async move {
            let stream =
                StreamName::parse(&stream).map_err(|e| AgentError::InvalidArgs(e.to_string()))?;
            let priority = if priority.is_empty() {
                self.state.config.outbox.priority_for(&stream)
            } else {
                priority
                    .parse::<Priority>()
                    .map_err(|e| AgentError::InvalidArgs(e.to_string()))?
            };
            validate_json(payload.as_bytes()).map_err(from_api)?;
            let record = NewRecord {
                id: None,
                stream,
                priority,
                payload: outpost_proto::ingest::payload_bytes(payload.as_bytes()).to_vec(),
            };
            let accepted = self
                .state
                .outbox
                .submit(record)
                .await
                .map_err(|e| from_api(ApiError::from(e)))?;
            Ok(accepted.id.to_string())
        })
    }
}
