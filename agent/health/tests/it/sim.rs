//! A simulated device: real `outpost-boot` backends on files in a temp dir, plus what the
//! bootloader itself does at boot (RAUC's grub.conf and uboot.sh scripts, the Raspberry Pi
//! firmware's tryboot, systemd-boot's counting renames), so "reboot" = run the firmware step and
//! start a fresh driver with the slot it picked.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use outpost_boot::fw_env_config::FwEnvConfig;
use outpost_boot::grub::GrubBackend;
use outpost_boot::grubenv::GrubEnv;
use outpost_boot::rpi_tryboot::{Autoboot, RpiTrybootBackend};
use outpost_boot::systemd_boot::esp::Esp;
use outpost_boot::systemd_boot::{
    rename_entry, EntryKind, EntryName, SystemdBootBackend, SystemdBootConfig,
};
use outpost_boot::uboot::UbootBackend;
use outpost_boot::ubootenv::{Layout, UbootEnv};
use outpost_boot::{Bootloader, SlotName, SlotState};
use outpost_health::driver::{BootContext, Capabilities, Driver, DriverError};
use outpost_health::state_file::ActivationKey;
use outpost_health::{BackendFamily, GateState, HealthConfig, HealthRecord, Outcome};

use crate::fakes::{arc, BootClock, Builtins, Reboots, Records, Units};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Grub,
    Uboot,
    Rpi,
    SdBoot,
}

pub const ALL: [Kind; 4] = [Kind::Grub, Kind::Uboot, Kind::Rpi, Kind::SdBoot];

pub fn s(n: &str) -> SlotName {
    SlotName::new(n).unwrap()
}

pub struct Device {
    pub kind: Kind,
    _dir: tempfile::TempDir,
    pub dir: PathBuf,
    pub booted: SlotName,
    pub boot_no: u32,
    /// rpi: the next reboot is `reboot "0 tryboot"`.
    tryboot_next: bool,
    central: HashMap<String, (ActivationKey, Option<String>)>,
    pub units: Arc<Units>,
    pub reboots: Arc<Reboots>,
    pub records: Arc<Records>,
    pub uploaded: bool,
    boot_started: Instant,
}

