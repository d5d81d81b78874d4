//! Update delivery end to end: `outpost-hub release add` publishes a bundle made by the real
//! `rauc bundle`; the real agent asks its hub (`outpostctl update check`), downloads it through
//! a proxy that cuts the connection every 256 KiB (each attempt resumes with `Range`), survives
//! a kill -9 in the middle of a rate-capped download (the restart continues the part), checks
//! the bundle's sha256, installs it into slot B (grubenv by the real grub-editenv) and reports
//! `installed` to the hub in the `outpost.updates` stream; asking again waits for the reboot.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use outpost_e2e::{bin_path, wait_for, Agent, DeviceDir, Fleet, Hub};
use outpost_testkit::bundle::{rauc_bundle, Manifest};
use outpost_testkit::pki::{KeyType, Pki};
use serde_json::Value;

const IMAGE_LEN: usize = 3 << 20;

fn image() -> Vec<u8> {
    let mut x = 0x2545_f491_4f6c_dd1du64;
    (0..IMAGE_LEN)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect()
}

/// A TCP relay to the hub that closes each connection after `cut` bytes from the hub.
fn flaky_proxy(hub: &str, cut: usize) -> Result<(String, Arc<AtomicBool>)> {
    let target = hub
        .trim_start_matches("https://")
        .trim_end_matches('/')
        .to_owned();
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let flaky = Arc::new(AtomicBool::new(true));
    let flaky_flag = flaky.clone();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let Ok(server) = TcpStream::connect(&target) else {
                continue;
            };
            let limit = if flaky_flag.load(Ordering::Relaxed) {
                cut
            } else {
                usize::MAX
            };
            let (mut c_read, mut s_write) =
                (client.try_clone().unwrap(), server.try_clone().unwrap());
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut c_read, &mut s_write);
                let _ = s_write.shutdown(std::net::Shutdown::Write);
            });
            let (mut s_read, mut c_write) = (server, client);
            std::thread::spawn(move || {
                let mut sent = 0usize;
                let mut buf = [0u8; 16 * 1024];
                loop {
                    let n = match s_read.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    if c_write.write_all(&buf[..n]).is_err() {
                        break;
                    }
                    sent += n;
                    if sent >= limit {
                        break;
                    }
                }
                let _ = c_write.shutdown(std::net::Shutdown::Both);
                let _ = s_read.shutdown(std::net::Shutdown::Both);
            });
        }
    });
    Ok((format!("https://127.0.0.1:{}", addr.port()), flaky))
}

