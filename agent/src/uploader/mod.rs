//! The uploader task: drains the outbox to the hub in batches, acks what the hub acknowledged.
//!
//! It runs beside the API on the same runtime but never holds anything the API needs: outbox
//! reads run on the blocking pool and the writes it makes (ack/reject) go through the outbox's
//! group-commit writer like any publish.

pub mod backoff;
pub mod batch;
pub mod client;
pub mod status;
pub mod tls;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use outpost_outbox::{Outbox, Sent};
use outpost_proto::IngestResponse;
use rand::SeedableRng;

use crate::config::{HubConfig, UploaderConfig};
use crate::identity::Identity;
use crate::shutdown::Shutdown;
use crate::{now_ms, oneline};
use backoff::Backoff;
use client::HubClient;
use status::UploaderStatus;

/// Safety net in case a new-record notification is missed: look at the outbox this often.
const POLL_INTERVAL: Duration = Duration::from_secs(5);

pub struct Uploader {
    outbox: Outbox,
    hub: HubConfig,
    /// Built on first use and rebuilt after a failure to load the TLS files, so a device whose
    /// certificate is provisioned after boot starts uploading without a restart.
    client: Option<HubClient>,
    config: UploaderConfig,
    status: Arc<UploaderStatus>,
    /// `[identity]`: the client certificate and key come from here, not from files.
    identity: Option<Arc<Identity>>,
    /// The identity generation the current client was built for.
    built_for: u64,
    /// Halvings of the batch limits after the hub refused a batch as too large (HTTP 413);
    /// reset by the next success. Without it one oversized batch would block every stream.
    shrink: u32,
}

/// Enough halvings to get from the largest allowed batch to a single record.
const MAX_SHRINK: u32 = 24;

enum Step {
    Empty,
    Sent,
    Failed(String),
}

impl Uploader {
    pub fn new(
        outbox: Outbox,
        hub: HubConfig,
        config: UploaderConfig,
        status: Arc<UploaderStatus>,
    ) -> Self {
        Self {
            outbox,
            hub,
            client: None,
            identity: None,
            built_for: 0,
            config,
            status,
            shrink: 0,
        }
    }

    /// Authenticate with the device identity (key backend + enrolled certificate).
    pub fn with_identity(mut self, identity: Arc<Identity>) -> Self {
        self.identity = Some(identity);
        self
    }

    fn client(&mut self) -> Result<&mut HubClient, String> {
        if let Some(identity) = &self.identity {
            // A new certificate (enrollment) means a new TLS client on the next connection.
            if identity.generation() != self.built_for {
                self.client = None;
            }
        }
        if self.client.is_none() {
            let tls = match &self.identity {
                Some(identity) => {
                    self.built_for = identity.generation();
                    identity.client_config()?
                }
                None => tls::client_config(&self.hub).map_err(|e| oneline(&e.to_string()))?,
            };
            let timeout = Duration::from_millis(self.config.request_timeout_ms);
            let mut client =
                HubClient::new(&self.hub, tls, timeout).map_err(|e| oneline(&e.to_string()))?;
            if let Some(identity) = &self.identity {
                client = client.with_time_floor(identity.time_floor());
            }
            self.client = Some(client);
        }
        // Just filled above when it was empty.
        self.client
            .as_mut()
            .ok_or_else(|| "hub client unavailable".to_owned())
    }

    fn connected(&self) -> bool {
        self.client.as_ref().is_some_and(HubClient::is_connected)
    }

