//! Test 5: a full store evicts best-effort records oldest first (counted), and refuses critical
//! writes with 507 rather than dropping anything.

use std::time::Duration;

use anyhow::Result;
use outpost_e2e::metrics::Metrics;
use outpost_e2e::publish::{publish, Published};
use outpost_e2e::{wait_for, Agent, Fleet, Hub};

fn kib_payload(i: usize) -> Vec<u8> {
    format!(r#"{{"i":{i},"pad":"{}"}}"#, "p".repeat(1000)).into_bytes()
}

#[test]
fn full_store_evicts_best_effort_oldest_first_and_refuses_critical() -> Result<()> {
    let fleet = Fleet::init(1)?;
    let dev = fleet.device(1);
    dev.append_config(
        "[outbox]\nmax_bytes = 65536\n[outbox.streams.alarms]\npriority = \"critical\"\n[outbox.streams.bulk]\npriority = \"best_effort\"\n[uploader]\nbackoff_base_ms = 50\nbackoff_cap_ms = 200",
    )?;
    let _agent = Agent::start(&dev.config)?;
    let mut api = dev.api();

    // 1. Best-effort writes never fail: the oldest are evicted to make room.
    let mut bulk: Vec<Published> = Vec::new();
    for i in 0..200 {
        let (status, p, body) = publish(&mut api, "bulk", &kib_payload(i), "")?;
        assert_eq!(status, 202, "{body}");
        bulk.push(p.expect("202"));
    }
    let m = Metrics::fetch(&mut api)?;
    let kept = m.sum("outpost_outbox_pending_records", &[("stream", "bulk")]) as usize;
    let evicted = m.sum("outpost_outbox_evicted_total", &[("stream", "bulk")]) as usize;
    assert!(
        kept > 10 && kept < 64,
        "a 64 KiB store keeps some dozens of 1 KiB records, kept {kept}"
    );
    assert_eq!(kept + evicted, 200, "every eviction is counted");

    // The survivors are the newest ones: deliver them and compare.
    let mut hub = Hub::start(&fleet.hub_config())?;
    let delivered = wait_for(Duration::from_secs(30), "survivors at the hub", || {
        let r = fleet.hub_records(Some(&dev.name), Some("bulk"))?;
        Ok((r.len() >= kept).then_some(r))
    })?;
    let newest: Vec<&str> = bulk[200 - kept..].iter().map(|p| p.id.as_str()).collect();
    let mut got: Vec<&str> = delivered.iter().filter_map(|r| r["id"].as_str()).collect();
    got.sort();
    let mut want = newest.clone();
    want.sort();
    assert_eq!(
        got, want,
        "eviction took the oldest best-effort records first"
    );
    wait_for(Duration::from_secs(10), "drained", || {
        Ok((Metrics::fetch(&mut api)?.pending() == 0).then_some(()))
    })?;
    assert!(hub.terminate()?);

    // 2. With the hub gone again: fill with best-effort, then critical until the store is full.
    for i in 0..40 {
        assert_eq!(
            publish(&mut api, "bulk", &kib_payload(1000 + i), "")?.0,
            202
        );
    }
    let mut alarms: Vec<Published> = Vec::new();
    let mut refusal = None;
    for i in 0..200 {
        let (status, p, body) = publish(&mut api, "alarms", &kib_payload(i), "")?;
        match status {
            202 => alarms.push(p.expect("202")),
            507 => {
                refusal = Some(body);
                break;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    let refusal = refusal.expect("a full store refuses critical writes with 507");
    assert!(
        refusal["error"]
            .as_str()
            .is_some_and(|e| e.contains("full")),
        "clear reason: {refusal}"
    );
    let m = Metrics::fetch(&mut api)?;
    assert_eq!(
        m.sum("outpost_outbox_pending_records", &[("stream", "bulk")]),
        0.0,
        "best-effort made room for critical"
    );
    assert_eq!(
        m.sum("outpost_outbox_pending_records", &[("stream", "alarms")]) as usize,
        alarms.len()
    );
    assert!(
        m.sum("outpost_outbox_refused_total", &[("stream", "alarms")]) >= 1.0,
        "refusals are counted"
    );
    // A normal write cannot evict critical records either.
    assert_eq!(publish(&mut api, "metrics", &kib_payload(0), "")?.0, 507);

    // 3. Every acknowledged critical record reaches the hub.
    let _hub = Hub::start(&fleet.hub_config())?;
    let got = wait_for(Duration::from_secs(30), "all alarms at the hub", || {
        let r = fleet.hub_records(Some(&dev.name), Some("alarms"))?;
        Ok((r.len() >= alarms.len()).then_some(r))
    })?;
    assert_eq!(got.len(), alarms.len());
    Ok(())
}
