//! This crate's fixture, made with `outpost-testkit` (real openssl, rauc, grub-editenv) plus
//! dbus-daemon: a PKI, bundles, simulated devices with file-backed slots and a grubenv, and
//! the real `rauc service` to compare with.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

use outpost_boot::grub::GrubBackend;
use outpost_boot::SlotName;
use outpost_bundle::{Bundle, Keyring, VerifiedBundle, VerifyOptions};
use outpost_testkit::{grubenv, rauc_bundle, write_slot, KeyType, Manifest, Pki};
use outpost_update::install::{install, Environment, Error, InstallOptions, InstallReport};
use outpost_update::{Booted, Progress, SystemConfig};

use outpost_testkit::noise;

pub const COMPATIBLE: &str = "Outpost Test Board";
pub const ROOTFS_LEN: usize = 1024 * 1024;
pub const APPFS_LEN: usize = 300_000;
/// Slot files: room for the images, like make.sh's `truncate -s`.
pub const ROOTFS_SLOT: u64 = 2 * 1024 * 1024;
pub const APPFS_SLOT: u64 = 1024 * 1024;

pub struct Fixture {
    _tmp: tempfile::TempDir,
    pub root: PathBuf,
    pub ca: PathBuf,
    pub pki: Pki,
}

/// Shared PKI, made once per test binary (the power-cut child makes its own).
pub fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        let pki = Pki::new(&root.join("pki"));
        let ca = pki.ca("ca", "Update Test CA", KeyType::Ec);
        pki.signer("ca", "signer", "Update Test Signer", KeyType::Ec, "");
        Fixture {
            ca,
            pki,
            root,
            _tmp: tmp,
        }
    })
}

/// What goes into a bundle.
pub struct BundleSpec<'a> {
    pub name: &'a str,
    pub format: &'a str,
    pub compatible: &'a str,
    pub version: &'a str,
    pub seed: u64,
    /// Bytes of the rootfs image.
    pub rootfs_len: usize,
}

impl Default for BundleSpec<'_> {
    fn default() -> Self {
        BundleSpec {
            name: "plain",
            format: "plain",
            compatible: COMPATIBLE,
            version: "2026.11.0",
            seed: 1,
            rootfs_len: ROOTFS_LEN,
        }
    }
}

impl Fixture {
    /// `rauc bundle` of a rootfs and an appfs image; returns the path (cached by name).
    pub fn bundle(&self, spec: &BundleSpec<'_>) -> PathBuf {
        // Tests run in parallel and share bundles by name: build each once.
        static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let out = self.root.join(format!("{}.raucb", spec.name));
        if out.exists() {
            return out;
        }
        let content = self.root.join(format!("content-{}", spec.name));
        std::fs::create_dir_all(&content).unwrap();
        std::fs::write(
            content.join("rootfs.img"),
            noise(spec.seed, spec.rootfs_len),
        )
        .unwrap();
        std::fs::write(
            content.join("appfs.img"),
            noise(spec.seed + 1000, APPFS_LEN),
        )
        .unwrap();
        let description = format!("update test {}", spec.name);
        let build = format!("b{}", spec.seed);
        let manifest = Manifest {
            compatible: spec.compatible,
            version: spec.version,
            description: &description,
            build: &build,
            format: spec.format,
            images: &[("rootfs", "rootfs.img"), ("appfs", "appfs.img")],
        };
        rauc_bundle(&content, &manifest, &self.pki, "signer", &out);
        out
    }

    pub fn open(&self, bundle: &Path) -> VerifiedBundle {
        let keyring = Keyring::from_pem(&std::fs::read(&self.ca).unwrap()).unwrap();
        Bundle::open(bundle, &keyring, &VerifyOptions::at(SystemTime::now())).unwrap()
    }
}

/// A simulated device like make.sh's: slot files, a grubenv, a data directory, a system.conf.
pub struct Device {
    pub dir: PathBuf,
    pub conf_path: PathBuf,
}

pub const SLOT_FILES: [&str; 4] = ["rootfs-0", "rootfs-1", "appfs-0", "appfs-1"];

impl Device {
    /// `rootfs_slot` is the size of the rootfs slot files; `with_appfs` adds the appfs slots.
    pub fn new(dir: &Path, rootfs_slot: u64, with_appfs: bool) -> Device {
        std::fs::create_dir_all(dir.join("slots")).unwrap();
        std::fs::create_dir_all(dir.join("data")).unwrap();
        std::fs::create_dir_all(dir.join("mnt")).unwrap();
        for (i, name) in SLOT_FILES.iter().enumerate() {
            let size = if name.starts_with("rootfs") {
                rootfs_slot
            } else {
                APPFS_SLOT
            };
            // Distinct old content per slot, so "unchanged" and "overwritten" are visible.
            write_slot(&dir.join("slots").join(name), 100 + i as u64, size as usize);
        }
        grubenv(&dir.join("grubenv"));
        let d = dir.display();
        let mut conf = format!(
            "[system]\ncompatible={COMPATIBLE}\nbootloader=grub\ngrubenv={d}/grubenv\n\
             data-directory={d}/data\nmountprefix={d}/mnt\n\n[keyring]\npath={}\n\n\
             [slot.rootfs.0]\ndevice={d}/slots/rootfs-0\ntype=raw\nbootname=A\n\n\
             [slot.rootfs.1]\ndevice={d}/slots/rootfs-1\ntype=raw\nbootname=B\n",
            fixture().ca.display()
        );
        if with_appfs {
            conf.push_str(&format!(
                "\n[slot.appfs.0]\ndevice={d}/slots/appfs-0\ntype=raw\nparent=rootfs.0\n\n\
                 [slot.appfs.1]\ndevice={d}/slots/appfs-1\ntype=raw\nparent=rootfs.1\n"
            ));
        }
        let conf_path = dir.join("system.conf");
        std::fs::write(&conf_path, conf).unwrap();
        Device {
            dir: dir.to_path_buf(),
            conf_path,
        }
    }

