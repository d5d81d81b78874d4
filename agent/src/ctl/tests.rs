//! outpostctl against a real agent on a unix socket.

use clap::Parser;

use super::cli::Cli;
use super::{run, EXIT_OK, EXIT_REFUSED, EXIT_UNREACHABLE, EXIT_USAGE};
use crate::config::Config;

async fn ctl(args: &[&str], stdin: &str) -> super::Outcome {
    let cli =
        Cli::try_parse_from(std::iter::once("outpostctl").chain(args.iter().copied())).unwrap();
    run(cli, &mut stdin.as_bytes()).await
}

#[tokio::test]
async fn publish_status_and_outbox_through_the_socket() {
    let dir = tempfile::tempdir().unwrap();
    let cfg_path = dir.path().join("agent.toml");
    std::fs::write(&cfg_path, "state_dir = \"s\"\n[api]\nsocket = \"a.sock\"\n").unwrap();
    let running = crate::daemon::start(Config::load(&cfg_path).unwrap())
        .await
        .unwrap();
    let cfg = cfg_path.to_str().unwrap();

    let out = ctl(
        &[
            "--config",
            cfg,
            "publish",
            "temp",
            "--key",
            "r-1",
            "{\"c\": 21.5}",
        ],
        "",
    )
    .await;
    assert_eq!(
        (out.code, out.stdout.as_str(), out.stderr.as_str()),
        (EXIT_OK, "r-1\n", "")
    );
    let out = ctl(
        &["--config", cfg, "publish", "temp", "--json", "-"],
        "[1, 2]",
    )
    .await;
    assert_eq!(out.code, EXIT_OK, "{}", out.stderr);
    assert!(
        out.stdout.starts_with("{\"id\":\"") && out.stdout.contains("\"duplicate\":false"),
        "{}",
        out.stdout
    );
    let out = ctl(
        &[
            "--config",
            cfg,
            "publish",
            "temp",
            "--key",
            "r-1",
            "{\"c\": 22}",
        ],
        "",
    )
    .await;
    assert_eq!(out.code, EXIT_REFUSED);
    assert!(
        out.stderr.contains("different payload") && out.stderr.contains("409"),
        "{}",
        out.stderr
    );
    let out = ctl(&["--config", cfg, "publish", "Bad Stream", "1"], "").await;
    assert_eq!(out.code, EXIT_REFUSED);
    assert!(out.stderr.contains("bad stream name"), "{}", out.stderr);

    let sock = dir.path().join("a.sock");
    let out = ctl(&["--socket", sock.to_str().unwrap(), "status"], "").await;
    assert_eq!(out.code, EXIT_OK);
    assert!(
        out.stdout.contains("pending:      2 records"),
        "{}",
        out.stdout
    );
    let out = ctl(&["--socket", sock.to_str().unwrap(), "outbox"], "").await;
    assert!(
        out.stdout
            .lines()
            .any(|l| l.starts_with("temp ") && l.contains(" 2 ")),
        "{}",
        out.stdout
    );
    let out = ctl(
        &["--socket", sock.to_str().unwrap(), "outbox", "--json"],
        "",
    )
    .await;
    assert!(serde_json::from_str::<crate::views::OutboxView>(&out.stdout).is_ok());

    running.stop().await.unwrap();
    let out = ctl(&["--socket", sock.to_str().unwrap(), "status"], "").await;
    assert_eq!(out.code, EXIT_UNREACHABLE, "{}", out.stderr);
    let out = ctl(&["--config", "/nonexistent/agent.toml", "status"], "").await;
    assert_eq!(out.code, EXIT_USAGE);
}

#[test]
fn usage_errors_exit_2() {
    let err = Cli::try_parse_from(["outpostctl", "publish", "temp"]).unwrap_err();
    assert_eq!(err.exit_code(), 2);
    let err = Cli::try_parse_from(["outpostctl", "--socket", "a", "--config", "b", "status"])
        .unwrap_err();
    assert_eq!(err.exit_code(), 2);
}
