//! RAUC's own CLI drives the real agent over D-Bus: `outpost-agent` with `[update]` (file-backed
//! A/B slots, a real grubenv) and `[dbus]` on a private `dbus-daemon`, then `rauc` 1.8 as a
//! RAUC user would type it (pointed at that bus with `DBUS_STARTER_BUS_TYPE=session`):
//! `rauc status`, `rauc install`, `rauc status mark-good`, and failing installs (a bundle from
//! an untrusted signer, a corrupted one, another compatible), plus `gdbus` for the value types
//! and `io.outpost.Agent1`. Bundles are made by the real `rauc bundle`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use outpost_dbus::testing::TestBus;
use outpost_e2e::process::wait_for;
use outpost_e2e::Agent;
use outpost_testkit::{
    ensure_tools, grub_list, grubenv, noise, rauc_bundle, write_slot, KeyType, Manifest, Pki,
};
use serde_json::Value;

const COMPATIBLE: &str = "Outpost E2E Board";
const IMAGE_LEN: usize = 1024 * 1024;
const SLOT_LEN: usize = 2 * 1024 * 1024;

/// Runs a tool against `bus` the way RAUC's CLI is pointed at a session bus.
fn on_bus(bus: &TestBus, program: &str, args: &[&str]) -> Result<Output> {
    Command::new(program)
        .args(args)
        .env("DBUS_STARTER_BUS_TYPE", "session")
        .env("DBUS_SESSION_BUS_ADDRESS", bus.address())
        .output()
        .with_context(|| format!("running {program} (apt-get install rauc libglib2.0-bin)"))
}

