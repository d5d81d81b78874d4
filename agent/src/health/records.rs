//! Gate decisions into the outbox stream `outpost.health`, as critical records (never evicted:
//! a rollback's reason is what the fleet operator needs most).
//!
//! The record id is derived from the decision id, so a decision appended twice (kill -9 between
//! append and persist) is stored once: the outbox answers the second append as a duplicate.

use outpost_health::driver::RecordSink;
use outpost_health::runner::systemd::ClientError;
use outpost_health::runner::BoxFuture;
use outpost_health::HealthRecord;
use outpost_outbox::{EnqueueError, NewRecord, Outbox};
use outpost_proto::{Priority, RecordId, StreamName};

pub struct OutboxSink {
    outbox: Outbox,
}

impl OutboxSink {
    pub fn new(outbox: Outbox) -> Self {
        Self { outbox }
    }
}

/// `<boot id>/<slot>/<result>` with the characters record ids do not allow replaced.
pub fn record_id(decision_id: &str) -> Result<RecordId, ClientError> {
    let text: String = decision_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._:@+=-".contains(c) {
                c
            } else {
                ':'
            }
        })
        .collect();
    RecordId::parse(&format!("health:{text}"))
        .map_err(|e| ClientError(format!("record id for {decision_id:?}: {e}")))
}

impl RecordSink for OutboxSink {
    fn append<'a>(&'a self, record: &'a HealthRecord) -> BoxFuture<'a, Result<(), ClientError>> {
        Box::pin(async move {
            let payload =
                serde_json::to_vec(record).map_err(|e| ClientError(format!("encoding: {e}")))?;
            let stream = StreamName::parse(outpost_health::STREAM)
                .map_err(|e| ClientError(e.to_string()))?;
            let accepted = match self
                .outbox
                .submit(NewRecord {
                    id: Some(record_id(&record.decision_id)?),
                    stream,
                    priority: Priority::Critical,
                    payload,
                })
                .await
            {
                Ok(a) => a,
                // The decision was recorded before a restart, with details that differ now
                // (e.g. a rollback seen again): the first record stands.
                Err(EnqueueError::Conflict { id }) => {
                    tracing::info!(%id, "health decision already recorded");
                    return Ok(());
                }
                Err(e) => return Err(ClientError(format!("outbox: {e}"))),
            };
            tracing::info!(id = %accepted.id, result = record.result.as_str(), slot = %record.slot, duplicate = accepted.duplicate, "health decision recorded");
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decision_ids_become_valid_record_ids() {
        let id = record_id("0f1e2d3c-aaaa-bbbb-cccc-000000000000/B/committed").unwrap();
        assert_eq!(
            id.as_str(),
            "health:0f1e2d3c-aaaa-bbbb-cccc-000000000000:B:committed"
        );
        assert_ne!(
            record_id("x/B/failed").unwrap(),
            record_id("x/B/committed").unwrap()
        );
    }
}
