//! Test 1: the hub is down while the device publishes; once it is up, everything arrives.

use std::time::Duration;

use anyhow::Result;
use outpost_e2e::metrics::Metrics;
use outpost_e2e::publish::{publish, Published};
use outpost_e2e::{wait_for, Agent, Fleet, Hub};

use super::{assert_hub_holds_exactly, assert_stream_order};

#[test]
fn records_published_during_a_partition_arrive_exactly_once_in_order() -> Result<()> {
    let fleet = Fleet::init(1)?;
    let dev = fleet.device(1);
    dev.append_config("[uploader]\nbackoff_base_ms = 100\nbackoff_cap_ms = 1000")?;
    let mut agent = Agent::start(&dev.config)?;

    let streams = ["temperature", "door.events", "power_1"];
    let mut published: Vec<Published> = Vec::new();
    // A few through the CLI a user would use, the rest straight at the API, in one order.
    for i in 0..5 {
        let stream = streams[i % 3];
        let payload = format!(r#"{{"seq":{i},"via":"outpostctl","t":22.4}}"#);
        let out = dev.ctl(&["publish", stream, &payload], None)?;
        assert!(
            out.status.success(),
            "outpostctl publish: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let id = String::from_utf8(out.stdout)?.trim().to_owned();
        assert!(!id.is_empty());
        published.push(Published {
            id,
            stream: stream.into(),
            sha256: outpost_proto::sha256_hex(payload.as_bytes()),
            payload: payload.into_bytes(),
        });
    }
    let mut api = dev.api();
    for i in 5..50 {
        let payload = format!(r#"{{"seq":{i},"via":"api","values":[1,2.5,-3e-7]}}"#);
        // Some bodies come with whitespace around the value (`echo JSON | outpostctl publish S -`).
        let body = if i % 5 == 0 {
            format!(" \n{payload}\r\n")
        } else {
            payload.clone()
        };
        let (status, p, body) = publish(&mut api, streams[i % 3], body.as_bytes(), "")?;
        assert_eq!(status, 202, "{body}");
        let mut p = p.expect("202 carries the record");
        p.payload = payload.clone().into_bytes();
        p.sha256 = outpost_proto::sha256_hex(payload.as_bytes());
        published.push(p);
    }
    assert_eq!(
        Metrics::fetch(&mut api)?.pending(),
        50,
        "all 50 wait in the outbox while the hub is down"
    );
    assert!(fleet.hub_records(None, None).is_err() || fleet.hub_records(None, None)?.is_empty());

    let _hub = Hub::start(&fleet.hub_config())?;
    let records = wait_for(Duration::from_secs(30), "50 records at the hub", || {
        let r = fleet.hub_records(Some(&dev.name), None)?;
        Ok((r.len() >= 50).then_some(r))
    })?;
    assert_hub_holds_exactly(&records, &published)?;
    assert_stream_order(&records, &published)?;
    wait_for(Duration::from_secs(10), "outbox drained", || {
        Ok((Metrics::fetch(&mut api)?.pending() == 0).then_some(()))
    })?;
    let m = Metrics::fetch(&mut api)?;
    assert_eq!(m.sum("outpost_outbox_delivered_total", &[]) as u64, 50);
    assert_eq!(m.sum("outpost_outbox_rejected_total", &[]) as u64, 0);
    assert!(agent.terminate()?, "agent exits 0 on SIGTERM");
    Ok(())
}