    pub fn conf(&self) -> SystemConfig {
        SystemConfig::parse(&std::fs::read(&self.conf_path).unwrap(), &self.dir).unwrap()
    }

    /// Our install of `bundle` into this device (its system.conf, grubenv and central.raucs),
    /// booted from `booted`.
    pub fn install(
        &self,
        bundle: &Path,
        booted: &Booted,
        opts: &InstallOptions,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<InstallReport, Error> {
        let conf = self.conf();
        let grub = self.grub();
        let status = self.status_path();
        let env = Environment {
            bootloader: &grub,
            status_file: Some(&status),
            now: &SystemTime::now,
        };
        let vb = fixture().open(bundle);
        install(
            &vb,
            &conf.compatible,
            &conf.slots,
            booted,
            opts,
            &env,
            progress,
        )
    }

    pub fn grub(&self) -> GrubBackend {
        let names = ["A", "B"].map(|n| SlotName::new(n).unwrap()).to_vec();
        GrubBackend::new(self.dir.join("grubenv"), names)
    }

    pub fn slot_bytes(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.dir.join("slots").join(name)).unwrap()
    }

    pub fn status_path(&self) -> PathBuf {
        self.dir.join("data/central.raucs")
    }

    /// `grub-editenv list`, the real tool's view.
    pub fn grub_list(&self) -> String {
        outpost_testkit::grub_list(&self.dir.join("grubenv"))
    }

    /// Every file the install may touch, for "nothing was written" checks.
    pub fn snapshot(&self) -> Vec<(String, Vec<u8>)> {
        let slots: Vec<String> = SLOT_FILES.iter().map(|s| format!("slots/{s}")).collect();
        let mut files: Vec<&str> = slots.iter().map(String::as_str).collect();
        files.extend(["grubenv", "data/central.raucs"]);
        outpost_testkit::snapshot(&self.dir, &files)
    }
}

/// The real `rauc service` on a private session bus, booted slot forced to `A` as in make.sh.
pub struct RaucService {
    dbus: Child,
    service: Child,
    bus: String,
    conf: PathBuf,
}

impl RaucService {
    pub fn start(dev: &Device) -> RaucService {
        let sock = dev.dir.join("bus.sock");
        let _ = std::fs::remove_file(&sock);
        let bus = format!("unix:path={}", sock.display());
        let dbus = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--nopidfile"])
            .arg(format!("--address={bus}"))
            .stdout(Stdio::null())
            .spawn()
            .expect("dbus-daemon");
        wait_for(|| sock.exists(), "dbus socket");
        let log = std::fs::File::create(dev.dir.join("service.log")).unwrap();
        let service = Command::new("rauc")
            .arg(format!("--conf={}", dev.conf_path.display()))
            .args(["service", "--override-boot-slot=A"])
            .env("DBUS_SESSION_BUS_ADDRESS", &bus)
            .env("DBUS_STARTER_BUS_TYPE", "session")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("rauc service");
        let svc = RaucService {
            dbus,
            service,
            bus,
            conf: dev.conf_path.clone(),
        };
        wait_for(|| svc.has_name(), "rauc service on the bus");
        svc
    }

    fn has_name(&self) -> bool {
        Command::new("dbus-send")
            .args(["--session", "--print-reply", "--dest=org.freedesktop.DBus"])
            .args(["/org/freedesktop/DBus", "org.freedesktop.DBus.NameHasOwner"])
            .arg("string:de.pengutronix.rauc")
            .env("DBUS_SESSION_BUS_ADDRESS", &self.bus)
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("boolean true"))
    }

    /// `rauc <args>` against this service; returns (success, combined output).
    pub fn rauc(&self, args: &[&str]) -> (bool, String) {
        let out = Command::new("rauc")
            .arg(format!("--conf={}", self.conf.display()))
            .args(args)
            .env("DBUS_SESSION_BUS_ADDRESS", &self.bus)
            .env("DBUS_STARTER_BUS_TYPE", "session")
            .output()
            .expect("run rauc");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }
}

impl Drop for RaucService {
    fn drop(&mut self) {
        let _ = self.service.kill();
        let _ = self.service.wait();
        let _ = self.dbus.kill();
        let _ = self.dbus.wait();
    }
}

fn wait_for(mut ok: impl FnMut() -> bool, what: &str) {
    let start = Instant::now();
    while !ok() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
