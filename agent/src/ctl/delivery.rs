//! `outpostctl update check|now|status [--json]` over `[delivery]`'s endpoints.

use std::path::Path;

use bytes::Bytes;
use hyper::Method;

use super::cli::UpdateCommand;
use super::client;
use super::{get, refused, request_failed, text_line, Outcome};
use crate::delivery::{CycleView, DeliveryView};

pub async fn update(socket: &Path, command: &UpdateCommand) -> Outcome {
    match command {
        UpdateCommand::Status(out) => {
            get(socket, "/v1/delivery", out.json, |b| {
                serde_json::from_slice::<DeliveryView>(b).map(|v| render_status(&v))
            })
            .await
        }
        UpdateCommand::Check(out) => cycle(socket, "/v1/delivery/check", out.json).await,
        UpdateCommand::Now(out) => cycle(socket, "/v1/delivery/now", out.json).await,
    }
}

async fn cycle(socket: &Path, path: &str, json: bool) -> Outcome {
    let resp = match client::request(socket, Method::POST, path, &[], Bytes::new()).await {
        Ok(r) => r,
        Err(e) => return request_failed(e),
    };
    let Ok(view) = serde_json::from_slice::<CycleView>(&resp.body) else {
        return refused(&resp);
    };
    let failed = view.result == "failed";
    let text = if json {
        text_line(&resp.body)
    } else {
        let mut t = format!("{}\n", view.message);
        if let Some(o) = &view.offer {
            t.push_str(&format!(
                "offer:    release {} version {} on {} ({} bytes{})\n",
                o.release,
                o.version,
                o.channel,
                o.bundle_size,
                if o.store_path.is_some() {
                    ", chunk store"
                } else {
                    ""
                }
            ));
        }
        if view.fetched > 0 {
            t.push_str(&format!("fetched:  {} bytes\n", view.fetched));
        }
        t
    };
    Outcome::report(failed, text)
}

fn render_status(v: &DeliveryView) -> String {
    let dash = |o: &Option<String>| o.clone().unwrap_or_else(|| "-".into());
    let phase = serde_json::to_value(&v.phase)
        .ok()
        .and_then(|p| p.as_str().map(str::to_owned))
        .unwrap_or_default();
    let mut out = format!(
        "channel:      {}\nphase:        {phase}\nrunning:      {}\nlast check:   {}\n",
        v.channel,
        dash(&v.current_version),
        dash(&v.last_check)
    );
    match &v.offer {
        Some(o) => out.push_str(&format!(
            "offer:        release {} version {} ({} of {} bytes here)\n",
            o.release, o.version, v.downloaded, o.bundle_size
        )),
        None => out.push_str("offer:        -\n"),
    }
    out.push_str(&format!("fetched:      {} bytes since start\n", v.fetched));
    out.push_str(&format!("last result:  {}\n", dash(&v.last_result)));
    out
}
