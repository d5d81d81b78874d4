//! The RAUC-compatible server against real peers: a real `dbus-daemon`, RAUC 1.8's own `rauc`
//! CLI (which talks to the session bus when `DBUS_STARTER_BUS_TYPE=session`) and `gdbus`,
//! with a stand-in installer backend. The interface is also compared with the real
//! `rauc service`, started on a private bus.
//!
//! Facts recorded from the real `rauc 1.8 service` (grub backend, a central.raucs with every
//! key), which these tests and the agent's end-to-end test (tests/e2e rauc_cli.rs) hold us
//! to:
//! * `GetSlotStatus` answers `a(sa{sv})`; every value is a string except `size` (`uint64`)
//!   and `installed.count`/`activated.count` (`uint32`). Keys are left out when unknown
//!   (no `bundle.*` for a never-installed slot, no `parent` for a root slot).
//! * `rauc status --detailed --output-format=json` reads those with `g_variant_dict_lookup`
//!   and the exact type: a `uint64` count would print as 0.
//! * Failed calls are `org.gtk.GDBus.UnmappedGError.Quark._g_2dio_2derror_2dquark.Code30`
//!   (`G_IO_ERROR_FAILED_HANDLED`); `rauc status mark-*` prints "rauc mark: MESSAGE", `rauc
//!   install` prints "Failed GDBus.Error:...: MESSAGE" for a refused call and "LastError:
//!   MESSAGE" for a failed install, then exits 1.
//! * Unknown `InstallBundle` keys: "Unsupported key: KEY".
//! * `rauc info` is local in 1.8 (no D-Bus), so `Info`/`InspectBundle` are checked with gdbus.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use outpost_dbus::rauc::{
    BackendError, BundleDescription, FinishedInstall, ImageDescription, InstallRequest,
    InstallStatus, InstallerBackend, Marked, RunningInstall, SlotEntry, SystemInfo, Value,
};
use outpost_dbus::testing::TestBus;
use outpost_dbus::{serve, Bus, BusServer, ServeConfig};
use outpost_health::runner::BoxFuture;
use tokio::sync::watch;

/// A stand-in installer: two grub-style slots, installs that walk through RAUC-like steps in
/// a few tens of milliseconds, and a bundle whose name contains "bad" failing verification.
struct Fake {
    status: watch::Sender<InstallStatus>,
    serial: AtomicU64,
    marks: Mutex<Vec<(String, String)>>,
    installs: Mutex<Vec<InstallRequest>>,
}

impl Fake {
    fn new() -> Arc<Self> {
        Arc::new(Fake {
            status: watch::Sender::new(InstallStatus::default()),
            serial: AtomicU64::new(0),
            marks: Mutex::new(Vec::new()),
            installs: Mutex::new(Vec::new()),
        })
    }
}

fn s(v: &str) -> Value {
    Value::Str(v.to_owned())
}

