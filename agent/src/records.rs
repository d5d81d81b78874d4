//! Events the daemon records about itself (update outcomes, workload applies) into its outbox.

use outpost_outbox::{EnqueueError, NewRecord, Outbox};
use outpost_proto::{Priority, RecordId, StreamName};
use serde::Serialize;

/// Records `payload` once under `id` (a second call with the same id is a no-op: a retried
/// step is not reported twice). Critical: never evicted. A failure is logged, never fatal.
pub async fn record_once(
    outbox: &Outbox,
    stream: &str,
    id: &str,
    payload: &impl Serialize,
    what: &str,
) {
    let (Ok(stream), Ok(id), Ok(payload)) = (
        StreamName::parse(stream),
        RecordId::parse(id),
        serde_json::to_vec(payload),
    ) else {
        tracing::warn!(%stream, %id, "cannot record {what}: invalid stream, id or payload");
        return;
    };
    match outbox
        .submit(NewRecord {
            id: Some(id),
            stream,
            priority: Priority::Critical,
            payload,
        })
        .await
    {
        Ok(_) | Err(EnqueueError::Conflict { .. }) => {}
        Err(e) => tracing::warn!(error = %e, "cannot record {what}"),
    }
}
