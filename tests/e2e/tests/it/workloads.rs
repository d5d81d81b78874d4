//! Workloads on K3s end to end: `outpost-hub workloads set` publishes a signed manifest set
//! (packed and signed from a directory with the real `rauc bundle`), the real agent fetches,
//! verifies, binds and applies it into the manifests dir of `outpost-fake-k3s` (a test
//! stand-in for K3s's API server over that dir: workloads ready unless annotated never-ready,
//! one AddOn per file with the file's sha256), prunes dropped files through tombstones, and
//! brings its set back offline. Then the joint OS + workloads transaction: a bundle with a
//! rootfs and a `manifests` image installed into B, its set gating B's trial through GRUB
//! reboots played by the test (as in health_gate.rs): committed when ready, rolled back to A
//! (and A's set) when not.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use outpost_e2e::{bin_path, wait_for, Agent, DeviceDir, Fleet, Hub};
use outpost_testkit::bundle::{rauc_bundle, Manifest};
use outpost_testkit::device::noise;
use outpost_testkit::pki::{KeyType, Pki};
use serde_json::Value;

use crate::health_gate::{grub_editenv, grub_power_on, grub_var, SimSystemd};

const COMPATIBLE: &str = "e2e-workloads";
const CHANNEL: &str = "stable";

/// The `outpost-fake-k3s` process; SIGTERMed on drop.
struct FakeK3s {
    child: Option<Child>,
    dir: PathBuf,
    addr: String,
}

impl FakeK3s {
    /// Starts it on `listen` over `dir/tls` (written the first time) and `dir/manifests`.
    fn start(dir: &Path, listen: &str) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        let out = dir.join("fake-k3s.out");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("fake-k3s.log"))?;
        let child = Command::new(bin_path("outpost-fake-k3s"))
            .args(["--listen", listen, "--tls-dir"])
            .arg(dir.join("tls"))
            .arg("--manifests")
            .arg(dir.join("manifests"))
            .arg("--requests")
            .arg(dir.join("requests"))
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out)?)
            .stderr(log)
            .spawn()
            .context("starting outpost-fake-k3s")?;
        let mut fake = FakeK3s {
            child: Some(child),
            dir: dir.to_owned(),
            addr: String::new(),
        };
        let child = fake.child.as_mut().expect("just set");
        fake.addr = wait_for(Duration::from_secs(10), "the fake K3s", || {
            if let Some(status) = child.try_wait()? {
                bail!("outpost-fake-k3s exited with {status}");
            }
            let text = std::fs::read_to_string(&out)?;
            Ok(text
                .lines()
                .filter(|_| text.ends_with('\n'))
                .find_map(|l| l.strip_prefix("listening on ").map(str::to_owned)))
        })?;
        Ok(fake)
    }

    fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    fn manifests(&self) -> PathBuf {
        self.dir.join("manifests")
    }

    fn tls_dir(&self) -> PathBuf {
        self.dir.join("tls")
    }

    /// `METHOD path` of every request so far (across restarts).
    fn requests(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.join("requests"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// SIGTERM; fails unless it exits 0.
    fn stop(&mut self) -> Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )?;
        let status = child.wait()?;
        ensure!(status.success(), "outpost-fake-k3s exited with {status}");
        Ok(())
    }
}