/// Slots A (booted) and B, a grubenv, the update and delivery sections; `[hub] url` via `url`.
fn configure(dev: &DeviceDir, keyring: &Path, url: &str, extra_delivery: &str) -> Result<()> {
    let d = dev.dir.display();
    for s in ["rootfs-a", "rootfs-b"] {
        std::fs::write(dev.dir.join(s), vec![0u8; IMAGE_LEN + (1 << 20)])?;
    }
    std::fs::create_dir_all(dev.dir.join("data"))?;
    let env = dev.dir.join("grubenv");
    for args in [
        vec!["create"],
        vec!["set", "ORDER=A B", "A_OK=1", "A_TRY=0", "B_OK=1", "B_TRY=0"],
    ] {
        let out = std::process::Command::new("grub-editenv")
            .arg(&env)
            .args(&args)
            .output()?;
        ensure!(out.status.success());
    }
    let text = std::fs::read_to_string(&dev.config)?;
    let text: String = text
        .lines()
        .map(|l| {
            if l.starts_with("url = ") {
                format!("url = \"{url}\"")
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(
        &dev.config,
        format!(
            r#"{text}

[update]
compatible = "e2e-delivery"
bootloader = "grub"
grubenv = "{d}/grubenv"
keyring = "{keyring}"
data_directory = "{d}/data"
booted_slot = "A"

{slots}
[uploader]
backoff_base_ms = 100
backoff_cap_ms = 500

[delivery]
channel = "stable"
interval = "1h"
auto_install = false
{extra_delivery}
"#,
            keyring = keyring.display(),
            slots = outpost_e2e::ab_slots_toml(&dev.dir),
        ),
    )?;
    Ok(())
}

/// A fleet of one device, a bundle PKI (`ca`, `signer`) and the hub trusting it for releases.
fn fleet_with_bundle_pki() -> Result<(Fleet, Pki)> {
    let fleet = Fleet::init(1)?;
    let pki = Pki::new(&fleet.dir.join("pki"));
    pki.ca("ca", "Delivery CA", KeyType::Ec);
    pki.signer("ca", "signer", "Delivery Signer", KeyType::Ec, "");
    let hub_toml = std::fs::read_to_string(fleet.hub_config())?;
    std::fs::write(
        fleet.hub_config(),
        hub_toml.replace(
            "# keyring = \"bundle-ca.pem\"",
            &format!("keyring = {:?}", pki.cert("ca").display().to_string()),
        ),
    )?;
    Ok((fleet, pki))
}

/// A plain bundle of `image` (version 2.0) signed by the test signer, at `out`.
fn plain_bundle(fleet: &Fleet, pki: &Pki, image: &[u8], out: &Path) -> Result<()> {
    let content = fleet.dir.join("content");
    std::fs::create_dir_all(&content)?;
    std::fs::write(content.join("rootfs.img"), image)?;
    let manifest = Manifest {
        compatible: "e2e-delivery",
        version: "2.0",
        description: "delivery test",
        build: "1",
        format: "plain",
        images: &[("rootfs", "rootfs.img")],
    };
    rauc_bundle(&content, &manifest, pki, "signer", out);
    Ok(())
}

fn ctl(dev: &DeviceDir, args: &[&str]) -> Result<(Option<i32>, Value)> {
    let out = dev.ctl(args, None)?;
    let v: Value = serde_json::from_slice(&out.stdout)
        .with_context(|| format!("{args:?}: {}", String::from_utf8_lossy(&out.stderr)))?;
    Ok((out.status.code(), v))
}

#[test]
fn a_published_release_is_downloaded_resumably_installed_and_reported() -> Result<()> {
    let (fleet, pki) = fleet_with_bundle_pki()?;
    let img = image();
    let bundle = fleet.dir.join("v2.raucb");
    plain_bundle(&fleet, &pki, &img, &bundle)?;
    let bundle_len = std::fs::metadata(&bundle)?.len();
    let out = std::process::Command::new(bin_path("outpost-hub"))
        .args([
            "release",
            "add",
            "--channel",
            "stable",
            "--json",
            "--config",
        ])
        .arg(fleet.hub_config())
        .arg(&bundle)
        .output()?;
    ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let release: Value = serde_json::from_slice(&out.stdout)?;
    let id = release["id"].as_str().context("release id")?.to_owned();

    let mut hub = Hub::start(&fleet.hub_config())?;
    let (proxy, flaky) = flaky_proxy(&hub.url, 256 << 10)?;
    let dev = fleet.device(1);
    configure(
        &dev,
        &pki.cert("ca"),
        &proxy,
        "max_bytes_per_second = 600000",
    )?;
    let mut agent = Agent::start(&dev.config)?;

    // The hub offers 2.0 to a device that runs nothing known yet.
    let (code, check) = ctl(&dev, &["update", "check", "--json"])?;
    ensure!(code == Some(0) && check["result"] == "offered", "{check}");
    ensure!(check["offer"]["release"] == id.as_str(), "{check}");

    // kill -9 in the middle of the (rate-capped, flaky) download: the part stays.
    let socket = dev.socket();
    let now = std::thread::spawn({
        let config = dev.config.clone();
        move || {
            std::process::Command::new(bin_path("outpostctl"))
                .arg("--config")
                .arg(&config)
                .args(["update", "now", "--json"])
                .output()
        }
    });
    let part = dev.dir.join(format!("state/delivery/{id}.part"));
    wait_for(Duration::from_secs(20), "a partial download", || {
        Ok((std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0) > 400 << 10).then_some(()))
    })?;
    agent.kill9();
    let _ = now.join();
    let kept = std::fs::metadata(&part)?.len();
    ensure!(kept > 0 && kept < bundle_len, "part of {kept} bytes");
    let _ = socket;

    // Restarted: `update now` continues from the part, through the flaky proxy.
    let mut agent = Agent::start(&dev.config)?;
    let (code, done) = ctl(&dev, &["update", "now", "--json"])?;
    ensure!(code == Some(0) && done["result"] == "installed", "{done}");
    let fetched = done["fetched"].as_u64().context("fetched")?;
    ensure!(
        fetched + kept >= bundle_len && fetched < bundle_len,
        "fetched {fetched} after keeping {kept} of {bundle_len}"
    );
    let slot_b = std::fs::read(dev.dir.join("rootfs-b"))?;
    ensure!(
        slot_b[..IMAGE_LEN] == img[..],
        "slot B does not hold the image"
    );
    let env = std::process::Command::new("grub-editenv")
        .arg(dev.dir.join("grubenv"))
        .arg("list")
        .output()?;
    ensure!(String::from_utf8_lossy(&env.stdout).contains("ORDER=B A"));
    ensure!(!part.exists(), "the part is gone once installed");

    // Asked again: installed, waiting for the reboot; nothing is fetched.
    flaky.store(false, Ordering::Relaxed);
    let (code, again) = ctl(&dev, &["update", "now", "--json"])?;
    ensure!(code == Some(0) && again["result"] == "skipped", "{again}");
    ensure!(
        again["message"]
            .as_str()
            .unwrap_or_default()
            .contains("reboot"),
        "{again}"
    );

    // The outcome reached the hub in outpost.updates.
    let records = wait_for(
        Duration::from_secs(20),
        "the update record at the hub",
        || {
            let r = fleet.hub_records(None, Some("outpost.updates"))?;
            Ok((!r.is_empty()).then_some(r))
        },
    )?;
    let payload = &records[0]["payload"];
    ensure!(
        payload["result"] == "installed"
            && payload["to_version"] == "2.0"
            && payload["release"] == id.as_str(),
        "{records:?}"
    );
    ensure!(agent.terminate()? && hub.terminate()?);
    Ok(())
}

/// A casync bundle (`rauc convert`) published with its chunk store: the device fetches the
/// small bundle, then only the chunks its booted slot lacks, and installs the image.
#[test]
fn a_casync_release_is_installed_as_a_delta_from_the_booted_slot() -> Result<()> {
    let (fleet, pki) = fleet_with_bundle_pki()?;
    let v1 = image();
    let mut v2 = v1.clone();
    for b in &mut v2[1_000_000..1_131_072] {
        *b = b.wrapping_add(1);
    }
    let plain = fleet.dir.join("v2-plain.raucb");
    plain_bundle(&fleet, &pki, &v2, &plain)?;
    let casync_bundle = fleet.dir.join("v2.raucb");
    let out = std::process::Command::new("rauc")
        .arg(format!("--keyring={}", pki.cert("ca").display()))
        .arg("convert")
        .arg(format!("--cert={}", pki.cert("signer").display()))
        .arg(format!("--key={}", pki.key("signer").display()))
        .arg(&plain)
        .arg(&casync_bundle)
        .output()?;
    ensure!(
        out.status.success(),
        "rauc convert: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let store = fleet.dir.join("v2.castr");
    let store_bytes: u64 = walk(&store)
        .iter()
        .map(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .sum();

    let out = std::process::Command::new(bin_path("outpost-hub"))
        .args(["release", "add", "--channel", "stable", "--config"])
        .arg(fleet.hub_config())
        .arg("--store")
        .arg(&store)
        .arg(&casync_bundle)
        .output()?;
    ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut hub = Hub::start(&fleet.hub_config())?;
    let dev = fleet.device(1);
    configure(&dev, &pki.cert("ca"), &hub.url, "")?;
    // The booted slot A runs v1.
    let mut a = std::fs::read(dev.dir.join("rootfs-a"))?;
    a[..IMAGE_LEN].copy_from_slice(&v1);
    std::fs::write(dev.dir.join("rootfs-a"), &a)?;
    let mut agent = Agent::start(&dev.config)?;

    // The hub's store serves wrong bytes: the update fails cleanly, nothing is written to B,
    // and no bad chunk is kept.
    let served = fleet.dir.join("data/releases");
    let served_chunks: Vec<_> = walk(&served)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "cacnk"))
        .collect();
    ensure!(
        !served_chunks.is_empty(),
        "no chunks under {}",
        served.display()
    );
    let originals: Vec<Vec<u8>> = served_chunks
        .iter()
        .map(std::fs::read)
        .collect::<Result<_, _>>()?;
    for p in &served_chunks {
        std::fs::write(p, b"these are not the chunk's bytes")?;
    }
    let b_before = std::fs::read(dev.dir.join("rootfs-b"))?;
    let (code, failed) = ctl(&dev, &["update", "now", "--json"])?;
    ensure!(code == Some(1) && failed["result"] == "failed", "{failed}");
    ensure!(
        failed["message"]
            .as_str()
            .unwrap_or_default()
            .contains("bad chunk"),
        "{failed}"
    );
    ensure!(
        std::fs::read(dev.dir.join("rootfs-b"))? == b_before,
        "slot B was written"
    );
    let cached: Vec<_> = walk(&dev.dir.join("state/delivery"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "cacnk"))
        .collect();
    ensure!(cached.is_empty(), "bad chunks were kept: {cached:?}");
    for (p, bytes) in served_chunks.iter().zip(&originals) {
        std::fs::write(p, bytes)?;
    }

    let (code, done) = ctl(&dev, &["update", "now", "--json"])?;
    ensure!(code == Some(0) && done["result"] == "installed", "{done}");
    let fetched = done["fetched"].as_u64().context("fetched")?;
    let bundle_len = std::fs::metadata(&casync_bundle)?.len();
    ensure!(
        fetched < bundle_len + store_bytes / 4,
        "fetched {fetched} of a {bundle_len} byte bundle and a {store_bytes} byte store"
    );
    let slot_b = std::fs::read(dev.dir.join("rootfs-b"))?;
    ensure!(slot_b[..IMAGE_LEN] == v2[..], "slot B does not hold v2");
    eprintln!("delta: fetched {fetched} bytes; bundle {bundle_len}, store {store_bytes}, image {IMAGE_LEN}");
    ensure!(agent.terminate()? && hub.terminate()?);
    Ok(())
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
