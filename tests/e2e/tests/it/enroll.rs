//! Device identity: the real agent with its key in a real TPM (swtpm manufactured with an EK
//! certificate by a local "TPM vendor" CA the hub trusts) proves the key is in that TPM and
//! enrolls by itself with a token from the real `outpost-hub token create`, uploads over mTLS
//! signed by the TPM, keeps its identity across a restart and a reflash (the id is the EK's);
//! a TPM from an untrusted vendor and revoked TPM devices are refused; the file backend is
//! marked software; expired and reused tokens and revoked devices are refused; short-lived
//! certificates are renewed over mTLS before they expire, also across a hub outage, and the
//! time floor is persisted; an agent whose clock is years behind still uploads and says so.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use outpost_e2e::{bin_path, wait_for, Agent, DeviceDir, Fleet, Hub};
use outpost_testkit::ek_ca::EkCa;
use outpost_testkit::Swtpm;
use serde_json::Value;

/// Makes the hub trust EK certificates from `ca` (edits `ek_ca = []` in init's hub.toml).
fn trust_ek_ca(fleet: &Fleet, ca: &EkCa) -> Result<()> {
    let text = std::fs::read_to_string(fleet.hub_config())?;
    ensure!(
        text.contains("\nek_ca = []\n"),
        "hub.toml has no empty ek_ca"
    );
    let list = format!(
        "\nek_ca = [{:?}, {:?}]\n",
        ca.root_cert().display().to_string(),
        ca.issuer_cert().display().to_string()
    );
    std::fs::write(fleet.hub_config(), text.replace("\nek_ca = []\n", &list))?;
    Ok(())
}

/// A TPM made by `ca`'s factory, started.
fn manufactured_tpm(ca: &EkCa, dir: &Path) -> Swtpm {
    ca.manufacture(dir);
    Swtpm::start(dir)
}

/// The device id a verifier computes from the TPM's EK certificate with tpm2-tools and
/// openssl: hex SHA-256 of the EK's SubjectPublicKeyInfo.
fn ek_id_by_openssl(tpm: &Swtpm, work: &Path) -> Result<String> {
    std::fs::create_dir_all(work)?;
    tpm.tool(work, &["tpm2_nvread", "0x01c00002", "-o", "ek.der"]);
    let out = Command::new("sh")
        .current_dir(work)
        .args([
            "-c",
            "openssl x509 -inform DER -in ek.der -pubkey -noout | openssl pkey -pubin \
             -outform DER | sha256sum | cut -d' ' -f1",
        ])
        .output()?;
    ensure!(out.status.success());
    Ok(String::from_utf8(out.stdout)?.trim().to_owned())
}

fn hub_cli(fleet: &Fleet, args: &[&str]) -> Result<Output> {
    let mut cmd = Command::new(bin_path("outpost-hub"));
    cmd.args(args).arg("--config").arg(fleet.hub_config());
    Ok(cmd.output()?)
}

fn token(fleet: &Fleet, extra: &[&str]) -> Result<String> {
    let mut args = vec!["token", "create"];
    args.extend_from_slice(extra);
    let out = hub_cli(fleet, &args)?;
    ensure!(
        out.status.success(),
        "token create: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?.trim().to_owned())
}

/// Turns `init`'s agent.toml (pre-made cert/key) into one that enrolls: no `[hub] cert/key`,
/// an `[identity]` table instead, fast retries.
fn use_identity(dev: &DeviceDir, identity: &str) -> Result<()> {
    let text = std::fs::read_to_string(&dev.config)?;
    let kept: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with("cert =") && !l.starts_with("key ="))
        .collect();
    std::fs::write(
        &dev.config,
        format!(
            "{}\n[uploader]\nbackoff_base_ms = 100\nbackoff_cap_ms = 500\n\n[identity]\n{identity}\n",
            kept.join("\n")
        ),
    )?;
    Ok(())
}

fn identity(dev: &DeviceDir) -> Result<Value> {
    dev.ctl_json(&["identity"])
}

fn wait_enrollment(dev: &DeviceDir, state: &str, timeout: Duration) -> Result<Value> {
    wait_for(timeout, &format!("enrollment {state}"), || {
        let v = identity(dev)?;
        Ok((v["enrollment"] == state).then_some(v))
    })
}