impl Drop for FakeK3s {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A fleet of one device, a bundle PKI (`ca`, `signer`) and the hub trusting `ca`.
fn fleet_with_bundle_pki() -> Result<(Fleet, Pki)> {
    let fleet = Fleet::init(1)?;
    let pki = Pki::new(&fleet.dir.join("pki"));
    pki.ca("ca", "Workloads CA", KeyType::Ec);
    pki.signer("ca", "signer", "Workloads Signer", KeyType::Ec, "");
    let hub_toml = std::fs::read_to_string(fleet.hub_config())?;
    let with_keyring = hub_toml.replace(
        "# keyring = \"bundle-ca.pem\"",
        &format!("keyring = {:?}", pki.cert("ca").display().to_string()),
    );
    ensure!(with_keyring != hub_toml, "hub.toml has no keyring line");
    std::fs::write(fleet.hub_config(), with_keyring)?;
    Ok((fleet, pki))
}

fn deployment(name: &str, replicas: u32, never_ready: bool) -> String {
    let annotations = if never_ready {
        "      annotations:\n        outpost.io/test-never-ready: \"true\"\n"
    } else {
        ""
    };
    [
        "apiVersion: apps/v1\n".to_owned(),
        "kind: Deployment\n".to_owned(),
        format!("metadata:\n  name: {name}\n  namespace: default\n"),
        format!("spec:\n  replicas: {replicas}\n"),
        format!("  selector:\n    matchLabels: {{app: {name}}}\n"),
        format!("  template:\n    metadata:\n      labels: {{app: {name}}}\n{annotations}"),
        format!("    spec:\n      containers:\n        - name: {name}\n"),
        format!("          image: registry.local/{name}:1\n"),
    ]
    .concat()
}

fn config_map(name: &str, value: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  key: {value:?}\n")
}

/// A directory of manifest files (`name → content`), as `workloads set DIR` takes it.
fn set_dir(root: &Path, name: &str, files: &[(&str, String)]) -> Result<PathBuf> {
    let dir = root.join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    for (file, content) in files {
        std::fs::write(dir.join(file), content)?;
    }
    Ok(dir)
}

/// `outpost-hub workloads ARGS --config hub.toml`: (success, stdout, stderr).
fn hub_workloads(fleet: &Fleet, args: &[&str]) -> Result<(bool, String, String)> {
    let out = Command::new(bin_path("outpost-hub"))
        .arg("workloads")
        .args(args)
        .arg("--config")
        .arg(fleet.hub_config())
        .output()?;
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// Packs, signs and publishes `dir` as `revision` on the channel; the published set.
fn publish_dir(fleet: &Fleet, pki: &Pki, dir: &Path, revision: &str) -> Result<Value> {
    let (cert, key) = (pki.cert("signer"), pki.key("signer"));
    let (ok, stdout, stderr) = hub_workloads(
        fleet,
        &[
            "set",
            "--channel",
            CHANNEL,
            "--compatible",
            COMPATIBLE,
            "--revision",
            revision,
            "--cert",
            &cert.display().to_string(),
            "--key",
            &key.display().to_string(),
            "--json",
            &dir.display().to_string(),
        ],
    )?;
    ensure!(ok, "workloads set {}: {stderr}", dir.display());
    let set: Value = serde_json::from_str(&stdout)?;
    ensure!(
        set["revision"] == revision && set["channel"] == CHANNEL,
        "{set}"
    );
    Ok(set)
}

fn published(fleet: &Fleet) -> Result<Vec<Value>> {
    let (ok, stdout, stderr) = hub_workloads(fleet, &["list", "--json"])?;
    ensure!(ok, "workloads list: {stderr}");
    Ok(serde_json::from_str::<Vec<Value>>(&stdout)?)
}

/// `tar` of `manifests/<file>` for the `manifests` image of a bundle.
fn manifests_tar(work: &Path, files: &[(&str, String)], out: &Path) -> Result<()> {
    let src = work.join("tar-src");
    let _ = std::fs::remove_dir_all(&src);
    std::fs::create_dir_all(src.join("manifests"))?;
    for (file, content) in files {
        std::fs::write(src.join("manifests").join(file), content)?;
    }
    let status = Command::new("tar")
        .arg("-C")
        .arg(&src)
        .arg("-cf")
        .arg(out)
        .arg("manifests")
        .status()?;
    ensure!(status.success(), "tar failed");
    Ok(())
}

/// Files of the device's K3s: the manifests dir of the fake and the agent's dirs around it.
struct Device {
    dev: DeviceDir,
    keyring: PathBuf,
    base: String,
    boot_no: u32,
}

impl Device {
    /// Slots A and B (1 MiB files), a grubenv with both good and A first.
    fn new(dev: DeviceDir, keyring: &Path) -> Result<Self> {
        for s in ["rootfs-a", "rootfs-b"] {
            std::fs::write(dev.dir.join(s), vec![0u8; 1 << 20])?;
        }
        std::fs::create_dir_all(dev.dir.join("data"))?;
        let env = dev.dir.join("grubenv");
        grub_editenv(&env, &["create"])?;
        grub_editenv(
            &env,
            &["set", "ORDER=A B", "A_OK=1", "A_TRY=0", "B_OK=1", "B_TRY=0"],
        )?;
        let base = std::fs::read_to_string(&dev.config)?;
        Ok(Self {
            dev,
            keyring: keyring.to_owned(),
            base,
            boot_no: 0,
        })
    }

    fn grubenv(&self) -> PathBuf {
        self.dev.dir.join("grubenv")
    }

    /// GRUB at power-on with RAUC's grub.cfg: the first slot in ORDER with _OK=1 and _TRY=0
    /// boots, after _TRY=1 is saved.
    fn power_on(&mut self) -> Result<String> {
        let slot = grub_power_on(&self.grubenv())?;
        self.boot_no += 1;
        Ok(slot)
    }

    /// Rewrites agent.toml: the fleet's own lines, then the sections for this boot.
    fn configure(&self, booted: &str, k3s: &FakeK3s, extra: &str) -> Result<()> {
        let d = self.dev.dir.display();
        let manifests = k3s.manifests();
        ensure!(manifests.starts_with(&self.dev.dir));
        std::fs::write(
            &self.dev.config,
            format!(
                r#"{base}

[update]
compatible = "{COMPATIBLE}"
bootloader = "grub"
grubenv = "{d}/grubenv"
keyring = "{keyring}"
data_directory = "{d}/data"
booted_slot = "{booted}"
boot_id = "boot-{n}"

{slots}
[uploader]
backoff_base_ms = 100
backoff_cap_ms = 500

[workloads]
channel = "{CHANNEL}"
interval = "1s"
manifests_dir = "{manifests}"
images_dir = "{d}/k3s-images"

[k3s]
api = "{url}"
tls_dir = "{tls}"
supervise = false
poll = "200ms"
{extra}
"#,
                base = self.base,
                keyring = self.keyring.display(),
                n = self.boot_no,
                manifests = manifests.display(),
                url = k3s.url(),
                tls = k3s.tls_dir().display(),
                slots = outpost_e2e::ab_slots_toml(&self.dev.dir),
            ),
        )?;
        Ok(())
    }

    /// `outpostctl ARGS --json`: exit code and the document it printed.
    fn ctl(&self, args: &[&str]) -> Result<(Option<i32>, Value)> {
        let mut all = args.to_vec();
        all.push("--json");
        let out = self.dev.ctl(&all, None)?;
        let v: Value = serde_json::from_slice(&out.stdout).with_context(|| {
            format!(
                "outpostctl {args:?}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        })?;
        Ok((out.status.code(), v))
    }

    fn view(&self) -> Result<Value> {
        self.dev.ctl_json(&["workloads"])
    }

    /// `outpostctl workloads check`: asks the hub now instead of at the next interval.
    fn check_now(&self) -> Result<Value> {
        let (code, v) = self.ctl(&["workloads", "check"])?;
        ensure!(code == Some(0), "workloads check: {v}");
        Ok(v)
    }

    /// Waits until `revision` is bound and applied and every workload of it is rolled out.
    fn converged(&self, revision: &str, workloads: usize) -> Result<Value> {
        wait_for(
            Duration::from_secs(20),
            &format!("revision {revision} applied and ready"),
            || {
                let v = self.view()?;
                let objects = v["objects"].as_array().cloned().unwrap_or_default();
                Ok((v["desired"] == revision
                    && v["applied"] == revision
                    && v["tombstones"].as_array().is_some_and(Vec::is_empty)
                    && objects.len() == workloads
                    && objects.iter().all(|o| o["ready"] == true))
                .then_some(v))
            },
        )
    }

    fn health(&self) -> Result<Value> {
        self.dev.api().get("/v1/health")?.json()
    }

    /// Waits until the gate decided this boot.
    fn decided(&self) -> Result<Value> {
        wait_for(Duration::from_secs(30), "the gate's verdict", || {
            let h = self.health()?;
            Ok(match h["phase"].as_str() {
                Some("starting" | "checking") | None => None,
                Some(_) => Some(h),
            })
        })
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dev.dir.join("agent.log")).unwrap_or_default()
    }
}

/// Every file under `dir` (relative path → bytes), dotfiles included.
fn tree(dir: &Path) -> Result<BTreeMap<String, Vec<u8>>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) -> Result<()> {
        for e in std::fs::read_dir(dir)? {
            let p = e?.path();
            if p.is_dir() {
                walk(root, &p, out)?;
            } else {
                let rel = p.strip_prefix(root)?.display().to_string();
                out.insert(rel, std::fs::read(&p)?);
            }
        }
        Ok(())
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out)?;
    Ok(out)
}

/// The manifests dir holds `outpost/` with exactly `files` (plus its dotfile marker).
fn holds_exactly(manifests: &Path, files: &[(&str, String)]) -> Result<()> {
    let top: Vec<String> = std::fs::read_dir(manifests)?
        .map(|e| Ok(e?.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_>>()?;
    ensure!(top == ["outpost"], "the manifests dir holds {top:?}");
    let live: BTreeMap<String, Vec<u8>> = tree(&manifests.join("outpost"))?
        .into_iter()
        .filter(|(name, _)| !name.starts_with('.'))
        .collect();
    let want: BTreeMap<String, Vec<u8>> = files
        .iter()
        .map(|(n, c)| ((*n).to_owned(), c.clone().into_bytes()))
        .collect();
    ensure!(
        live == want,
        "outpost/ holds {:?}, expected {:?}",
        live.keys(),
        want.keys()
    );
    Ok(())
}

fn names(objects: &Value) -> Vec<String> {
    let mut v: Vec<String> = objects
        .as_array()
        .into_iter()
        .flatten()
        .map(|o| format!("{} {}/{}", o["kind"], o["namespace"], o["name"]).replace('"', ""))
        .collect();
    v.sort();
    v
}

const ADDONS: &str = "/apis/k3s.cattle.io/v1/namespaces/kube-system/addons/";

#[test]
fn a_published_set_is_applied_pruned_with_a_tombstone_and_restored_offline() -> Result<()> {
    let (fleet, pki) = fleet_with_bundle_pki()?;
    let v1: Vec<(&str, String)> = vec![
        ("web.yaml", deployment("web", 2, false)),
        ("worker.yaml", deployment("worker", 1, false)),
        ("settings.yaml", config_map("settings", "one")),
    ];
    let dir1 = set_dir(&fleet.dir, "set-1", &v1)?;
    let set1 = publish_dir(&fleet, &pki, &dir1, "1")?;
    ensure!(
        set1["manifests"] == 3 && set1["compatible"] == COMPATIBLE,
        "{set1}"
    );

    let mut hub = Hub::start(&fleet.hub_config())?;
    let dev = Device::new(fleet.device(1), &pki.cert("ca"))?;
    let mut k3s = FakeK3s::start(&dev.dev.dir.join("k3s"), "127.0.0.1:0")?;
    dev.configure("A", &k3s, "")?;
    let mut agent = Agent::start(&dev.dev.config)?;

    // (a) Fetched, verified, bound and applied: exactly the files, both Deployments ready.
    let cycle = dev.check_now()?;
    ensure!(cycle["result"] == "applied", "{cycle}");
    let v = dev.converged("1", 2)?;
    ensure!(
        names(&v["objects"]) == ["Deployment default/web", "Deployment default/worker"],
        "{v}"
    );
    holds_exactly(&k3s.manifests(), &v1)?;
    let records = wait_for(
        Duration::from_secs(20),
        "the workloads record at the hub",
        || {
            let r = fleet.hub_records(Some(&dev.dev.name), Some("outpost.workloads"))?;
            Ok((!r.is_empty()).then_some(r))
        },
    )?;
    let p = &records[0]["payload"];
    ensure!(
        p["revision"] == "1" && p["result"] == "applied" && p["manifests"] == 3,
        "{records:?}"
    );

    // (b) Revision 2 drops worker.yaml. K3s is down meanwhile, so the tombstone stays.
    k3s.stop()?;
    let v2: Vec<(&str, String)> = vec![
        ("web.yaml", deployment("web", 3, false)),
        ("settings.yaml", config_map("settings", "two")),
    ];
    let dir2 = set_dir(&fleet.dir, "set-2", &v2)?;
    publish_dir(&fleet, &pki, &dir2, "2")?;
    let cycle = dev.check_now()?;
    ensure!(cycle["result"] == "applied", "{cycle}");
    let v = dev.view()?;
    ensure!(v["desired"] == "2" && v["applied"] == "2", "{v}");
    let tombstones = v["tombstones"].as_array().cloned().unwrap_or_default();
    ensure!(
        tombstones.len() == 1
            && tombstones[0]["addon"] == "worker"
            && tombstones[0]["file"] == "worker.yaml",
        "{v}"
    );
    let tomb_path = k3s.manifests().join("outpost/worker.yaml");
    let tomb = std::fs::read(&tomb_path)?;
    ensure!(
        tomb.starts_with(b"# removed by outpost:"),
        "{}",
        String::from_utf8_lossy(&tomb)
    );
    ensure!(tombstones[0]["sha256"] == sha256_hex(&tomb).as_str(), "{v}");
    ensure!(names(&v["objects"]) == ["Deployment default/web"], "{v}");

    // K3s back (same port and credentials): it "applies" the tombstone (its AddOn's checksum
    // is the tombstone's), the agent deletes the AddOn and the tombstone; the view converges.
    let addr = k3s.addr.clone();
    let mut k3s = FakeK3s::start(&dev.dev.dir.join("k3s"), &addr)?;
    let v = dev.converged("2", 1)?;
    holds_exactly(&k3s.manifests(), &v2)?;
    let delete = format!("DELETE {ADDONS}worker");
    let get = format!("GET {ADDONS}worker");
    // The fake writes its request log every 50 ms.
    let requests = wait_for(
        Duration::from_secs(5),
        "the DELETE in the fake's log",
        || {
            let r = k3s.requests();
            Ok(r.contains(&delete).then_some(r))
        },
    )?;
    let deleted_at = requests.iter().position(|r| *r == delete);
    let read_at = requests.iter().position(|r| *r == get);
    ensure!(
        matches!((read_at, deleted_at), (Some(r), Some(d)) if r < d),
        "requests: {requests:?}"
    );
    ensure!(
        !requests
            .iter()
            .any(|r| r.starts_with("DELETE") && *r != delete),
        "only the dropped file's AddOn is deleted: {requests:?}"
    );
    ensure!(v["last_error"].is_null(), "{v}");
    let records = wait_for(Duration::from_secs(20), "the second record", || {
        let r = fleet.hub_records(Some(&dev.dev.name), Some("outpost.workloads"))?;
        Ok(r.iter()
            .find(|r| r["payload"]["revision"] == "2")
            .map(|r| r["payload"].clone()))
    })?;
    ensure!(
        records["previous"] == "1" && records["pruned"] == serde_json::json!(["worker"]),
        "{records}"
    );

    // (c) Offline: hub gone, agent killed, K3s's folder of ours deleted. The restart brings
    // revision 2 back from the agent's store, byte for byte.
    let before = tree(&k3s.manifests())?;
    ensure!(hub.terminate()?, "hub exit status");
    agent.kill9();
    std::fs::remove_dir_all(k3s.manifests().join("outpost"))?;
    let mut agent = Agent::start(&dev.dev.config)?;
    dev.converged("2", 1)?;
    let after = tree(&k3s.manifests())?;
    ensure!(
        after == before,
        "restored {:?}, had {:?}",
        after.keys(),
        before.keys()
    );
    ensure!(dev.log().contains("workloads in place"), "{}", dev.log());
    ensure!(agent.terminate()?, "agent exit status");
    k3s.stop()?;
    Ok(())
}

#[test]
fn sets_signed_outside_the_keyring_or_with_broken_yaml_are_refused() -> Result<()> {
    let (fleet, pki) = fleet_with_bundle_pki()?;
    // A CA the hub does not trust, and an artifact signed by its signer.
    let rogue = Pki::new(&fleet.dir.join("rogue"));
    rogue.ca("ca", "Rogue CA", KeyType::Ec);
    rogue.signer("ca", "signer", "Rogue Signer", KeyType::Ec, "");
    let content = fleet.dir.join("rogue-content");
    std::fs::create_dir_all(&content)?;
    manifests_tar(
        &fleet.dir,
        &[("web.yaml", deployment("web", 1, false))],
        &content.join("manifests.tar"),
    )?;
    // RAUC refuses a verity bundle whose squashfs is 4 KiB or less: filler that never shrinks.
    std::fs::write(content.join("padding.bin"), noise(3, 8192))?;
    let artifact = fleet.dir.join("rogue.raucb");
    rauc_bundle(
        &content,
        &Manifest {
            compatible: COMPATIBLE,
            version: "66",
            description: "signed outside the keyring",
            build: "1",
            format: "verity",
            images: &[("manifests", "manifests.tar")],
        },
        &rogue,
        "signer",
        &artifact,
    );
    let (ok, _, stderr) = hub_workloads(
        &fleet,
        &["set", "--channel", CHANNEL, &artifact.display().to_string()],
    )?;
    ensure!(!ok, "a rogue artifact was published");
    eprintln!("rogue artifact: {stderr}");
    ensure!(
        stderr.contains("rogue.raucb") && stderr.contains("not in keyring"),
        "{stderr}"
    );
    ensure!(published(&fleet)?.is_empty());

    // Broken YAML: refused before anything is published, naming the file.
    let dir = set_dir(
        &fleet.dir,
        "broken",
        &[
            ("web.yaml", deployment("web", 1, false)),
            (
                "broken.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x\ndata: [\n".into(),
            ),
        ],
    )?;
    let (cert, key) = (pki.cert("signer"), pki.key("signer"));
    let (ok, _, stderr) = hub_workloads(
        &fleet,
        &[
            "set",
            "--channel",
            CHANNEL,
            "--compatible",
            COMPATIBLE,
            "--revision",
            "7",
            "--cert",
            &cert.display().to_string(),
            "--key",
            &key.display().to_string(),
            &dir.display().to_string(),
        ],
    )?;
    ensure!(!ok, "a set with broken YAML was published");
    eprintln!("broken YAML: {stderr}");
    ensure!(
        stderr.contains("broken.yaml") && stderr.contains(&dir.display().to_string()),
        "{stderr}"
    );
    ensure!(published(&fleet)?.is_empty());

    // Neither is offered: the device asks and is up to date with nothing, nothing applied.
    let mut hub = Hub::start(&fleet.hub_config())?;
    let dev = Device::new(fleet.device(1), &pki.cert("ca"))?;
    let mut k3s = FakeK3s::start(&dev.dev.dir.join("k3s"), "127.0.0.1:0")?;
    dev.configure("A", &k3s, "")?;
    let mut agent = Agent::start(&dev.dev.config)?;
    let cycle = dev.check_now()?;
    ensure!(
        cycle["result"] == "up_to_date" && cycle["offer"].is_null(),
        "{cycle}"
    );
    let v = dev.view()?;
    ensure!(v["desired"].is_null() && v["applied"].is_null(), "{v}");
    ensure!(!k3s.manifests().join("outpost").exists());
    ensure!(agent.terminate()? && hub.terminate()?);
    k3s.stop()?;
    Ok(())
}

/// A device after [`joint_install_and_reboot_into_b`], with its daemons.
struct Joint {
    /// Owns the temporary directory everything lives in.
    _fleet: Fleet,
    dev: Device,
    k3s: FakeK3s,
    sim: SimSystemd,
    agent: Agent,
    a_files: Vec<(&'static str, String)>,
    b_files: Vec<(&'static str, String)>,
}

const GATE: &str = r#"
[health]
deadline = "6s"
interval = "200ms"
"#;

/// The joint transaction: A runs set `a1` (from the hub); a bundle with a rootfs and a
/// manifests image (`b2`, whose Deployment is never ready when `b_never_ready`) is installed
/// into B; the simulated reboot boots B on trial with `workloads-ready` in its gate.
/// Returns the device and what the B boot's gate decided.
fn joint_install_and_reboot_into_b(b_never_ready: bool) -> Result<(Joint, Value)> {
    let (fleet, pki) = fleet_with_bundle_pki()?;
    let a_files: Vec<(&'static str, String)> = vec![
        ("app.yaml", deployment("app-a", 1, false)),
        ("settings.yaml", config_map("settings", "a")),
    ];
    let dir = set_dir(&fleet.dir, "set-a1", &a_files)?;
    publish_dir(&fleet, &pki, &dir, "a1")?;

    let mut hub = Hub::start(&fleet.hub_config())?;
    let mut dev = Device::new(fleet.device(1), &pki.cert("ca"))?;
    let k3s = FakeK3s::start(&dev.dev.dir.join("k3s"), "127.0.0.1:0")?;
    let sim = SimSystemd::start(&dev.dev.dir, &[])?;
    let dbus = format!(
        "\n[dbus]\nbus = \"{}\"\nrauc_name = \"\"\nagent_name = \"\"\n{GATE}",
        sim.address
    );

    // Factory boot of A: not a trial; the channel's set a1 is bound to A and applied.
    ensure!(dev.power_on()? == "A");
    dev.configure("A", &k3s, &dbus)?;
    let mut agent = Agent::start(&dev.dev.config)?;
    ensure!(dev.decided()?["phase"] == "not-a-trial");
    let cycle = dev.check_now()?;
    ensure!(cycle["result"] == "applied", "{cycle}");
    dev.converged("a1", 1)?;
    holds_exactly(&k3s.manifests(), &a_files)?;
    // Offline from here on: what B and A run comes from the device alone.
    ensure!(hub.terminate()?);

    // The joint bundle: rootfs + manifests, one signature, version b2 = the set's revision.
    let b_files: Vec<(&'static str, String)> = vec![
        ("app.yaml", deployment("app-b", 2, b_never_ready)),
        ("extra.yaml", config_map("extra", "b")),
    ];
    let content = fleet.dir.join("joint");
    std::fs::create_dir_all(&content)?;
    let rootfs = noise(b_never_ready as u64, 65536);
    std::fs::write(content.join("rootfs.img"), &rootfs)?;
    manifests_tar(&fleet.dir, &b_files, &content.join("manifests.tar"))?;
    let bundle = fleet.dir.join("joint.raucb");
    rauc_bundle(
        &content,
        &Manifest {
            compatible: COMPATIBLE,
            version: "b2",
            description: "OS and workloads",
            build: "1",
            format: "verity",
            images: &[("rootfs", "rootfs.img"), ("manifests", "manifests.tar")],
        },
        &pki,
        "signer",
        &bundle,
    );
    let (code, installed) = dev.ctl(&["install", &bundle.display().to_string()])?;
    ensure!(code == Some(0), "install: {installed}\n{}", dev.log());
    let slot_b = std::fs::read(dev.dev.dir.join("rootfs-b"))?;
    ensure!(
        slot_b[..rootfs.len()] == rootfs[..],
        "B does not hold the rootfs"
    );
    // A still runs a1: the set waits for B's boot.
    holds_exactly(&k3s.manifests(), &a_files)?;
    ensure!(agent.terminate()?);

    // The reboot: GRUB picks B (primary, untried); the agent starts on B's trial.
    ensure!(
        dev.power_on()? == "B",
        "{}",
        grub_editenv(&dev.grubenv(), &["list"])?
    );
    dev.configure("B", &k3s, &dbus)?;
    let agent = Agent::start(&dev.dev.config)?;
    let h = dev.decided()?;
    let gate_checks: Vec<&str> = h["checks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str())
        .collect();
    ensure!(gate_checks.contains(&"workloads-ready"), "{h}");
    let v = dev.view()?;
    ensure!(v["desired"] == "b2" && v["applied"] == "b2", "{v}");
    Ok((
        Joint {
            _fleet: fleet,
            dev,
            k3s,
            sim,
            agent,
            a_files,
            b_files,
        },
        h,
    ))
}

#[test]
fn a_joint_os_and_workloads_update_commits_when_its_workloads_are_ready() -> Result<()> {
    let (mut j, h) = joint_install_and_reboot_into_b(false)?;
    ensure!(h["phase"] == "committed", "{h}\n{}", j.dev.log());
    let check = h["checks"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["name"] == "workloads-ready")
        .cloned()
        .unwrap_or_default();
    ensure!(
        check["result"] == "pass"
            && check["detail"]
                .as_str()
                .is_some_and(|d| d.contains("revision b2") && d.contains("rolled out")),
        "{h}"
    );
    ensure!(grub_var(&j.dev.grubenv(), "B_OK")? == "1");
    ensure!(grub_var(&j.dev.grubenv(), "B_TRY")? == "0");
    let v = j.dev.converged("b2", 1)?;
    ensure!(names(&v["objects"]) == ["Deployment default/app-b"], "{v}");
    holds_exactly(&j.k3s.manifests(), &j.b_files)?;
    ensure!(j.sim.reboot_requests() == 0);
    ensure!(j.agent.terminate()?);
    j.k3s.stop()?;
    Ok(())
}

#[test]
fn a_joint_update_whose_workloads_never_get_ready_rolls_back_to_a_and_its_set() -> Result<()> {
    let (mut j, h) = joint_install_and_reboot_into_b(true)?;
    ensure!(h["phase"] == "failed", "{h}");
    let reason = h["reason"].as_str().unwrap_or_default();
    ensure!(
        reason.contains("workloads-ready") || reason.contains("app-b"),
        "{h}"
    );
    ensure!(grub_var(&j.dev.grubenv(), "B_OK")? == "0", "B marked bad");
    wait_for(Duration::from_secs(10), "the reboot request", || {
        Ok((j.sim.reboot_requests() == 1).then_some(()))
    })?;
    ensure!(j.agent.terminate()?);

    // GRUB skips the bad B: A boots, records the rollback and runs A's set again.
    ensure!(j.dev.power_on()? == "A");
    let dbus = format!(
        "\n[dbus]\nbus = \"{}\"\nrauc_name = \"\"\nagent_name = \"\"\n{GATE}",
        j.sim.address
    );
    j.dev.configure("A", &j.k3s, &dbus)?;
    let mut agent = Agent::start(&j.dev.dev.config)?;
    let h = j.dev.decided()?;
    ensure!(
        h["phase"] == "not-a-trial" && h["last"]["result"] == "rolled-back",
        "{h}"
    );
    // b2's extra.yaml became a tombstone the fake "applied"; then A's files alone remain.
    let v = j.dev.converged("a1", 1)?;
    ensure!(names(&v["objects"]) == ["Deployment default/app-a"], "{v}");
    holds_exactly(&j.k3s.manifests(), &j.a_files)?;
    let delete = format!("DELETE {ADDONS}extra");
    wait_for(
        Duration::from_secs(5),
        "the DELETE in the fake's log",
        || Ok(j.k3s.requests().contains(&delete).then_some(())),
    )?;
    ensure!(agent.terminate()?);
    j.k3s.stop()?;
    Ok(())
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(bytes))
}
