//! Capability fakes for the driver (the D-Bus ones are tested in outpost-dbus).

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use outpost_health::checks::Builtin;
use outpost_health::driver::RecordSink;
use outpost_health::runner::systemd::{ClientError, Logind, SystemdClient, UnitState};
use outpost_health::runner::{BoxFuture, BuiltinProbe, CheckOutcome, Clock};
use outpost_health::HealthRecord;

#[derive(Default)]
pub struct Units(pub Mutex<HashMap<String, (&'static str, &'static str)>>);

impl Units {
    pub fn set(&self, unit: &str, active: &'static str, sub: &'static str) {
        self.0.lock().unwrap().insert(unit.into(), (active, sub));
    }
}

impl SystemdClient for Units {
    fn unit_state<'a>(&'a self, unit: &'a str) -> BoxFuture<'a, Result<UnitState, ClientError>> {
        let st = self.0.lock().unwrap().get(unit).copied();
        Box::pin(async move {
            let (a, s) = st.ok_or_else(|| ClientError("no such unit".into()))?;
            Ok(UnitState {
                load_state: "loaded".into(),
                active_state: a.into(),
                sub_state: s.into(),
            })
        })
    }

    fn start_unit<'a>(&'a self, unit: &'a str) -> BoxFuture<'a, Result<(), ClientError>> {
        self.set(unit, "active", "running");
        Box::pin(async { Ok(()) })
    }

    fn stop_unit<'a>(&'a self, unit: &'a str) -> BoxFuture<'a, Result<(), ClientError>> {
        self.set(unit, "inactive", "dead");
        Box::pin(async { Ok(()) })
    }

    fn restart_unit<'a>(&'a self, unit: &'a str) -> BoxFuture<'a, Result<(), ClientError>> {
        self.set(unit, "active", "running");
        Box::pin(async { Ok(()) })
    }
}

#[derive(Default)]
pub struct Reboots(pub AtomicU32);

impl Logind for Reboots {
    fn reboot(&self) -> BoxFuture<'_, Result<(), ClientError>> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Box::pin(async { Ok(()) })
    }
}

/// Writes a marker file instead of rebooting (for the kill -9 child).
pub struct RebootFile(pub PathBuf);

impl Logind for RebootFile {
    fn reboot(&self) -> BoxFuture<'_, Result<(), ClientError>> {
        let r = std::fs::write(&self.0, b"1").map_err(|e| ClientError(e.to_string()));
        Box::pin(async move { r })
    }
}

#[derive(Default)]
pub struct Records(pub Mutex<Vec<HealthRecord>>);

impl RecordSink for Records {
    fn append<'a>(&'a self, r: &'a HealthRecord) -> BoxFuture<'a, Result<(), ClientError>> {
        self.0.lock().unwrap().push(r.clone());
        Box::pin(async { Ok(()) })
    }
}

/// JSON lines, fsynced per record: what survives a kill -9 is what the outbox would hold.
pub struct RecordFile(pub PathBuf);

impl RecordSink for RecordFile {
    fn append<'a>(&'a self, r: &'a HealthRecord) -> BoxFuture<'a, Result<(), ClientError>> {
        let res = (|| {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.0)?;
            let mut line = serde_json::to_vec(r)?;
            line.push(b'\n');
            f.write_all(&line)?;
            f.sync_all()
        })()
        .map_err(|e: std::io::Error| ClientError(e.to_string()));
        Box::pin(async move { res })
    }
}

pub fn read_records(path: &std::path::Path) -> Vec<HealthRecord> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The daemon's own checks: up, writable, and whether the hub ever acknowledged an upload.
pub struct Builtins {
    pub uploaded: bool,
}

impl BuiltinProbe for Builtins {
    fn probe(&self, which: Builtin) -> BoxFuture<'_, CheckOutcome> {
        let out = match which {
            Builtin::UploadedOnce if !self.uploaded => {
                CheckOutcome::fail("no upload acknowledged yet")
            }
            other => CheckOutcome::pass(other.as_str()),
        };
        Box::pin(async move { out })
    }
}

/// Uptime that starts at 1 s when the simulated machine boots.
pub struct BootClock(pub Instant);

impl Clock for BootClock {
    fn since_boot(&self) -> Duration {
        Duration::from_secs(1) + self.0.elapsed()
    }
    fn wall(&self) -> SystemTime {
        SystemTime::now()
    }
}

pub fn arc<T>(t: T) -> Arc<T> {
    Arc::new(t)
}
