//! Wire types shared by `outpost-agent` and `outpost-hub`, and the pure rules for records.
//!
//! Nothing here performs I/O, reads a clock or touches global state, so every function can be
//! unit-tested and fuzzed alone. Changing a `Serialize` type here changes the hub<->agent protocol.

pub mod checksum;
pub mod enroll;
pub mod ingest;
pub mod legacy;
pub mod priority;
pub mod query;
pub mod record_id;
pub mod stream;
pub mod time;
pub mod updates;
pub mod workloads;

pub use checksum::{sha256_hex, Sha256Hex};
pub use ingest::{IngestBatch, IngestRecord, IngestResponse, Rejection};
pub use priority::Priority;
pub use record_id::RecordId;
pub use stream::StreamName;
