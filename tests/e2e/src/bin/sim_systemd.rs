//! `outpost-sim-systemd`: a private D-Bus with stand-ins for systemd1 and login1, for the demo
//! and the end-to-end tests on machines where systemd is not PID 1.
//!
//! Starts a real `dbus-daemon`, serves the stand-ins from `outpost-dbus`'s `testing` feature
//! (the agent's production D-Bus clients talk to them), prints `bus: <address>` and then
//! appends one line to `--reboots FILE` for every `org.freedesktop.login1.Manager.Reboot` call,
//! so a script can play the bootloader and restart the agent. Units given with `--unit
//! NAME=STATE` answer that `ActiveState`; all others are `not-found`. Stops on SIGTERM/SIGINT.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use outpost_dbus::testing::{serve, FakeState, TestBus};

#[derive(Parser)]
#[command(
    version,
    about = "A private D-Bus with stand-in systemd1 and login1 services"
)]
struct Args {
    /// File that gets one line ("reboot <n>") per reboot request.
    #[arg(long, value_name = "FILE")]
    reboots: PathBuf,
    /// A unit and its ActiveState, e.g. `app.service=active` (repeatable).
    #[arg(long, value_name = "NAME=STATE")]
    unit: Vec<String>,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let bus = TestBus::start()?;
    let state = FakeState::default();
    for u in &args.unit {
        let (name, active) = u
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("--unit {u:?}: expected NAME=STATE"))?;
        state.set_unit(
            name,
            active,
            if active == "active" {
                "running"
            } else {
                "dead"
            },
        );
    }
    let _conn = serve(bus.address(), state.clone()).await?;
    println!("bus: {}", bus.address());
    std::io::stdout().flush()?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut seen = 0;
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
        }
        let now = state.reboots();
        while seen < now {
            seen += 1;
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&args.reboots)?;
            writeln!(f, "reboot {seen}")?;
            f.sync_all()?;
        }
    }
    Ok(())
}
