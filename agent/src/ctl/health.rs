//! `outpostctl health [--json] [--wait [--timeout D]]`: the gate's status from `GET /v1/health`.

use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::Method;
use outpost_health::status::{HealthStatus, Phase};

use super::cli::HealthArgs;
use super::client::{self, CtlError};
use super::{refused, request_failed, text_line, Outcome, EXIT_OK, EXIT_REFUSED};

/// How often `--wait` asks: a gate decides in seconds to minutes.
const POLL: Duration = Duration::from_secs(1);

/// Whether the gate has decided this boot, and the exit status that decision means.
pub fn decided(phase: Phase) -> Option<u8> {
    match phase {
        Phase::Starting | Phase::Checking => None,
        Phase::NotATrial | Phase::Committed => Some(EXIT_OK),
        Phase::Failed | Phase::BootedBadSlot | Phase::Error => Some(EXIT_REFUSED),
    }
}

pub async fn health(socket: &Path, args: &HealthArgs) -> Outcome {
    let started = Instant::now();
    let mut last_wait_error: Option<CtlError> = None;
    loop {
        match client::request(socket, Method::GET, "/v1/health", &[], Bytes::new()).await {
            Ok(resp) if resp.status == 200 => {
                let status: HealthStatus = match serde_json::from_slice(&resp.body) {
                    Ok(s) => s,
                    Err(e) => {
                        return Outcome::fail(
                            EXIT_REFUSED,
                            format!("unexpected answer from the agent ({e})"),
                        )
                    }
                };
                let code = decided(status.phase);
                if !args.wait || code.is_some() {
                    let mut out = if args.json {
                        Outcome::ok(text_line(&resp.body))
                    } else {
                        Outcome::ok(status.render())
                    };
                    if args.wait {
                        out.code = code.unwrap_or(EXIT_OK);
                    }
                    return out;
                }
            }
            Ok(resp) => return refused(&resp),
            // While waiting, an agent restart (crash, watchdog) is part of the story: retry.
            Err(e) if args.wait && !matches!(e, CtlError::Request(_)) => last_wait_error = Some(e),
            Err(e) => return request_failed(e),
        }
        if let Some(limit) = args.timeout {
            if started.elapsed() >= limit {
                let why = match last_wait_error {
                    Some(e) => format!(" (last error: {e})"),
                    None => String::new(),
                };
                return Outcome::fail(
                    EXIT_REFUSED,
                    format!(
                        "the health gate has not decided after {}{why}",
                        humantime::format_duration(limit)
                    ),
                );
            }
        }
        tokio::time::sleep(POLL).await;
    }
}