/// `gdbus call` of `interface.method` on `dest` at `path`, with gdbus-syntax arguments.
fn gdbus_call(
    bus: &TestBus,
    dest: &str,
    path: &str,
    method: &str,
    args: &[&str],
) -> Result<Output> {
    let mut a = vec![
        "call",
        "--session",
        "--dest",
        dest,
        "--object-path",
        path,
        "--method",
        method,
    ];
    a.extend_from_slice(args);
    on_bus(bus, "gdbus", &a)
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn status(bus: &TestBus) -> Result<Value> {
    let out = on_bus(
        bus,
        "rauc",
        &["status", "--detailed", "--output-format=json"],
    )?;
    ensure!(out.status.success(), "rauc status: {}", text(&out));
    Ok(serde_json::from_slice(&out.stdout)?)
}

fn slot(status: &Value, name: &str) -> Value {
    status["slots"]
        .as_array()
        .and_then(|slots| slots.iter().find_map(|s| s.get(name)))
        .cloned()
        .unwrap_or(Value::Null)
}

struct Bundles {
    good: PathBuf,
    untrusted: PathBuf,
    corrupt: PathBuf,
    foreign: PathBuf,
    image: Vec<u8>,
}

fn bundles(dir: &Path) -> Bundles {
    let pki = Pki::new(&dir.join("pki"));
    pki.ca("ca", "E2E CA", KeyType::Ec);
    pki.signer("ca", "signer", "E2E Signer", KeyType::Ec, "");
    pki.ca("rogue-ca", "Rogue CA", KeyType::Ec);
    pki.signer("rogue-ca", "rogue", "Rogue Signer", KeyType::Ec, "");
    let content = dir.join("content");
    std::fs::create_dir_all(&content).unwrap();
    let image = noise(11, IMAGE_LEN);
    std::fs::write(content.join("rootfs.img"), &image).unwrap();
    let manifest = |compatible| Manifest {
        compatible,
        version: "2026.11.0",
        description: "e2e bundle",
        build: "e2e",
        format: "plain",
        images: &[("rootfs", "rootfs.img")],
    };
    let good = dir.join("good.raucb");
    rauc_bundle(&content, &manifest(COMPATIBLE), &pki, "signer", &good);
    let untrusted = dir.join("untrusted.raucb");
    rauc_bundle(&content, &manifest(COMPATIBLE), &pki, "rogue", &untrusted);
    let foreign = dir.join("foreign.raucb");
    rauc_bundle(
        &content,
        &manifest("Another Board"),
        &pki,
        "signer",
        &foreign,
    );
    // One flipped byte inside the image (squashfs stores noise verbatim): the payload digest
    // no longer matches the signature.
    let mut bytes = std::fs::read(&good).unwrap();
    let at = bytes
        .windows(64)
        .position(|w| w == &image[4096..4160])
        .expect("image bytes in the payload");
    bytes[at] ^= 0xff;
    let corrupt = dir.join("corrupt.raucb");
    std::fs::write(&corrupt, bytes).unwrap();
    Bundles {
        good,
        untrusted,
        corrupt,
        foreign,
        image,
    }
}

fn agent_config(dir: &Path, bus: &TestBus) -> PathBuf {
    let dev = dir.join("dev");
    for (i, name) in ["rootfs-0", "rootfs-1"].iter().enumerate() {
        write_slot(&dev.join("slots").join(name), 100 + i as u64, SLOT_LEN);
    }
    grubenv(&dev.join("grubenv"));
    let d = dev.display();
    let ca = dir.join("pki").join("ca.pem");
    let text = format!(
        "state_dir = \"state\"\n[api]\nsocket = \"agent.sock\"\n\
         [dbus]\nbus = \"{}\"\n\
         [update]\ncompatible = \"{COMPATIBLE}\"\nbootloader = \"grub\"\ngrubenv = \"{d}/grubenv\"\n\
         keyring = \"{}\"\ndata_directory = \"{d}/data\"\nbooted_slot = \"A\"\n\
         [[update.slots]]\nclass = \"rootfs\"\nindex = 0\ndevice = \"{d}/slots/rootfs-0\"\nbootname = \"A\"\n\
         [[update.slots]]\nclass = \"rootfs\"\nindex = 1\ndevice = \"{d}/slots/rootfs-1\"\nbootname = \"B\"\n",
        bus.address(),
        ca.display(),
    );
    let path = dir.join("agent.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn install(bus: &TestBus, bundle: &Path, extra: &[&str]) -> Result<Output> {
    let mut args = vec!["install"];
    args.extend_from_slice(extra);
    let b = bundle.to_str().context("bundle path")?;
    args.push(b);
    on_bus(bus, "rauc", &args)
}

#[test]
fn rauc_cli_installs_marks_and_lists_through_the_agent() -> Result<()> {
    ensure_tools();
    let tmp = tempfile::Builder::new()
        .prefix("outpost-e2e-rauc")
        .tempdir()?;
    let dir = tmp.path();
    let b = bundles(dir);
    let bus = TestBus::start().context("dbus-daemon (apt-get install dbus)")?;
    let config = agent_config(dir, &bus);
    let _agent = Agent::start(&config)?;
    let slot_b = dir.join("dev/slots/rootfs-1");

    // rauc status: the agent's slots, booted A, primary A (ORDER=A B).
    let st = wait_for(Duration::from_secs(10), "RAUC's name on the bus", || {
        Ok(status(&bus).ok())
    })?;
    assert_eq!(st["compatible"], COMPATIBLE, "{st}");
    assert_eq!(st["booted"], "A", "{st}");
    assert_eq!(st["boot_primary"], "rootfs.0", "{st}");
    assert_eq!(slot(&st, "rootfs.0")["state"], "booted", "{st}");
    assert_eq!(slot(&st, "rootfs.1")["state"], "inactive", "{st}");
    assert_eq!(slot(&st, "rootfs.1")["boot_status"], "good", "{st}");

    // Failing installs: our message, exit 1, the slot untouched.
    let before = std::fs::read(&slot_b)?;
    for (bundle, want) in [
        (&b.untrusted, "signature verification failed"),
        (&b.corrupt, "signature verification failed"),
        (&b.foreign, "compatible mismatch"),
    ] {
        let out = install(&bus, bundle, &[])?;
        let t = text(&out);
        assert_eq!(out.status.code(), Some(1), "{}: {t}", bundle.display());
        assert!(t.contains("LastError: "), "{t}");
        assert!(t.contains(want), "{want}: {t}");
        assert!(t.contains("failed"), "{t}");
        assert!(std::fs::read(&slot_b)? == before, "nothing written by {t}");
    }

    // A good install: progress printed, slot B holds the image, B is primary.
    let out = install(&bus, &b.good, &[])?;
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    // Each step once, each with its own value (PropertiesChanged carries the value of its
    // moment, not the latest).
    assert!(t.contains("  0% Installing\n"), "{t}");
    assert_eq!(t.matches("Checking bundle").count(), 1, "{t}");
    assert!(t.contains("Copying image to rootfs.1"), "{t}");
    assert!(t.contains("100% Installing done"), "{t}");
    assert!(t.contains("succeeded"), "{t}");
    assert!(
        std::fs::read(&slot_b)?[..IMAGE_LEN] == b.image[..],
        "slot B written"
    );
    let st = status(&bus)?;
    assert_eq!(st["boot_primary"], "rootfs.1", "{st}");
    let s = &slot(&st, "rootfs.1")["slot_status"];
    assert_eq!(s["bundle"]["version"], "2026.11.0", "{st}");
    assert_eq!(s["status"], "ok", "{st}");
    // Read by RAUC with its exact types (uint32 counts, uint64 size): wrong types print 0.
    assert_eq!(s["installed"]["count"], 1, "{st}");
    assert_eq!(s["activated"]["count"], 1, "{st}");
    assert_eq!(s["checksum"]["size"], IMAGE_LEN, "{st}");
    let out = gdbus_call(
        &bus,
        "de.pengutronix.rauc",
        "/",
        "de.pengutronix.rauc.Installer.GetSlotStatus",
        &[],
    )?;
    let t = text(&out);
    assert!(t.contains("'installed.count': <uint32 1>"), "{t}");
    assert!(t.contains(&format!("'size': <uint64 {IMAGE_LEN}>")), "{t}");

    // InspectBundle's manifest-hash is the sha256 of the bundle's manifest.raucm (read here
    // with the real unsquashfs), and require-manifest-hash holds installs to it.
    let manifest = Command::new("unsquashfs")
        .args(["-cat", b.good.to_str().context("path")?, "manifest.raucm"])
        .output()?;
    ensure!(manifest.status.success(), "unsquashfs: {}", text(&manifest));
    let hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&manifest.stdout));
    let rauc_call = |method: &str, args: &[&str]| -> Result<Output> {
        let m = format!("de.pengutronix.rauc.Installer.{method}");
        gdbus_call(&bus, "de.pengutronix.rauc", "/", &m, args)
    };
    let good = b.good.to_str().context("path")?;
    let out = rauc_call("InspectBundle", &[good, "{}"])?;
    let t = text(&out);
    assert!(
        t.contains(&format!("'manifest-hash': <'{hash}'>")),
        "{hash}: {t}"
    );
    assert!(
        t.contains(&format!("'compatible': <'{COMPATIBLE}'>")),
        "{t}"
    );
    let mut api = outpost_e2e::UnixHttp::new(&dir.join("agent.sock"));
    let mut install_with_hash = |want: &str| -> Result<Value> {
        let arg = format!("{{'require-manifest-hash': <'{want}'>}}");
        let out = rauc_call("InstallBundle", &[good, &arg])?;
        ensure!(out.status.success(), "InstallBundle: {}", text(&out));
        wait_for(Duration::from_secs(20), "install to end", || {
            let v = api.get("/v1/install")?.json()?;
            Ok((v["state"] != "running").then_some(v))
        })
    };
    let v = install_with_hash(&"0".repeat(64))?;
    assert_eq!(v["state"], "failed", "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap_or_default()
            .contains("manifest hash mismatch"),
        "{v}"
    );
    let v = install_with_hash(&hash.to_uppercase())?;
    assert_eq!(v["state"], "succeeded", "{v}");

    // --ignore-compatible reaches the planner.
    let out = install(&bus, &b.foreign, &["--ignore-compatible"])?;
    assert!(out.status.success(), "{}", text(&out));

    // rauc status mark-good booted commits the booted slot in the real grubenv.
    let out = on_bus(&bus, "rauc", &["status", "mark-bad", "booted"])?;
    assert!(out.status.success(), "{}", text(&out));
    assert!(grub_list(&dir.join("dev/grubenv")).contains("A_OK=0"));
    let out = on_bus(&bus, "rauc", &["status", "mark-good", "booted"])?;
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(
        t.contains("rauc status: marked slot rootfs.0 as good"),
        "{t}"
    );
    let env = grub_list(&dir.join("dev/grubenv"));
    assert!(env.contains("A_OK=1") && env.contains("A_TRY=0"), "{env}");
    let out = on_bus(&bus, "rauc", &["status", "mark-good", "rootfs.7"])?;
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("rauc mark: "), "{}", text(&out));

    // io.outpost.Agent1: a durable publish and the documents the HTTP API serves.
    let agent1 = |method: &str, args: &[&str]| -> Result<String> {
        let m = format!("io.outpost.Agent1.{method}");
        let out = gdbus_call(&bus, "io.outpost.Agent", "/io/outpost/Agent1", &m, args)?;
        ensure!(out.status.success(), "{method}: {}", text(&out));
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let id = agent1("Publish", &["app.e2e", r#"{"n": 1}"#, ""])?;
    assert!(id.starts_with("('") && id.len() > 6, "{id}");
    let stats = agent1("OutboxStats", &[])?;
    assert!(stats.contains("app.e2e"), "{stats}");
    let health = agent1("HealthStatus", &[])?;
    assert!(health.contains("phase"), "{health}");
    // The GET /v1/identity document: this device has no [identity], so it says so.
    let identity = agent1("Identity", &[])?;
    assert!(identity.contains("enrollment"), "{identity}");
    let out = gdbus_call(
        &bus,
        "io.outpost.Agent",
        "/io/outpost/Agent1",
        "io.outpost.Agent1.Publish",
        &["Bad Stream!", "{}", ""],
    )?;
    assert!(
        text(&out).contains("org.freedesktop.DBus.Error.InvalidArgs"),
        "{}",
        text(&out)
    );
    Ok(())
}

/// A bus that cannot be reached is logged and the agent serves everything else.
#[test]
fn without_its_bus_the_agent_still_runs() -> Result<()> {
    let tmp = tempfile::Builder::new()
        .prefix("outpost-e2e-nobus")
        .tempdir()?;
    let config = tmp.path().join("agent.toml");
    let missing = tmp.path().join("no-bus-here");
    std::fs::write(
        &config,
        format!(
            "state_dir = \"state\"\n[api]\nsocket = \"agent.sock\"\n[dbus]\nbus = \"unix:path={}\"\n",
            missing.display()
        ),
    )?;
    let mut agent = Agent::start(&config)?;
    let mut api = outpost_e2e::unix_http::UnixHttp::new(&tmp.path().join("agent.sock"));
    let r = api.post("/v1/outbox/app.nobus", &[], b"{\"ok\":true}")?;
    assert_eq!(r.status, 202, "publishing works without D-Bus");
    let log = std::fs::read_to_string(tmp.path().join("agent.log"))?;
    assert!(log.contains("D-Bus not served"), "{log}");
    assert!(agent.terminate()?, "clean exit");
    Ok(())
}