impl Device {
    /// A device with both slots set up as RAUC's docs describe, powered on (it boots A).
    pub fn new(kind: Kind) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_owned();
        match kind {
            Kind::Grub => {
                let mut env = GrubEnv::new();
                for (k, v) in [
                    ("ORDER", "A B"),
                    ("A_OK", "1"),
                    ("A_TRY", "0"),
                    ("B_OK", "1"),
                    ("B_TRY", "0"),
                ] {
                    env.set(k, v).unwrap();
                }
                std::fs::write(path.join("grubenv"), env.serialize().unwrap()).unwrap();
            }
            Kind::Uboot => {
                std::fs::write(
                    path.join("fw_env.config"),
                    format!("{}/uboot.env 0x0 0x2000\n", path.display()),
                )
                .unwrap();
                let mut env = UbootEnv::new();
                for (k, v) in [
                    ("BOOT_ORDER", "A B"),
                    ("BOOT_A_LEFT", "3"),
                    ("BOOT_B_LEFT", "3"),
                ] {
                    env.set(k, v).unwrap();
                }
                std::fs::write(
                    path.join("uboot.env"),
                    env.serialize(0x2000, Layout::Single, 0).unwrap(),
                )
                .unwrap();
            }
            Kind::Rpi => {
                std::fs::write(
                    path.join("autoboot.txt"),
                    "[all]\ntryboot_a_b=1\nboot_partition=2\n",
                )
                .unwrap();
            }
            Kind::SdBoot => {
                // A directory ESP with Type #1 entries; A is primary (higher generation).
                std::fs::create_dir_all(path.join("esp/loader/entries")).unwrap();
                for (entry, kernel) in [("outpost_1-A", "vmlinuz-a"), ("outpost_0-B", "vmlinuz-b")]
                {
                    std::fs::write(path.join("esp").join(kernel), "kernel").unwrap();
                    std::fs::write(
                        path.join(format!("esp/loader/entries/{entry}.conf")),
                        format!("title {entry}\nlinux /{kernel}\n"),
                    )
                    .unwrap();
                }
            }
        }
        let mut d = Device {
            kind,
            _dir: dir,
            dir: path,
            booted: s("A"),
            boot_no: 0,
            tryboot_next: false,
            central: HashMap::new(),
            units: arc(Units::default()),
            reboots: arc(Reboots::default()),
            records: arc(Records::default()),
            uploaded: false,
            boot_started: Instant::now(),
        };
        d.units.set("app.service", "active", "running");
        d.reboot();
        d
    }

    pub fn bootloader(&self) -> Arc<dyn Bootloader + Send + Sync> {
        let ab = vec![s("A"), s("B")];
        match self.kind {
            Kind::Grub => Arc::new(GrubBackend::new(self.dir.join("grubenv"), ab)),
            Kind::Uboot => {
                let text = std::fs::read_to_string(self.dir.join("fw_env.config")).unwrap();
                Arc::new(UbootBackend::new(FwEnvConfig::parse(&text).unwrap(), ab))
            }
            Kind::Rpi => Arc::new(RpiTrybootBackend::new(
                self.dir.join("autoboot.txt"),
                vec![(s("A"), 2), (s("B"), 3)],
            )),
            Kind::SdBoot => {
                let mut cfg = SystemdBootConfig::new(self.dir.join("esp"));
                cfg.kind = EntryKind::Type1;
                Arc::new(SystemdBootBackend::new(cfg, ab))
            }
        }
    }

    pub fn family(&self) -> BackendFamily {
        match self.kind {
            Kind::Grub => BackendFamily::Grub,
            Kind::Uboot => BackendFamily::Uboot,
            Kind::Rpi => BackendFamily::RpiTryboot,
            Kind::SdBoot => BackendFamily::SystemdBoot,
        }
    }

    pub fn state_path(&self) -> PathBuf {
        self.dir.join("health.json")
    }

    pub fn gate_state(&self) -> GateState {
        GateState::load(&self.state_path()).unwrap()
    }

    /// What `outpost-update`'s install does to the bootloader and central.raucs.
    pub fn install(&mut self, slot: &str, version: &str) {
        let bl = self.bootloader();
        bl.set_state(&s(slot), SlotState::Bad).unwrap();
        let e = self.central.entry(slot.to_owned()).or_default();
        e.0.installed_count += 1;
        e.0.activated_count += 1;
        e.0.activated_timestamp = Some(format!("2026-01-01T00:00:{:02}Z", e.0.activated_count));
        e.1 = Some(version.to_owned());
        bl.set_primary(&s(slot)).unwrap();
        self.tryboot_next = true;
    }

    /// The firmware/bootloader picks a slot (and counts the attempt), then the OS starts.
    pub fn reboot(&mut self) {
        self.booted = match self.kind {
            Kind::Grub => self.grub_boot(),
            Kind::Uboot => self.uboot_boot(),
            Kind::Rpi => self.rpi_boot(),
            Kind::SdBoot => self.sdboot_boot(),
        };
        self.boot_no += 1;
        self.boot_started = Instant::now();
    }

    /// RAUC contrib/grub.conf: first slot in ORDER with _OK=1 and _TRY=0; set its _TRY=1.
    fn grub_boot(&self) -> SlotName {
        let p = self.dir.join("grubenv");
        let mut env = GrubEnv::parse(&std::fs::read(&p).unwrap()).unwrap();
        let var =
            |env: &GrubEnv, k: String| String::from_utf8(env.get(&k).unwrap_or_default()).unwrap();
        let order = var(&env, "ORDER".into());
        let slot = order
            .split(' ')
            .find(|sl| {
                var(&env, format!("{sl}_OK")) == "1" && var(&env, format!("{sl}_TRY")) == "0"
            })
            .expect("GRUB found no bootable slot")
            .to_owned();
        env.set(&format!("{slot}_TRY"), "1").unwrap();
        std::fs::write(&p, env.serialize().unwrap()).unwrap();
        s(&slot)
    }

    /// RAUC contrib/uboot.sh: first slot in BOOT_ORDER with LEFT > 0; LEFT -= 1.
    fn uboot_boot(&self) -> SlotName {
        let text = std::fs::read_to_string(self.dir.join("fw_env.config")).unwrap();
        let b = UbootBackend::new(FwEnvConfig::parse(&text).unwrap(), vec![s("A"), s("B")]);
        let mut loaded = b.load().unwrap();
        let order = String::from_utf8(loaded.env.get("BOOT_ORDER").unwrap().to_vec()).unwrap();
        let left = |env: &UbootEnv, sl: &str| {
            let v = env
                .get(&format!("BOOT_{sl}_LEFT"))
                .map(|v| String::from_utf8(v.to_vec()).unwrap());
            v.map_or(0, |v| u32::from_str_radix(&v, 16).unwrap())
        };
        let slot = order
            .split(' ')
            .find(|sl| !sl.is_empty() && left(&loaded.env, sl) > 0)
            .expect("U-Boot found no bootable slot")
            .to_owned();
        let n = left(&loaded.env, &slot) - 1;
        loaded
            .env
            .set(&format!("BOOT_{slot}_LEFT"), &format!("{n:x}"))
            .unwrap();
        b.store(&loaded).unwrap();
        s(&slot)
    }

    /// Raspberry Pi firmware: `[tryboot]` once after `reboot "0 tryboot"`, else `[all]`.
    fn rpi_boot(&mut self) -> SlotName {
        let a = Autoboot::parse(&std::fs::read_to_string(self.dir.join("autoboot.txt")).unwrap())
            .unwrap();
        let part = if std::mem::take(&mut self.tryboot_next) {
            a.tryboot
        } else {
            a.default
        };
        if part == 2 {
            s("A")
        } else {
            s("B")
        }
    }

    /// systemd-boot: the default entry of its menu (`outpost_boot::systemd_boot::menu`,
    /// checked against bootctl in outpost-boot's tests); a counted entry is renamed
    /// `+<left-1>-<done+1>` before it boots.
    fn sdboot_boot(&self) -> SlotName {
        let esp = Esp {
            root: self.dir.join("esp"),
            efivars: None,
        };
        let menu = esp.scan().unwrap();
        let (path, entry) = menu
            .default_entry()
            .expect("systemd-boot found no entry")
            .clone();
        let next: EntryName = entry.name.after_boot_attempt();
        rename_entry(&path, &next).unwrap();
        let bootname = entry.name.stem.rsplit_once('-').unwrap().1;
        s(bootname)
    }

    pub fn driver(&self, config: &HealthConfig) -> Driver {
        let caps = Capabilities {
            bootloader: self.bootloader(),
            systemd: self.units.clone(),
            logind: self.reboots.clone(),
            records: self.records.clone(),
            clock: arc(BootClock(self.boot_started)),
            builtins: arc(Builtins {
                uploaded: self.uploaded,
            }),
        };
        Driver::new(config.clone(), self.state_path(), caps)
    }

    pub fn context(&self) -> BootContext {
        let (activation, version) = self
            .central
            .get(self.booted.as_str())
            .cloned()
            .unwrap_or_default();
        BootContext {
            family: self.family(),
            booted: self.booted.clone(),
            activation,
            version,
            boot_id: format!("boot-{}", self.boot_no),
        }
    }

    /// The agent starts and runs the gate to its end.
    pub async fn run_agent(&self, config: &HealthConfig) -> Result<Outcome, DriverError> {
        self.driver(config).run(self.context()).await
    }

    pub fn reboot_requests(&self) -> u32 {
        self.reboots.0.load(Ordering::SeqCst)
    }

    pub fn records(&self) -> Vec<HealthRecord> {
        self.records.0.lock().unwrap().clone()
    }

    pub fn state_of(&self, slot: &str) -> SlotState {
        self.bootloader().state(&s(slot)).unwrap()
    }
}

pub fn config(extra: &str) -> HealthConfig {
    #[derive(serde::Deserialize)]
    struct Doc {
        health: HealthConfig,
    }
    let text = format!(
        "[health]\ndeadline = \"2s\"\ninterval = \"20ms\"\n\
         [[health.checks]]\nname = \"app\"\nkind = \"systemd-unit\"\nunit = \"app.service\"\n\
         [[health.checks]]\nname = \"probe\"\nkind = \"command\"\ncommand = [\"true\"]\n\
         [[health.checks]]\nname = \"up\"\nkind = \"uptime\"\nmin = \"10ms\"\n{extra}"
    );
    toml::from_str::<Doc>(&text).unwrap().health
}