    pub async fn run(mut self, mut shutdown: Shutdown) {
        let backoff = Backoff::new(self.config.backoff_base_ms, self.config.backoff_cap_ms);
        let mut rng = rand::rngs::StdRng::from_os_rng();
        let notify = self.outbox.new_records();
        let mut identity_changes = self.identity.as_ref().map(|i| i.subscribe());
        tracing::info!(hub = %self.hub.url, "uploader started");
        while !shutdown.is_triggered() {
            // Registered before reading, so a record committed in between still wakes us.
            let notified = notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let step = tokio::select! {
                step = self.step() => step,
                _ = shutdown.wait() => break,
            };
            match step {
                Step::Sent => continue,
                Step::Empty => {
                    self.status.set_connected(self.connected());
                    tokio::select! {
                        _ = notified => {}
                        _ = tokio::time::sleep(POLL_INTERVAL) => {}
                        _ = shutdown.wait() => break,
                    }
                }
                Step::Failed(error) => {
                    let failures = self.status.failure(now_ms(), error.clone());
                    let delay = backoff.delay(failures, &mut rng);
                    tracing::warn!(error = %error, consecutive_failures = failures, retry_in_ms = delay.as_millis() as u64, "upload failed");
                    self.status.backing_off(now_ms() + delay.as_millis() as i64);
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        // Enrolled (or the key opened) meanwhile: try at once.
                        _ = changed(&mut identity_changes) => {}
                        _ = shutdown.wait() => break,
                    }
                    self.status.retrying();
                }
            }
        }
        // Whatever batch was in flight stays pending and is sent again after the restart.
        self.client = None;
        tracing::info!("uploader stopped");
    }

    async fn step(&mut self) -> Step {
        let outbox = self.outbox.clone();
        let max_records = (self.config.batch_max_records >> self.shrink).max(1);
        let max_bytes = (self.config.batch_max_bytes >> self.shrink).max(1);
        let prepared = tokio::task::spawn_blocking(move || -> Result<_, String> {
            let records = outbox
                .next_batch(max_records, max_bytes)
                .map_err(|e| e.to_string())?;
            if records.is_empty() {
                return Ok(None);
            }
            batch::prepare(records).map(Some).map_err(|e| e.to_string())
        })
        .await;
        let prepared = match prepared {
            Ok(Ok(Some(p))) => p,
            Ok(Ok(None)) => return Step::Empty,
            Ok(Err(e)) => return Step::Failed(oneline(&format!("reading the outbox: {e}"))),
            Err(e) => return Step::Failed(oneline(&format!("reading the outbox: {e}"))),
        };
        if !prepared.invalid.is_empty() {
            for (sent, reason) in &prepared.invalid {
                tracing::error!(id = %sent.id, reason = %reason, "dropping a damaged record");
            }
            if let Err(e) = self.outbox.reject(prepared.invalid).await {
                return Step::Failed(oneline(&format!("rejecting damaged records: {e}")));
            }
        }
        if prepared.ids.is_empty() {
            return Step::Sent;
        }
        let n = prepared.ids.len();
        tracing::debug!(
            records = n,
            json_bytes = prepared.json_bytes,
            zstd_bytes = prepared.body.len(),
            "uploading batch"
        );
        let client = match self.client() {
            Ok(c) => c,
            Err(e) => return Step::Failed(e),
        };
        let response = match client.post_batch(prepared.body).await {
            Ok(r) => r,
            Err(client::UploadError::Status {
                status: 413,
                message,
            }) => {
                return self.too_large(prepared.ids, &message).await;
            }
            Err(e) => return Step::Failed(e.to_string()),
        };
        self.shrink = 0;
        let (acked, rejected, unanswered) = sort_response(&prepared.ids, response);
        let (n_acked, n_rejected) = (acked.len(), rejected.len());
        for (sent, reason) in &rejected {
            tracing::warn!(id = %sent.id, reason = %reason, "hub rejected a record; it is dropped");
        }
        if unanswered > 0 {
            tracing::warn!(
                unanswered,
                "hub answered neither ack nor reject for some records; they stay pending"
            );
        }
        if !acked.is_empty() {
            if let Err(e) = self.outbox.ack(acked).await {
                return Step::Failed(oneline(&format!(
                    "hub acknowledged {n_acked} records but storing the ack failed: {e}"
                )));
            }
        }
        if !rejected.is_empty() {
            if let Err(e) = self.outbox.reject(rejected).await {
                return Step::Failed(oneline(&format!(
                    "storing {n_rejected} rejections failed: {e}"
                )));
            }
        }
        self.status
            .success(now_ms(), n_acked as u64, n_rejected as u64);
        tracing::debug!(
            records = n,
            acked = n_acked,
            rejected = n_rejected,
            "batch uploaded"
        );
        if n_acked + n_rejected == 0 {
            // Nothing changed on disk: sending the same batch again at once would spin.
            return Step::Failed(format!(
                "hub acknowledged none of the {n} records it was sent"
            ));
        }
        Step::Sent
    }
}

