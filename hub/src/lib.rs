//! `outpost-hub`: the cloud side of Outpost. It issues a fleet CA for first-time setups
//! ([`init`]), terminates mutual TLS ([`tls`], [`server`]), stores uploaded telemetry
//! idempotently by `(device, id)` ([`ingest`], [`legacy`], [`store`]) and lets operators look at
//! what arrived ([`records`], [`stats`]). Devices enroll with a bootstrap token and a CSR
//! ([`enroll`], bookkeeping in [`devices`]).
//!
//! The binary in `main.rs` is only a CLI over these modules, so tests drive the same code paths.

pub mod config;
pub mod devices;
pub mod enroll;
pub mod files;
pub mod http;
pub mod identity;
pub mod ingest;
pub mod init;
pub mod legacy;
pub mod pki;
pub mod records;
pub mod releases;
pub mod server;
pub mod stats;
pub mod store;
pub mod tls;
pub mod workloads;
