//! Test 6: the design notes' reference agent, run for real in node, posts to the hub exactly as
//! it is written (JSON.stringify checksum, X-Device-Key, unsorted keys, a float like 22.4).

use std::process::Command;

use anyhow::Result;
use outpost_e2e::{Fleet, Hub};

/// The reference agent's ingest + attemptSync, verbatim in substance; argv: endpoint, key, mode.
const REFERENCE_AGENT: &str = r#"
const { createHash, randomUUID } = require('crypto');
const [endpoint, deviceKey, mode] = process.argv.slice(1);
async function main() {
  const data = { temp: 22.4, humidity: 45, pressure: 1013.25, tiny: 1e-7 };
  const payload = {
    id: process.env.RECORD_ID || randomUUID(),
    timestamp: Date.now(),
    sensorData: data,
    checksum: createHash('sha256').update(JSON.stringify(data)).digest('hex'),
  };
  if (mode === 'tamper') payload.sensorData.temp = 22.5;
  const response = await fetch(`${endpoint}/ingest`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'X-Device-Key': deviceKey, 'X-Payload-Checksum': payload.checksum },
    body: JSON.stringify(payload),
  });
  console.log(JSON.stringify({ status: response.status, id: payload.id, checksum: payload.checksum, body: await response.text() }));
}
main().catch((e) => { console.error(e); process.exit(1); });
"#;

fn run_reference_agent(
    fleet: &Fleet,
    endpoint: &str,
    key: &str,
    mode: &str,
    id: &str,
) -> Result<serde_json::Value> {
    let out = Command::new("node")
        .args(["-e", REFERENCE_AGENT, endpoint, key, mode])
        .env("NODE_EXTRA_CA_CERTS", fleet.dir.join("ca.pem"))
        .env("RECORD_ID", id)
        .output()?;
    assert!(
        out.status.success(),
        "node: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(serde_json::from_slice(&out.stdout)?)
}

#[test]
fn reference_agent_format_is_accepted_idempotently_and_verified() -> Result<()> {
    let fleet = Fleet::init(1)?;
    fleet.append_hub_config("[legacy_device_keys]\n\"k-7f3a9c2e\" = \"legacy-007\"")?;
    let hub = Hub::start(&fleet.hub_config())?;
    let endpoint = format!("{}/v1", hub.url);

    let id = "6f1c7a52-3c1b-4b53-9a43-d7f1b1a0c001";
    let ok = run_reference_agent(&fleet, &endpoint, "k-7f3a9c2e", "ok", id)?;
    assert_eq!(ok["status"], 200, "{ok}");
    let again = run_reference_agent(&fleet, &endpoint, "k-7f3a9c2e", "ok", id)?;
    assert_eq!(again["status"], 200, "a duplicate is acknowledged: {again}");

    let records = fleet.hub_records(Some("legacy-007"), None)?;
    assert_eq!(records.len(), 1, "stored once: {records:?}");
    assert_eq!(records[0]["id"], id);
    assert_eq!(records[0]["sha256"], ok["checksum"]);
    assert_eq!(records[0]["payload"]["temp"], 22.4);

    let bad = run_reference_agent(&fleet, &endpoint, "k-7f3a9c2e", "tamper", "tampered-1")?;
    assert_eq!(bad["status"], 400, "{bad}");
    assert!(
        bad["body"]
            .as_str()
            .unwrap_or_default()
            .contains("checksum"),
        "{bad}"
    );
    let unknown = run_reference_agent(&fleet, &endpoint, "not-a-key", "ok", "unknown-1")?;
    assert_eq!(unknown["status"], 401, "{unknown}");
    assert_eq!(
        fleet.hub_records(None, None)?.len(),
        1,
        "refused bodies are not stored"
    );
    Ok(())
}
