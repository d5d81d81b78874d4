//! outpostctl's update commands: `info` against the real `rauc info`, and install, slots and
//! mark against a real agent.

use std::process::Command;

use clap::Parser;

use super::cli::Cli;
use super::{run_live, EXIT_OK, EXIT_REFUSED, EXIT_UNREACHABLE, EXIT_USAGE};
use crate::update::testkit::{fixture, grub_list};
use crate::update::tests::agent;

async fn ctl(args: &[&str]) -> (super::Outcome, String) {
    let cli =
        Cli::try_parse_from(std::iter::once("outpostctl").chain(args.iter().copied())).unwrap();
    let mut live = String::new();
    let out = run_live(cli, &mut std::io::empty(), false, &mut |t| live.push_str(t)).await;
    (out, live)
}

#[tokio::test]
async fn info_json_matches_rauc_info() {
    let f = fixture();
    let (bundle, ca) = (f.bundle.to_str().unwrap(), f.ca.to_str().unwrap());
    let (out, _) = ctl(&["info", "--keyring", ca, "--json", bundle]).await;
    assert_eq!(out.code, EXIT_OK, "{}", out.stderr);
    let ours: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let rauc = Command::new("rauc")
        .arg(format!("--keyring={ca}"))
        .args(["info", "--output-format=json", bundle])
        .output()
        .unwrap();
    assert!(rauc.status.success());
    let theirs: serde_json::Value = serde_json::from_slice(&rauc.stdout).unwrap();
    for key in ["compatible", "version", "description", "build"] {
        assert_eq!(ours[key], theirs[key], "{key}");
    }
    let their_images = theirs["images"].as_array().unwrap();
    let our_images = ours["images"].as_array().unwrap();
    assert_eq!(our_images.len(), their_images.len());
    for (o, t) in our_images.iter().zip(their_images) {
        let class = o["class"].as_str().unwrap();
        let t = &t[class];
        assert_eq!(o["filename"], t["filename"]);
        assert_eq!(o["sha256"], t["checksum"]);
        assert_eq!(o["size"], t["size"]);
        assert_eq!(o["variant"], t["variant"]);
    }
    // Format and signer are only in rauc's text and log output.
    let text = outpost_testkit::run_stdout(
        Command::new("rauc")
            .arg(format!("--keyring={ca}"))
            .args(["info", bundle]),
    );
    assert!(
        text.contains(&format!(
            "Bundle Format: \t{}",
            ours["format"].as_str().unwrap()
        )) || text.contains(&format!(
            "Bundle Format: {}",
            ours["format"].as_str().unwrap()
        )),
        "{text}"
    );
    let log = String::from_utf8_lossy(&rauc.stderr).into_owned();
    let subject = ours["signer"]["subject"].as_str().unwrap();
    assert!(
        log.contains(&format!("signature by '{subject}'")),
        "{subject} vs {log}"
    );
    assert_eq!(ours["verification"]["signature_valid"], true);
    assert_eq!(ours["verification"]["payload_check"], "payload-digest");

    let (out, _) = ctl(&["info", "--keyring", ca, bundle]).await;
    assert_eq!(out.code, EXIT_OK, "{}", out.stderr);
    assert!(
        out.stdout.contains("Compatible:     'Outpost Agent Test'"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("Signer:         O = Outpost Test, CN = Agent Test Signer"),
        "{}",
        out.stdout
    );

    // Wrong keyring: refused (1); missing keyring: usage (2).
    let (out, _) = ctl(&["info", "--keyring", f.other_ca.to_str().unwrap(), bundle]).await;
    assert_eq!(out.code, EXIT_REFUSED, "{}", out.stdout);
    assert!(
        out.stderr.contains("signature verification failed"),
        "{}",
        out.stderr
    );
    let (out, _) = ctl(&["info", bundle]).await;
    assert_eq!(out.code, EXIT_USAGE);
    let (out, _) = ctl(&["info", "--keyring", "/nonexistent.pem", bundle]).await;
    assert_eq!(out.code, EXIT_USAGE);
    let (out, _) = ctl(&["--config", "a", "info", "--keyring", ca, bundle]).await;
    assert_eq!(out.code, EXIT_USAGE, "{}", out.stderr);
}

#[tokio::test]
async fn install_slots_and_mark_through_outpostctl() {
    let f = fixture();
    let a = agent(Some(&f.ca)).await;
    let cfg = a.config.to_str().unwrap();
    let bundle = f.bundle.to_str().unwrap();

    // info with --config takes keyring and purpose from [update]; needs no agent.
    let (out, _) = ctl(&["--config", cfg, "info", "--json", bundle]).await;
    assert_eq!(out.code, EXIT_OK, "{}", out.stderr);

    let (out, live) = ctl(&["--config", cfg, "install", bundle]).await;
    assert_eq!(out.code, EXIT_OK, "{}", out.stderr);
    assert!(
        out.stdout
            .starts_with("Installing done: 'Outpost Agent Test' 2026.11.0"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("rootfs.1 boots next"), "{}", out.stdout);
    // Not a terminal: one line per step, percent and step, ending at 100%.
    assert!(
        live.lines()
            .all(|l| l.starts_with('[') && l.contains("%] ")),
        "{live}"
    );
    assert!(live.ends_with("[100%] Installing done\n"), "{live}");
    assert!(grub_list(&a.dev()).contains("ORDER=B A"));

    let (out, _) = ctl(&["--config", cfg, "slots"]).await;
    assert_eq!(out.code, EXIT_OK, "{}", out.stderr);
    assert!(
        out.stdout.contains("Booted from: rootfs.0 (A)"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("Activated:   rootfs.1 (B)"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("o [rootfs.1]"), "{}", out.stdout);
    let (out, _) = ctl(&["--config", cfg, "slots", "--json"]).await;
    let v: crate::views::SlotsView = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v.slots.len(), 2);

    let (out, _) = ctl(&["--config", cfg, "mark", "bad", "other"]).await;
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (EXIT_OK, "marked slot rootfs.1 as bad\n")
    );
    let (out, _) = ctl(&["--config", cfg, "mark", "good"]).await;
    assert_eq!(out.stdout, "marked slot rootfs.0 as good\n");
    let (out, _) = ctl(&["--config", cfg, "mark", "active", "rootfs.7"]).await;
    assert_eq!(out.code, EXIT_REFUSED);
    assert!(Cli::try_parse_from(["outpostctl", "mark", "great"]).is_err());

    // A failing install exits 1 with the agent's reason; --json still prints the result.
    let (out, _) = ctl(&["--config", cfg, "install", "--json", "/nonexistent.raucb"]).await;
    assert_eq!(out.code, EXIT_REFUSED, "{}", out.stdout);
    let (out, _) = ctl(&["--config", cfg, "install", "--json", cfg]).await;
    assert_eq!(out.code, EXIT_REFUSED);
    let v: crate::views::InstallView = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v.state, crate::views::InstallState::Failed);

    a.running.stop().await.unwrap();
    let (out, _) = ctl(&["--config", cfg, "slots"]).await;
    assert_eq!(out.code, EXIT_UNREACHABLE);
}