impl InstallerBackend for Fake {
    fn start_install(&self, req: InstallRequest) -> BoxFuture<'_, Result<(), BackendError>> {
        Box::pin(async move {
            if !req.source.starts_with('/') {
                return Err(BackendError::new("bundle must be an absolute path"));
            }
            if self.status.borrow().running.is_some() {
                return Err(BackendError::new("an installation is already running"));
            }
            let serial = self.serial.fetch_add(1, Ordering::SeqCst) + 1;
            let bad = req.source.contains("bad");
            self.installs.lock().unwrap().push(req);
            let step = move |percent: u8, step: &str| RunningInstall {
                serial,
                percent,
                step: step.to_owned(),
            };
            self.status
                .send_modify(|s| s.running = Some(step(0, "Checking bundle")));
            let tx = self.status.clone();
            tokio::spawn(async move {
                let pause = || tokio::time::sleep(Duration::from_millis(30));
                pause().await;
                let error = if bad {
                    Some("signature verification failed: signer is not trusted".to_owned())
                } else {
                    for (p, m) in [(40, "Copying image to rootfs.1"), (100, "Installing done")] {
                        tx.send_modify(|s| s.running = Some(step(p, m)));
                        pause().await;
                    }
                    None
                };
                tx.send_modify(|s| {
                    s.running = None;
                    s.finished = Some(FinishedInstall { serial, error });
                });
            });
            Ok(())
        })
    }

    fn install_status(&self) -> watch::Receiver<InstallStatus> {
        self.status.subscribe()
    }

    fn inspect(&self, source: String) -> BoxFuture<'_, Result<BundleDescription, BackendError>> {
        Box::pin(async move {
            if source.contains("bad") {
                return Err(BackendError::new("signature verification failed"));
            }
            Ok(BundleDescription {
                manifest_hash: "0f".repeat(32),
                compatible: "Test Board".into(),
                version: Some("2026.11.0".into()),
                format: "plain".into(),
                images: vec![ImageDescription {
                    slot_class: "rootfs".into(),
                    filename: Some("rootfs.img".into()),
                    checksum: Some("ab".repeat(32)),
                    size: Some(1 << 20),
                    ..Default::default()
                }],
                ..Default::default()
            })
        })
    }

    fn mark(&self, state: String, slot: String) -> BoxFuture<'_, Result<Marked, BackendError>> {
        Box::pin(async move {
            let name = match slot.as_str() {
                "booted" | "rootfs.0" => "rootfs.0",
                "other" | "rootfs.1" => "rootfs.1",
                other => {
                    return Err(BackendError::new(format!(
                        "No slot with class rootfs and name {other} found"
                    )))
                }
            };
            self.marks.lock().unwrap().push((state.clone(), slot));
            Ok(Marked {
                slot: name.into(),
                message: format!("marked slot {name} as {state}"),
            })
        })
    }

    fn slot_status(&self) -> BoxFuture<'_, Result<Vec<SlotEntry>, BackendError>> {
        Box::pin(async move {
            let common = |bootname: &str, state: &str| {
                vec![
                    ("class".into(), s("rootfs")),
                    ("device".into(), s("/dev/null")),
                    ("type".into(), s("raw")),
                    ("bootname".into(), s(bootname)),
                    ("state".into(), s(state)),
                    ("boot-status".into(), s("good")),
                ]
            };
            let mut b = common("B", "inactive");
            b.extend([
                ("bundle.compatible".into(), s("Test Board")),
                ("bundle.version".into(), s("2026.11.0")),
                ("status".into(), s("ok")),
                ("sha256".into(), s(&"ab".repeat(32))),
                ("size".into(), Value::U64(1 << 20)),
                ("installed.timestamp".into(), s("2026-11-22T00:00:00Z")),
                ("installed.count".into(), Value::U32(7)),
                ("activated.timestamp".into(), s("2026-11-22T00:00:01Z")),
                ("activated.count".into(), Value::U32(5)),
            ]);
            Ok(vec![
                ("rootfs.0".into(), common("A", "booted")),
                ("rootfs.1".into(), b),
            ])
        })
    }

    fn primary(&self) -> BoxFuture<'_, Result<String, BackendError>> {
        Box::pin(async { Ok("rootfs.1".to_owned()) })
    }

    fn system(&self) -> SystemInfo {
        SystemInfo {
            compatible: "Test Board".into(),
            variant: String::new(),
            boot_slot: "A".into(),
        }
    }
}

async fn serve_fake(bus: &TestBus, fake: Arc<Fake>) -> BusServer {
    serve(ServeConfig {
        bus: Bus::Address(bus.address().to_owned()),
        installer: Some(("de.pengutronix.rauc".into(), fake)),
        agent: None,
    })
    .await
    .unwrap()
}

