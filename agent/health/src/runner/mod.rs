//! The check runners (I/O, async on tokio). Each returns a [`CheckOutcome`]; [`CheckRunner::run`]
//! wraps every run in the check's timeout and maps an overrun to [`Verdict::Timeout`]. Async
//! because the gate runs its checks concurrently inside the daemon's runtime and a stuck check
//! (a hung HTTP peer, a command that never exits) must be abandoned, not waited for.

pub mod command;
pub mod http;
pub mod systemd;
pub mod uptime;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::checks::{Builtin, CheckConfig, CheckKind};
use crate::record::Verdict;

/// A boxed future, so the capability traits stay object-safe (`Arc<dyn Trait>`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The result of one run of a check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckOutcome {
    pub verdict: Verdict,
    pub detail: Option<String>,
}

impl CheckOutcome {
    pub fn pass(detail: impl Into<String>) -> Self {
        Self {
            verdict: Verdict::Pass,
            detail: Some(detail.into()),
        }
    }
    pub fn fail(detail: impl Into<String>) -> Self {
        Self {
            verdict: Verdict::Fail,
            detail: Some(detail.into()),
        }
    }
    pub fn fatal(detail: impl Into<String>) -> Self {
        Self {
            verdict: Verdict::Fatal,
            detail: Some(detail.into()),
        }
    }
}

/// Checks the daemon answers itself (local API, outbox, hub uploads).
pub trait BuiltinProbe: Send + Sync {
    fn probe(&self, which: Builtin) -> BoxFuture<'_, CheckOutcome>;
}

/// Uptime for deadlines and the uptime check, wall time for records.
pub trait Clock: Send + Sync {
    /// Time since boot, monotonic within a boot (survives agent restarts).
    fn since_boot(&self) -> Duration;
    fn wall(&self) -> std::time::SystemTime;
}

/// Runs checks by kind against the injected capabilities.
#[derive(Clone)]
pub struct CheckRunner {
    pub systemd: Arc<dyn systemd::SystemdClient>,
    pub builtins: Arc<dyn BuiltinProbe>,
    pub clock: Arc<dyn Clock>,
}

impl CheckRunner {
    /// One run of `check`, bounded by its timeout.
    pub async fn run(&self, check: &CheckConfig) -> CheckOutcome {
        match tokio::time::timeout(check.timeout, self.run_unbounded(check)).await {
            Ok(outcome) => outcome,
            Err(_) => CheckOutcome {
                verdict: Verdict::Timeout,
                detail: Some(format!(
                    "no answer within {}",
                    humantime::format_duration(check.timeout)
                )),
            },
        }
    }

    async fn run_unbounded(&self, check: &CheckConfig) -> CheckOutcome {
        match &check.kind {
            CheckKind::SystemdUnit {
                unit,
                fatal_on_failed,
            } => systemd::check_unit(self.systemd.as_ref(), unit, *fatal_on_failed).await,
            CheckKind::Command {
                argv,
                fatal_exit_codes,
            } => command::run(argv, fatal_exit_codes).await,
            CheckKind::Http { url, ca_file } => http::get(url, ca_file.as_deref()).await,
            CheckKind::Uptime { min } => uptime::check(self.clock.since_boot(), *min),
            CheckKind::Builtin(b) => self.builtins.probe(*b).await,
        }
    }
}
