//! End-to-end tests of the sync outbox against the real binaries (one test binary, one module
//! per scenario). Slow scenarios are `#[ignore]`d so `cargo test` stays quick;
//! `scripts/test` runs them with `--include-ignored`.

mod bad_input;
mod crash;
mod delivery;
mod enroll;
mod health_gate;
mod legacy;
mod partition;
mod rauc_cli;
mod store_full;
mod workloads;

use std::collections::{BTreeMap, HashSet};

use anyhow::{ensure, Result};
use outpost_e2e::publish::Published;
use serde_json::Value;

/// Asserts that the hub holds exactly `expected` for this device: same ids, each once, same
/// payload bytes (by checksum) and, per stream, the order in which they were published.
fn assert_hub_holds_exactly(hub_records: &[Value], expected: &[Published]) -> Result<()> {
    let ids: Vec<&str> = hub_records
        .iter()
        .filter_map(|r| r["id"].as_str())
        .collect();
    let unique: HashSet<&str> = ids.iter().copied().collect();
    ensure!(ids.len() == unique.len(), "hub stored an id twice");
    ensure!(
        ids.len() == expected.len(),
        "hub holds {} records, expected {}",
        ids.len(),
        expected.len()
    );
    let by_id: BTreeMap<&str, &Published> = expected.iter().map(|p| (p.id.as_str(), p)).collect();
    for r in hub_records {
        let id = r["id"].as_str().unwrap_or_default();
        let Some(p) = by_id.get(id) else {
            anyhow::bail!("hub holds unexpected id {id}")
        };
        ensure!(r["sha256"] == p.sha256.as_str(), "checksum of {id} differs");
        ensure!(r["stream"] == p.stream.as_str(), "stream of {id} differs");
        let sent: Value = serde_json::from_slice(&p.payload)?;
        ensure!(
            r["payload"] == sent,
            "payload of {id} differs: {} vs {sent}",
            r["payload"]
        );
    }
    Ok(())
}

/// Asserts per-stream delivery order: within each stream, hub order (by created_at, then
/// arrival) equals publish order.
fn assert_stream_order(
    hub_records: &[Value],
    expected_in_publish_order: &[Published],
) -> Result<()> {
    let mut hub_by_stream: BTreeMap<&str, Vec<(i64, &str)>> = BTreeMap::new();
    for (i, r) in hub_records.iter().enumerate() {
        let stream = r["stream"].as_str().unwrap_or_default();
        let created = r["created_at_ms"].as_i64().unwrap_or_default();
        hub_by_stream.entry(stream).or_default().push((
            created * 1_000_000 + i as i64,
            r["id"].as_str().unwrap_or_default(),
        ));
    }
    for (stream, mut items) in hub_by_stream {
        items.sort();
        let hub_order: Vec<&str> = items.iter().map(|(_, id)| *id).collect();
        let published: Vec<&str> = expected_in_publish_order
            .iter()
            .filter(|p| p.stream == stream)
            .map(|p| p.id.as_str())
            .collect();
        ensure!(
            hub_order == published,
            "stream {stream}: hub order differs from publish order"
        );
    }
    Ok(())
}
