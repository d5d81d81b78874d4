//! Requests sent to the writer thread, each with the channel its answer goes back on.

use outpost_proto::{sha256_hex, Priority, RecordId, StreamName};
use tokio::sync::oneshot;

use crate::admission::record_size;
use crate::{Accepted, EnqueueError, NewRecord, OutboxError, Sent};

pub(crate) type EnqueueReply = oneshot::Sender<Result<Accepted, EnqueueError>>;
pub(crate) type CountReply = oneshot::Sender<Result<usize, OutboxError>>;

/// A record ready for insertion. Built on the publisher's thread, so hashing and id generation
/// run in parallel across publishers instead of on the single writer thread.
#[derive(Debug)]
pub(crate) struct PreparedRecord {
    pub id: RecordId,
    pub stream: StreamName,
    pub priority: Priority,
    pub payload: Vec<u8>,
    pub sha256: String,
    pub size: u64,
}

impl PreparedRecord {
    pub(crate) fn new(record: NewRecord) -> Result<Self, EnqueueError> {
        let id = match record.id {
            Some(id) => id,
            // A UUIDv7 is time-ordered, so agent-assigned ids sort roughly by creation.
            None => RecordId::parse(&uuid::Uuid::now_v7().to_string())
                .map_err(|e| EnqueueError::Storage(format!("generated id was refused: {e}")))?,
        };
        let sha256 = sha256_hex(&record.payload);
        let size = record_size(
            record.payload.len(),
            id.as_str().len(),
            record.stream.as_str().len(),
        );
        Ok(Self {
            id,
            stream: record.stream,
            priority: record.priority,
            payload: record.payload,
            sha256,
            size,
        })
    }
}

#[derive(Debug)]
pub(crate) enum Request {
    Enqueue {
        record: PreparedRecord,
        reply: EnqueueReply,
    },
    Ack {
        ids: Vec<Sent>,
        reply: CountReply,
    },
    Reject {
        items: Vec<(Sent, String)>,
        reply: CountReply,
    },
    /// Move rows found corrupt by the reader, by `seq`, with a reason.
    Quarantine {
        items: Vec<(i64, String)>,
        reply: CountReply,
    },
    /// A write that changes nothing, to prove the store still takes writes (health checks).
    Probe {
        reply: CountReply,
    },
    /// Finish everything queued before this, then stop.
    Shutdown,
}