fn publish(dev: &DeviceDir, payload: &str) -> Result<()> {
    let out = dev.ctl(&["publish", "temp", payload], None)?;
    ensure!(
        out.status.success(),
        "publish: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

fn wait_records(fleet: &Fleet, device: &str, n: usize) -> Result<Vec<Value>> {
    wait_for(Duration::from_secs(15), "records at the hub", || {
        let records = fleet.hub_records(Some(device), None)?;
        Ok((records.len() == n).then_some(records))
    })
}

/// The certificate's public key as DER, per openssl.
fn cert_spki(cert: &Path) -> Result<Vec<u8>> {
    let pem = Command::new("openssl")
        .args(["x509", "-noout", "-pubkey", "-in"])
        .arg(cert)
        .output()?;
    ensure!(pem.status.success(), "openssl x509 failed");
    let mut der = Command::new("openssl")
        .args(["pkey", "-pubin", "-outform", "DER"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    std::io::Write::write_all(der.stdin.as_mut().context("stdin")?, &pem.stdout)?;
    let out = der.wait_with_output()?;
    ensure!(out.status.success(), "openssl pkey failed");
    Ok(out.stdout)
}

#[test]
fn tpm_device_enrolls_by_itself_uploads_over_mtls_and_keeps_its_identity() -> Result<()> {
    let fleet = Fleet::init(1)?;
    let dev = fleet.device(1);
    let vendor = EkCa::new(&fleet.dir.join("tpm-vendor"));
    trust_ek_ca(&fleet, &vendor)?;
    let tpm = manufactured_tpm(&vendor, &fleet.dir.join("swtpm"));
    let tok = token(&fleet, &[])?;
    use_identity(
        &dev,
        &format!(
            "backend = \"tpm\"\ntcti = \"{}\"\ntoken = \"{tok}\"",
            tpm.tcti()
        ),
    )?;

    // The hub is not up yet: enrollment retries with backoff while records queue.
    let mut agent = Agent::start(&dev.config)?;
    publish(&dev, r#"{"n":1}"#)?;
    let failing = wait_enrollment(&dev, "failed", Duration::from_secs(10))?;
    ensure!(
        failing["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("unreachable"),
        "{failing}"
    );
    let mut hub = Hub::start(&fleet.hub_config())?;
    publish(&dev, r#"{"n":2}"#)?;

    let enrolled = wait_enrollment(&dev, "enrolled", Duration::from_secs(15))?;
    let id = enrolled["device_id"]
        .as_str()
        .context("device_id")?
        .to_owned();
    ensure!(
        enrolled["backend"] == "tpm" && enrolled["key_protection"] == "tpm",
        "{enrolled}"
    );
    ensure!(
        enrolled["certificate"]["common_name"] == id.as_str(),
        "{enrolled}"
    );
    ensure!(
        enrolled["certificate"]["issuer"]
            .as_str()
            .unwrap_or_default()
            .contains("Outpost fleet CA"),
        "{enrolled}"
    );
    let cert = dev.dir.join("state/identity/device.crt");
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&cert)?.permissions());
    ensure!(mode & 0o777 == 0o600, "certificate mode {mode:o}");
    let spki = cert_spki(&cert)?;
    ensure!(
        enrolled["public_key_sha256"] == outpost_proto::sha256_hex(&spki).as_str(),
        "{enrolled}"
    );

    // Both records went over mTLS with the TPM key, under the enrolled id.
    wait_records(&fleet, &id, 2)?;
    let devices = hub_cli(&fleet, &["devices", "--json"])?;
    let devices: Value = serde_json::from_slice(&devices.stdout)?;
    ensure!(
        devices[0]["id"] == id.as_str() && devices[0]["key_protection"] == "tpm",
        "{devices}"
    );
    let text = dev.ctl(&["identity"], None)?;
    let text = String::from_utf8(text.stdout)?;
    ensure!(
        text.contains("enrollment:      enrolled") && text.contains(&id),
        "{text}"
    );

    // Restart: same key, same certificate, no new enrollment (the single-use token is spent,
    // so a re-enrollment would fail), uploads continue under the same id.
    ensure!(agent.terminate()?, "agent exit status");
    let cert_before = std::fs::read(&cert)?;
    let mut agent = Agent::start(&dev.config)?;
    let again = wait_enrollment(&dev, "enrolled", Duration::from_secs(10))?;
    ensure!(again["device_id"] == id.as_str(), "{again}");
    ensure!(std::fs::read(&cert)? == cert_before, "certificate replaced");
    publish(&dev, r#"{"n":3}"#)?;
    wait_records(&fleet, &id, 3)?;
    ensure!(agent.terminate()?, "agent exit status");

    // tpm2-tools, with the agent gone, reads the same public key out of the TPM.
    let from_tpm = tpm.read_public_of_key_blob(
        &dev.dir.join("state/identity/identity.tpmkey"),
        &fleet.dir.join("tpm2-tools"),
    );
    ensure!(
        from_tpm == spki,
        "tpm2_readpublic disagrees with the certificate"
    );
    // The id is the EK's, as a verifier computes it from the TPM's EK certificate.
    ensure!(
        ek_id_by_openssl(&tpm, &fleet.dir.join("ek"))? == id,
        "device id is not the EK's"
    );
    ensure!(hub.terminate()?, "hub exit status");
    Ok(())
}

#[test]
fn tpm_identity_survives_a_reflash_and_untrusted_or_revoked_tpms_are_refused_until_allowed(
) -> Result<()> {
    let fleet = Fleet::init(2)?;
    let vendor = EkCa::new(&fleet.dir.join("tpm-vendor"));
    trust_ek_ca(&fleet, &vendor)?;
    // The vendor's CA files exist once it made its first TPM.
    let tpm_one = manufactured_tpm(&vendor, &fleet.dir.join("swtpm-1"));
    let mut hub = Hub::start(&fleet.hub_config())?;

    // Device 1: a genuine TPM enrolls on demand.
    let one = fleet.device(1);
    use_identity(
        &one,
        &format!("backend = \"tpm\"\ntcti = \"{}\"", tpm_one.tcti()),
    )?;
    let mut agent = Agent::start(&one.config)?;
    wait_enrollment(&one, "not_enrolled", Duration::from_secs(10))?;
    enroll_with_new_token(&fleet, &one)?;
    let id = identity(&one)?["device_id"]
        .as_str()
        .context("id")?
        .to_owned();
    let key_before = identity(&one)?["public_key_sha256"].clone();
    ensure!(agent.terminate()?);

    // Reflash: the state partition is new (no key blob, no certificate). A new key, but the
    // same TPM: the same device id.
    std::fs::remove_dir_all(one.dir.join("state"))?;
    let mut agent = Agent::start(&one.config)?;
    wait_enrollment(&one, "not_enrolled", Duration::from_secs(10))?;
    enroll_with_new_token(&fleet, &one)?;
    let after = identity(&one)?;
    ensure!(after["device_id"] == id.as_str(), "{after}");
    ensure!(after["public_key_sha256"] != key_before, "{after}");
    publish(&one, r#"{"after":"reflash"}"#)?;
    wait_records(&fleet, &id, 1)?;

    // Revoked: it cannot come back with a fresh token, not even after another reflash.
    let out = hub_cli(&fleet, &["device", "revoke", &id])?;
    ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    ensure!(agent.terminate()?);
    std::fs::remove_dir_all(one.dir.join("state"))?;
    let mut agent = Agent::start(&one.config)?;
    wait_enrollment(&one, "not_enrolled", Duration::from_secs(10))?;
    ctl_fails_with(
        &one,
        &["enroll", "--token", &token(&fleet, &[])?],
        "revoked",
    )?;
    // Until an operator allows it again: then the same TPM is the same device.
    let out = hub_cli(&fleet, &["device", "allow", &id])?;
    ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    enroll_with_new_token(&fleet, &one)?;
    // Re-enrolled within the second of its revocation, the new certificate starts up to a
    // second ahead (it must start after the revocation); the agent uses it at once.
    let view = identity(&one)?;
    ensure!(
        view["device_id"] == id.as_str() && view["enrollment"] == "enrolled",
        "{view}"
    );
    publish(&one, r#"{"after":"allow"}"#)?;
    wait_records(&fleet, &id, 2)?;
    ensure!(agent.terminate()?);

    // Device 2: a TPM from a vendor the hub does not trust.
    let two = fleet.device(2);
    let other_vendor = EkCa::new(&fleet.dir.join("other-vendor"));
    let tpm_two = manufactured_tpm(&other_vendor, &fleet.dir.join("swtpm-2"));
    use_identity(
        &two,
        &format!("backend = \"tpm\"\ntcti = \"{}\"", tpm_two.tcti()),
    )?;
    let mut agent_two = Agent::start(&two.config)?;
    wait_enrollment(&two, "not_enrolled", Duration::from_secs(10))?;
    let tok = token(&fleet, &[])?;
    ctl_fails_with(
        &two,
        &["enroll", "--token", &tok],
        "not issued by a trusted TPM manufacturer",
    )?;
    // The refusal did not spend the single-use token.
    let devices: Value = serde_json::from_slice(&hub_cli(&fleet, &["devices", "--json"])?.stdout)?;
    ensure!(devices.as_array().map(Vec::len) == Some(1), "{devices}");
    ensure!(agent_two.terminate()? && hub.terminate()?);
    drop((tpm_one, tpm_two));
    Ok(())
}

fn ctl_fails_with(dev: &DeviceDir, args: &[&str], needle: &str) -> Result<()> {
    let out = dev.ctl(args, None)?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(
        out.status.code() == Some(1),
        "{args:?}: {:?} {stderr}",
        out.status
    );
    ensure!(stderr.contains(needle), "{args:?}: {stderr}");
    Ok(())
}

#[test]
fn file_key_is_marked_software_and_bad_tokens_and_revoked_devices_are_refused() -> Result<()> {
    let fleet = Fleet::init(2)?;
    let mut hub = Hub::start(&fleet.hub_config())?;
    let expired = token(&fleet, &["--ttl", "1s"])?;
    std::thread::sleep(Duration::from_millis(1100));

    // Device 1 enrolls with an expired token from its config: refused, retried, no crash.
    let one = fleet.device(1);
    use_identity(
        &one,
        &format!("backend = \"file\"\nkey_file = \"device-id.key\"\ntoken = \"{expired}\""),
    )?;
    let mut agent_one = Agent::start(&one.config)?;
    let failed = wait_enrollment(&one, "failed", Duration::from_secs(10))?;
    ensure!(
        failed["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("token expired"),
        "{failed}"
    );
    publish(&one, r#"{"queued":true}"#)?;

    // On demand with a good single-use token: works, and the hub marks it software.
    let single = token(&fleet, &[])?;
    let out = one.ctl(&["enroll", "--token", &single], None)?;
    ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8(out.stdout)?;
    ensure!(
        said.starts_with("enrolled as ") && said.contains("(software key)"),
        "{said}"
    );
    let id = identity(&one)?["device_id"]
        .as_str()
        .context("id")?
        .to_owned();
    wait_records(&fleet, &id, 1)?;
    let devices: Value = serde_json::from_slice(&hub_cli(&fleet, &["devices", "--json"])?.stdout)?;
    ensure!(devices[0]["key_protection"] == "software", "{devices}");

    // Device 2 (no token configured) reuses the spent single-use token: refused.
    let two = fleet.device(2);
    use_identity(&two, "backend = \"file\"\nkey_file = \"device-id.key\"")?;
    let mut agent_two = Agent::start(&two.config)?;
    let waiting = wait_enrollment(&two, "not_enrolled", Duration::from_secs(10))?;
    ensure!(waiting["token_configured"] == false, "{waiting}");
    ctl_fails_with(&two, &["enroll", "--token", &single], "no uses left")?;
    ctl_fails_with(&two, &["enroll", "--token", &expired], "expired")?;
    ctl_fails_with(&two, &["enroll", "--token", "opt1_made_up"], "unknown")?;

    // Revoked: the next upload is refused with 403, and it cannot enroll again.
    let out = hub_cli(&fleet, &["device", "revoke", &id])?;
    ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    publish(&one, r#"{"after":"revoke"}"#)?;
    wait_for(Duration::from_secs(10), "uploader refused with 403", || {
        let status = one.ctl_json(&["status"])?;
        let text = status.to_string();
        Ok((text.contains("403") && text.contains("revoked")).then_some(()))
    })?;
    ensure!(fleet.hub_records(Some(&id), None)?.len() == 1);
    let fresh = token(&fleet, &["--uses", "5"])?;
    ctl_fails_with(&one, &["enroll", "--token", &fresh], "revoked")?;
    // The refusal did not spend the token: device 2 can still use it.
    let out = two.ctl(&["enroll", "--token", &fresh], None)?;
    ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The loopback TCP listener (if any) never enrolls; here: GET on the enroll route is 405.
    let mut api = two.api();
    ensure!(api.get("/v1/enroll")?.status == 405);

    ensure!(agent_one.terminate()? && agent_two.terminate()? && hub.terminate()?);
    Ok(())
}

/// The hub issues 30-second certificates: the agent renews each at 2/3 of its lifetime over
/// mTLS (same key, same id) while uploads continue; a hub that is down when renewal is due
/// delays it (the still-valid certificate stays in use, records queue), and once the hub is
/// back the queued records arrive and the certificate is renewed before it expires. The
/// time floor is persisted in the identity folder.
#[test]
#[ignore = "slow end-to-end: waits for two renewals of 30 s certificates (~40 s)"]
fn short_lived_certificates_are_renewed_before_expiry_even_across_a_hub_outage() -> Result<()> {
    let fleet = Fleet::init(1)?;
    let hub_toml = std::fs::read_to_string(fleet.hub_config())?;
    let lines: Vec<&str> = hub_toml
        .lines()
        .map(|l| {
            if l.starts_with("cert_days") {
                "cert_lifetime = \"30s\""
            } else {
                l
            }
        })
        .collect();
    std::fs::write(fleet.hub_config(), lines.join("\n"))?;
    let mut hub = Hub::start(&fleet.hub_config())?;
    let dev = fleet.device(1);
    let (mut agent, id) = enrolled_file_key_device(&fleet, &dev)?;
    let enrolled = identity(&dev)?;
    let cert = dev.dir.join("state/identity/device.crt");
    let first = std::fs::read(&cert)?;
    let issued_at = Instant::now();
    publish(&dev, r#"{"n":1}"#)?;
    wait_records(&fleet, &id, 1)?;

    // Due at 2/3 of notBefore (3 s backdated) .. notAfter: about 19 s after issue.
    wait_for(Duration::from_secs(28), "first renewal", || {
        Ok((std::fs::read(&cert)? != first).then_some(()))
    })?;
    let renewed_in = issued_at.elapsed();
    ensure!(
        renewed_in > Duration::from_secs(12),
        "renewed too early: {renewed_in:?}"
    );
    let view = identity(&dev)?;
    ensure!(
        view["enrollment"] == "enrolled"
            && view["device_id"] == id.as_str()
            && view["last_error"].is_null(),
        "{view}"
    );
    ensure!(
        view["certificate"]["not_after"] != enrolled["certificate"]["not_after"],
        "{view}"
    );
    ensure!(
        cert_spki(&cert)? == cert_spki_of(&first)?,
        "renewal changed the key"
    );
    publish(&dev, r#"{"n":2}"#)?;
    wait_records(&fleet, &id, 2)?;
    let devices: Value = serde_json::from_slice(&hub_cli(&fleet, &["devices", "--json"])?.stdout)?;
    ensure!(
        devices[0]["cert_not_after"] == view["certificate"]["not_after"],
        "hub records the renewed expiry: {devices} vs {view}"
    );

    // The hub goes down before the next renewal is due.
    ensure!(hub.terminate()?, "hub exit status");
    let second = std::fs::read(&cert)?;
    publish(&dev, r#"{"n":3}"#)?;
    let failing = wait_for(Duration::from_secs(30), "renewal failing", || {
        let v = identity(&dev)?;
        let failing = v["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("renewal failed");
        Ok(failing.then_some(v))
    })?;
    ensure!(failing["enrollment"] == "enrolled", "{failing}");
    ensure!(
        std::fs::read(&cert)? == second,
        "certificate replaced while the hub was down"
    );

    // Back before the certificate expires: the queued record arrives, renewal happens.
    let mut hub = Hub::start(&fleet.hub_config())?;
    wait_records(&fleet, &id, 3)?;
    wait_for(Duration::from_secs(10), "renewal after the outage", || {
        Ok((std::fs::read(&cert)? != second).then_some(()))
    })?;
    let view = wait_for(Duration::from_secs(5), "error cleared", || {
        let v = identity(&dev)?;
        Ok(v["last_error"].is_null().then_some(v))
    })?;
    ensure!(view["device_id"] == id.as_str(), "{view}");
    publish(&dev, r#"{"n":4}"#)?;
    wait_records(&fleet, &id, 4)?;

    // The time floor: written with the renewed certificate's notBefore, a time near now.
    let floor: i64 = std::fs::read_to_string(dev.dir.join("state/identity/time_floor"))?
        .trim()
        .parse()?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as i64;
    ensure!(
        (now - 120_000..=now).contains(&floor),
        "time floor {floor} vs now {now}"
    );
    ensure!(agent.terminate()? && hub.terminate()?);
    Ok(())
}

/// The public key of a PEM certificate (DER), via a temporary file and openssl.
fn cert_spki_of(pem: &[u8]) -> Result<Vec<u8>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("c.pem");
    std::fs::write(&path, pem)?;
    cert_spki(&path)
}

/// `outpostctl enroll --token T` with a new single-use token; fails unless it succeeds.
fn enroll_with_new_token(fleet: &Fleet, dev: &DeviceDir) -> Result<()> {
    let out = dev.ctl(&["enroll", "--token", &token(fleet, &[])?], None)?;
    ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// Device `dev` with a file key and a fresh token, started and enrolled: (agent, device id).
fn enrolled_file_key_device(fleet: &Fleet, dev: &DeviceDir) -> Result<(Agent, String)> {
    let tok = token(fleet, &[])?;
    use_identity(
        dev,
        &format!("backend = \"file\"\nkey_file = \"device-id.key\"\ntoken = \"{tok}\""),
    )?;
    let agent = Agent::start(&dev.config)?;
    let enrolled = wait_enrollment(dev, "enrolled", Duration::from_secs(15))?;
    let id = enrolled["device_id"].as_str().context("id")?.to_owned();
    Ok((agent, id))
}

/// libfaketime's preload library (Debian's `faketime` package).
fn libfaketime() -> Result<String> {
    let out = Command::new("dpkg").args(["-L", "libfaketime"]).output()?;
    String::from_utf8(out.stdout)?
        .lines()
        .find(|l| l.ends_with("/libfaketime.so.1"))
        .map(str::to_owned)
        .context("libfaketime.so.1 not found (apt-get install faketime; scripts/setup does)")
}

/// The RTC battery died: after a restart the device's clock says 2021, years before its
/// certificate's notBefore and the hub's. The agent judges certificates at its persisted time
/// floor instead, so it still connects and uploads, and it logs that the clock is wrong.
#[test]
fn an_agent_whose_clock_is_years_behind_still_uploads_and_says_the_clock_is_wrong() -> Result<()> {
    let fleet = Fleet::init(1)?;
    let mut hub = Hub::start(&fleet.hub_config())?;
    let dev = fleet.device(1);
    let (mut agent, id) = enrolled_file_key_device(&fleet, &dev)?;
    ensure!(agent.terminate()?);

    let lib = libfaketime()?;
    let mut agent = Agent::start_with(
        &dev.config,
        &[
            ("LD_PRELOAD", lib.as_str()),
            ("FAKETIME", "@2021-01-01 00:00:00"),
            // Timers and timeouts keep real time; only the wall clock is wrong.
            ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
        ],
    )?;
    publish(&dev, r#"{"clock":"2021"}"#)?;
    wait_records(&fleet, &id, 1)?;
    let view = identity(&dev)?;
    ensure!(view["enrollment"] == "enrolled", "{view}");
    let log = std::fs::read_to_string(dev.config.with_file_name("agent.log"))?;
    ensure!(
        log.contains("the system clock is behind the time floor") && log.contains("2021-01-01"),
        "no clock warning in the agent log:\n{log}"
    );
    ensure!(agent.terminate()? && hub.terminate()?);
    Ok(())
}
