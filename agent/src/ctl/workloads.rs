//! `outpostctl workloads [status|check]` and `outpostctl k3s` over `/v1/workloads` and `/v1/k3s`.

use std::path::Path;

use bytes::Bytes;
use hyper::Method;

use super::cli::{WorkloadsArgs, WorkloadsCommand};
use super::client;
use super::{get, refused, request_failed, text_line, Outcome};
use crate::workloads::{CycleView, WorkloadsView};

pub async fn workloads(socket: &Path, args: &WorkloadsArgs) -> Outcome {
    match &args.command {
        None => status(socket, args.json).await,
        Some(WorkloadsCommand::Status(out)) => status(socket, out.json || args.json).await,
        Some(WorkloadsCommand::Check(out)) => check(socket, out.json || args.json).await,
    }
}

async fn status(socket: &Path, json: bool) -> Outcome {
    get(socket, "/v1/workloads", json, |b| {
        serde_json::from_slice::<WorkloadsView>(b).map(|v| render(&v))
    })
    .await
}

async fn check(socket: &Path, json: bool) -> Outcome {
    let resp = match client::request(
        socket,
        Method::POST,
        "/v1/workloads/check",
        &[],
        Bytes::new(),
    )
    .await
    {
        Ok(r) => r,
        Err(e) => return request_failed(e),
    };
    let Ok(view) = serde_json::from_slice::<CycleView>(&resp.body) else {
        return refused(&resp);
    };
    let text = if json {
        text_line(&resp.body)
    } else {
        format!("{}\n", view.message)
    };
    Outcome::report(view.result == "failed", text)
}

pub async fn k3s(socket: &Path, json: bool) -> Outcome {
    get(socket, "/v1/k3s", json, |b| {
        serde_json::from_slice::<serde_json::Value>(b).map(|v| render_k3s(&v))
    })
    .await
}

fn render(v: &WorkloadsView) -> String {
    let dash = |o: &Option<String>| o.clone().unwrap_or_else(|| "-".into());
    let mut out = format!(
        "channel:    {}\nslot:       {}\ndesired:    {}\napplied:    {}\nlast check: {}\nlast apply: {}\n",
        v.channel.as_deref().unwrap_or("- (sets from OS bundles only)"),
        v.slot,
        dash(&v.desired),
        dash(&v.applied),
        dash(&v.last_check),
        dash(&v.last_apply),
    );
    if let Some(o) = &v.offer {
        out.push_str(&format!(
            "offer:      revision {} ({} bytes)\n",
            o.revision, o.artifact_size
        ));
    }
    if let Some(set) = &v.set {
        out.push_str(&format!(
            "files:      {} manifest(s), {} image(s)\n",
            set.manifests.len(),
            set.images.len()
        ));
    }
    if !v.objects.is_empty() {
        out.push_str("objects:\n");
        for o in &v.objects {
            let state = match o.ready {
                Some(true) => "ready",
                Some(false) => "not ready",
                None => "unknown",
            };
            out.push_str(&format!(
                "  {:<12} {}/{}: {state}{}\n",
                o.kind,
                o.namespace,
                o.name,
                o.message
                    .as_deref()
                    .filter(|_| o.ready == Some(false))
                    .map(|m| format!(" ({m})"))
                    .unwrap_or_default()
            ));
        }
    }
    if !v.tombstones.is_empty() {
        let names: Vec<&str> = v.tombstones.iter().map(|t| t.addon.as_str()).collect();
        out.push_str(&format!("pruning:    {}\n", names.join(", ")));
    }
    if let Some(e) = &v.last_error {
        out.push_str(&format!("last error: {e}\n"));
    }
    out
}

fn render_k3s(v: &serde_json::Value) -> String {
    let field = |k: &str| match v.get(k) {
        None | Some(serde_json::Value::Null) => "-".to_owned(),
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    format!(
        "unit:          {}\napi ready:     {}\nnode ready:    {}\nrestarts:      {} (last {})\ncert expiry:   {} ({})\nrotations:     {} (last {})\nlast error:    {}\n",
        field("unit"),
        field("ready"),
        field("node_ready"),
        field("restarts"),
        field("last_restart"),
        field("cert_earliest_expiry"),
        field("cert_earliest"),
        field("rotations"),
        field("last_rotation"),
        field("last_error"),
    )
}