/// Runs a real tool against `bus` as a session bus (how RAUC's CLI is pointed at a bus).
async fn tool(bus: &TestBus, program: &str, args: &[&str]) -> Output {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env("DBUS_STARTER_BUS_TYPE", "session")
        .env("DBUS_SESSION_BUS_ADDRESS", bus.address());
    tokio::time::timeout(
        Duration::from_secs(30),
        tokio::task::spawn_blocking(move || {
            cmd.output()
                .expect("rauc (apt-get install rauc) and gdbus (apt-get install libglib2.0-bin)")
        }),
    )
    .await
    .expect("tool timed out")
    .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn bundle_file(dir: &Path, name: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, b"not read by the fake").unwrap();
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rauc_cli_installs_marks_and_lists_through_us() {
    let bus = TestBus::start().expect("dbus-daemon (apt-get install dbus)");
    let fake = Fake::new();
    let _server = serve_fake(&bus, fake.clone()).await;
    let dir = tempfile::tempdir().unwrap();

    // rauc status: properties (Compatible, BootSlot), GetPrimary and GetSlotStatus.
    let out = tool(
        &bus,
        "rauc",
        &["status", "--detailed", "--output-format=json"],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["compatible"], "Test Board");
    assert_eq!(v["booted"], "A");
    assert_eq!(v["boot_primary"], "rootfs.1");
    let slots = v["slots"].as_array().unwrap();
    let slot = |name: &str| {
        slots
            .iter()
            .find_map(|s| s.get(name))
            .unwrap_or_else(|| panic!("{name} missing: {v}"))
            .clone()
    };
    assert_eq!(slot("rootfs.0")["state"], "booted");
    assert_eq!(slot("rootfs.1")["boot_status"], "good");
    let st = &slot("rootfs.1")["slot_status"];
    // Read back by RAUC with the exact types: a wrong type would print 0 / null here.
    assert_eq!(st["installed"]["count"], 7, "{st}");
    assert_eq!(st["activated"]["count"], 5, "{st}");
    assert_eq!(st["checksum"]["size"], 1 << 20, "{st}");
    assert_eq!(st["bundle"]["version"], "2026.11.0");

    // rauc install: progress from PropertiesChanged, the end from Completed.
    let good = bundle_file(dir.path(), "update.raucb");
    let out = tool(&bus, "rauc", &["install", good.to_str().unwrap()]).await;
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("installing"), "Operation shown: {t}");
    assert!(t.contains("  0% Installing\n"), "{t}");
    assert_eq!(
        t.matches("Checking bundle").count(),
        1,
        "one signal, one value: {t}"
    );
    assert!(t.contains(" 40% Copying image to rootfs.1"), "{t}");
    assert!(t.contains("succeeded"), "{t}");
    {
        let installs = fake.installs.lock().unwrap();
        assert_eq!(installs.len(), 1);
        assert_eq!(installs[0].source, good.to_str().unwrap());
        assert!(
            !installs[0].ignore_compatible,
            "the CLI always sends it, false"
        );
    }
    let out = tool(
        &bus,
        "rauc",
        &["install", "--ignore-compatible", good.to_str().unwrap()],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(fake.installs.lock().unwrap()[1].ignore_compatible);

    // A failing install: LastError carries our message, exit status 1.
    let bad = bundle_file(dir.path(), "bad.raucb");
    let out = tool(&bus, "rauc", &["install", bad.to_str().unwrap()]).await;
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(
        t.contains("LastError: signature verification failed: signer is not trusted"),
        "{t}"
    );
    assert!(t.contains("failed"), "{t}");

    // rauc status mark-*: Mark, and its error text.
    let out = tool(&bus, "rauc", &["status", "mark-good", "booted"]).await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("rauc status: marked slot rootfs.0 as good"),
        "{}",
        text(&out)
    );
    let out = tool(&bus, "rauc", &["status", "mark-active", "other"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let out = tool(&bus, "rauc", &["status", "mark-bad", "rootfs.9"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("rauc mark: No slot with class rootfs and name rootfs.9 found"),
        "{}",
        text(&out)
    );
    assert_eq!(
        *fake.marks.lock().unwrap(),
        vec![
            ("good".to_owned(), "booted".to_owned()),
            ("active".to_owned(), "other".to_owned())
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gdbus_sees_inspect_info_and_clear_refusals() {
    let bus = TestBus::start().unwrap();
    let fake = Fake::new();
    let _server = serve_fake(&bus, fake.clone()).await;
    let call = |method: &str, args: &[&str]| {
        let mut a = vec![
            "call",
            "--session",
            "--dest",
            "de.pengutronix.rauc",
            "--object-path",
            "/",
            "--method",
        ];
        let m = format!("de.pengutronix.rauc.Installer.{method}");
        let mut owned: Vec<String> = a.drain(..).map(str::to_owned).collect();
        owned.push(m);
        owned.extend(args.iter().map(|s| (*s).to_owned()));
        owned
    };
    let run = |args: Vec<String>| {
        let bus = &bus;
        async move {
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            tool(bus, "gdbus", &refs).await
        }
    };

    let out = run(call("Info", &["/b.raucb"])).await;
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "('Test Board', '2026.11.0')"
    );
    let out = run(call("InspectBundle", &["/b.raucb", "{}"])).await;
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    for want in [
        "'manifest-hash': <'0f0f",
        "'update': <{'compatible': <'Test Board'>, 'version': <'2026.11.0'>}>",
        "'bundle': <{'format': <'plain'>}>",
        "'slot-class': <'rootfs'>",
        "'size': <uint64 1048576>",
        "'hooks': <@as []>",
    ] {
        assert!(t.contains(want), "{want} in {t}");
    }
    let out = run(call("Info", &["/bad.raucb"])).await;
    assert!(
        text(&out).contains(
            "org.gtk.GDBus.UnmappedGError.Quark._g_2dio_2derror_2dquark.Code30: signature verification failed"
        ),
        "RAUC's error name: {}",
        text(&out)
    );

    // Streaming keys and unknown keys are refused by name; nothing is installed.
    let out = run(call(
        "InstallBundle",
        &["/b.raucb", "{'tls-cert': <'/c.pem'>}"],
    ))
    .await;
    assert!(
        text(&out).contains(
            "Unsupported key: tls-cert (outpost-agent installs bundles from local paths only"
        ),
        "{}",
        text(&out)
    );
    let out = run(call("InstallBundle", &["/b.raucb", "{'x-frob': <1>}"])).await;
    assert!(
        text(&out).contains("Unsupported key: x-frob"),
        "{}",
        text(&out)
    );
    let out = run(call(
        "InstallBundle",
        &["https://example.com/b.raucb", "{}"],
    ))
    .await;
    assert!(text(&out).contains("local paths only"), "{}", text(&out));
    assert!(fake.installs.lock().unwrap().is_empty());
    let out = run(call(
        "InstallBundle",
        &[
            "/b.raucb",
            "{'require-manifest-hash': <'abc'>, 'ignore-version-limit': <true>}",
        ],
    ))
    .await;
    assert!(out.status.success(), "{}", text(&out));
    let req = fake.installs.lock().unwrap()[0].clone();
    assert_eq!(req.require_manifest_hash.as_deref(), Some("abc"));
    assert!(req.ignore_version_limit);

    // A second server cannot take the name while we hold it.
    let err = serve(ServeConfig {
        bus: Bus::Address(bus.address().to_owned()),
        installer: Some(("de.pengutronix.rauc".into(), Fake::new())),
        agent: None,
    })
    .await
    .err()
    .expect("name is taken");
    assert!(err.to_string().contains("already owned"), "{err}");
}

/// `gdbus introspect`'s members of `de.pengutronix.rauc.Installer`, one string each, with
/// annotations and property values left out ("Mark(in s state, in s slot_identifier, out s
/// slot_name, out s message)", "readonly s Operation", "Completed(i result)").
fn installer_members(introspection: &str) -> BTreeSet<String> {
    let start = introspection
        .find("interface de.pengutronix.rauc.Installer {")
        .expect("Installer interface");
    let body = &introspection[start..];
    let body = &body[body.find('{').unwrap() + 1..body.find("};").unwrap()];
    let joined: String = body
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('@') && !l.ends_with(':'))
        .collect::<Vec<_>>()
        .join(" ");
    joined
        .split(';')
        .map(|m| {
            let m = m.split(" = ").next().unwrap_or_default();
            m.split_whitespace().collect::<Vec<_>>().join(" ")
        })
        .filter(|m| !m.is_empty())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_interface_is_the_real_rauc_service_s_plus_inspect_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for s in ["rootfs-0", "rootfs-1"] {
        std::fs::write(d.join(s), vec![0u8; 4096]).unwrap();
    }
    let ok = |o: Output| assert!(o.status.success(), "{}", text(&o));
    let grubenv = d.join("grubenv");
    ok(Command::new("grub-editenv")
        .arg(&grubenv)
        .arg("create")
        .output()
        .unwrap());
    ok(Command::new("grub-editenv")
        .arg(&grubenv)
        .args(["set", "ORDER=A B", "A_OK=1", "A_TRY=0", "B_OK=1", "B_TRY=0"])
        .output()
        .unwrap());
    ok(Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "30", "-subj", "/CN=ca", "-keyout"])
        .arg(d.join("ca.key"))
        .arg("-out")
        .arg(d.join("ca.pem"))
        .output()
        .unwrap());
    let p = d.display();
    let conf = d.join("system.conf");
    std::fs::write(
        &conf,
        format!(
            "[system]\ncompatible=Test Board\nbootloader=grub\ngrubenv={p}/grubenv\n\
             data-directory={p}/data\n\n[keyring]\npath={p}/ca.pem\n\n\
             [slot.rootfs.0]\ndevice={p}/rootfs-0\ntype=raw\nbootname=A\n\n\
             [slot.rootfs.1]\ndevice={p}/rootfs-1\ntype=raw\nbootname=B\n"
        ),
    )
    .unwrap();

    // The real service on one bus, ours on another (both want RAUC's name).
    let real_bus = TestBus::start().unwrap();
    let mut real = Command::new("rauc")
        .arg(format!("--conf={}", conf.display()))
        .args(["service", "--override-boot-slot=A"])
        .env("DBUS_STARTER_BUS_TYPE", "session")
        .env("DBUS_SESSION_BUS_ADDRESS", real_bus.address())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("rauc service");
    let introspect = [
        "introspect",
        "--session",
        "--dest",
        "de.pengutronix.rauc",
        "--object-path",
        "/",
    ];
    let mut real_text = String::new();
    for _ in 0..100 {
        let out = tool(&real_bus, "gdbus", &introspect).await;
        if out.status.success() {
            real_text = String::from_utf8_lossy(&out.stdout).into_owned();
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = real.kill();
    let _ = real.wait();
    assert!(!real_text.is_empty(), "rauc service did not come up");

    let bus = TestBus::start().unwrap();
    let _server = serve_fake(&bus, Fake::new()).await;
    let ours = tool(&bus, "gdbus", &introspect).await;
    let real = installer_members(&real_text);
    let ours = installer_members(&String::from_utf8_lossy(&ours.stdout));
    assert!(real.len() >= 13, "parsed the real interface: {real:?}");
    let missing: Vec<_> = real.difference(&ours).collect();
    assert!(
        missing.is_empty(),
        "members RAUC 1.8 has and we lack: {missing:?}\nours: {ours:?}"
    );
    let extra: Vec<_> = ours.difference(&real).collect();
    assert_eq!(
        extra,
        vec!["InspectBundle(in s source, in a{sv} args, out a{sv} info)"],
        "only RAUC 1.9's InspectBundle is extra"
    );
}
