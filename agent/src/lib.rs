//! outpost-agent: the thin tokio shell that wires the outbox, the local API and the uploader.
