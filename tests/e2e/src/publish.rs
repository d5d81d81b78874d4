//! Publishing many records through the real local API, and remembering what was acknowledged.

use std::path::Path;

use anyhow::{bail, Result};
use serde_json::Value;

use crate::unix_http::UnixHttp;

#[derive(Clone, Debug)]
pub struct Published {
    pub id: String,
    pub stream: String,
    pub payload: Vec<u8>,
    pub sha256: String,
}

/// Publishes one record; returns the API's status and, on 202, what was stored.
pub fn publish(
    api: &mut UnixHttp,
    stream: &str,
    payload: &[u8],
    query: &str,
) -> Result<(u16, Option<Published>, Value)> {
    let r = api.post(
        &format!("/v1/outbox/{stream}{query}"),
        &[("Content-Type", "application/json")],
        payload,
    )?;
    let body = r.json()?;
    if r.status != 202 {
        return Ok((r.status, None, body));
    }
    let Some(id) = body.get("id").and_then(Value::as_str) else {
        bail!("202 without an id: {body}");
    };
    let p = Published {
        id: id.to_owned(),
        stream: stream.to_owned(),
        payload: payload.to_vec(),
        sha256: outpost_proto::sha256_hex(payload),
    };
    Ok((r.status, Some(p), body))
}

/// Publishes `count` records over `threads` concurrent keep-alive connections (so the agent's
/// group commit is exercised); every one must be acknowledged with 202.
pub fn publish_many(
    socket: &Path,
    streams: &[&str],
    count: usize,
    threads: usize,
) -> Result<Vec<Published>> {
    let per = count.div_ceil(threads);
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let socket = socket.to_owned();
            let streams: Vec<String> = streams.iter().map(|s| s.to_string()).collect();
            std::thread::spawn(move || -> Result<Vec<Published>> {
                let mut api = UnixHttp::new(&socket);
                let mut out = Vec::new();
                for i in (t * per)..((t + 1) * per).min(count) {
                    let stream = &streams[i % streams.len()];
                    let payload = format!(
                        r#"{{"n":{i},"thread":{t},"value":{},"note":"e2e"}}"#,
                        i as f64 * 0.1
                    );
                    let (status, p, body) = publish(&mut api, stream, payload.as_bytes(), "")?;
                    match p {
                        Some(p) => out.push(p),
                        None => bail!("publish {i} answered {status}: {body}"),
                    }
                }
                Ok(out)
            })
        })
        .collect();
    let mut all = Vec::with_capacity(count);
    for h in handles {
        match h.join() {
            Ok(r) => all.extend(r?),
            Err(_) => bail!("publisher thread panicked"),
        }
    }
    Ok(all)
}