impl Uploader {
    /// The hub refused the batch as too large: send smaller batches; a single record the hub
    /// refuses on its own can never be delivered, so it goes to the dead letters (kept and
    /// counted as rejected) instead of blocking every stream behind it forever.
    async fn too_large(&mut self, ids: Vec<Sent>, message: &str) -> Step {
        let [only] = ids.as_slice() else {
            self.shrink = (self.shrink + 1).min(MAX_SHRINK);
            return Step::Failed(oneline(&format!(
                "hub refused a batch of {} records as too large ({message}); sending smaller batches",
                ids.len()
            )));
        };
        let reason = oneline(&format!("too large for the hub: HTTP 413 ({message})"));
        tracing::error!(id = %only.id, reason = %reason, "the hub refuses this record on its own; moved to the dead letters");
        match self.outbox.reject(vec![(only.clone(), reason)]).await {
            Ok(_) => Step::Sent,
            Err(e) => Step::Failed(oneline(&format!("storing the rejection failed: {e}"))),
        }
    }
}

/// Resolves when the identity changed; never without `[identity]`.
async fn changed(rx: &mut Option<tokio::sync::watch::Receiver<u64>>) {
    match rx {
        Some(rx) => {
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending::<()>().await,
    }
}

/// Keeps only ids that were in the batch: a confused hub must not delete records it never saw.
/// Answers name the record that was sent (id and checksum), so an ack cannot delete a newer
/// record that reuses the id. Returns (acked, rejected, number of batch ids answered by neither).
pub fn sort_response(
    batch: &[Sent],
    response: IngestResponse,
) -> (Vec<Sent>, Vec<(Sent, String)>, usize) {
    let mut open: HashMap<&str, &Sent> = batch.iter().map(|s| (s.id.as_str(), s)).collect();
    let mut acked = Vec::with_capacity(response.acked.len());
    for id in response.acked {
        if let Some(sent) = open.remove(id.as_str()) {
            acked.push(sent.clone());
        }
    }
    let mut rejected = Vec::new();
    for r in response.rejected {
        if let Some(sent) = open.remove(r.id.as_str()) {
            rejected.push((sent.clone(), oneline(&r.reason)));
        }
    }
    (acked, rejected, open.len())
}

#[cfg(test)]
mod response_tests {
    use super::*;
    use outpost_proto::{RecordId, Rejection};

    fn sent(id: &str) -> Sent {
        Sent {
            id: RecordId::parse(id).unwrap(),
            sha256: format!("sha-of-{id}"),
        }
    }

    #[test]
    fn only_batch_ids_are_acked_or_rejected() {
        let ids: Vec<Sent> = ["a", "b", "c", "d"].iter().map(|s| sent(s)).collect();
        let response = IngestResponse {
            acked: vec!["a".into(), "zzz".into(), "a".into(), "bad id".into()],
            rejected: vec![
                Rejection {
                    id: "b".into(),
                    reason: "checksum\nmismatch".into(),
                },
                Rejection {
                    id: "a".into(),
                    reason: "already acked".into(),
                },
                Rejection {
                    id: "nope".into(),
                    reason: "x".into(),
                },
            ],
        };
        let (acked, rejected, unanswered) = sort_response(&ids, response);
        assert_eq!(acked, vec![sent("a")]);
        assert_eq!(rejected, vec![(sent("b"), "checksum mismatch".to_string())]);
        assert_eq!(unanswered, 2);
    }
}
