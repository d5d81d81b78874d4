//! The zbus side of `io.outpost.Agent1`: each method hands over to the [`AgentBackend`].

use std::sync::Arc;

use super::{AgentBackend, AgentError};

/// Standard names, so `busctl`/`gdbus` show the message without custom error tables.
#[derive(Debug, zbus::DBusError)]
#[zbus(prefix = "org.freedesktop.DBus.Error")]
pub enum Agent1Error {
    #[zbus(error)]
    ZBus(zbus::Error),
    InvalidArgs(String),
    Failed(String),
}

impl From<AgentError> for Agent1Error {
    fn from(e: AgentError) -> Self {
        match e {
            AgentError::InvalidArgs(m) => Agent1Error::InvalidArgs(m),
            AgentError::Failed(m) => Agent1Error::Failed(m),
        }
    }
}

pub struct Agent1 {
    backend: Arc<dyn AgentBackend>,
}

impl Agent1 {
    pub fn new(backend: Arc<dyn AgentBackend>) -> Self {
        Agent1 { backend }
    }
}

#[zbus::interface(name = "io.outpost.Agent1")]
impl Agent1 {
    #[zbus(out_args("status_json"))]
    async fn health_status(&self) -> Result<String, Agent1Error> {
        Ok(self.backend.health_status().await?)
    }

    #[zbus(out_args("stats_json"))]
    async fn outbox_stats(&self) -> Result<String, Agent1Error> {
        Ok(self.backend.outbox_stats().await?)
    }

    #[zbus(out_args("identity_json"))]
    async fn identity(&self) -> Result<String, Agent1Error> {
        Ok(self.backend.identity().await?)
    }

    #[zbus(out_args("record_id"))]
    async fn publish(
        &self,
        stream: String,
        json_payload: String,
        priority: String,
    ) -> Result<String, Agent1Error> {
        Ok(self.backend.publish(stream, json_payload, priority).await?)
    }
}
