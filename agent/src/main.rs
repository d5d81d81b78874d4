//! `outpost-agent --config FILE [--check]`: the device daemon.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use outpost_agent::config::Config;
use outpost_agent::{daemon, logging, uploader};

/// Outpost device agent: durable telemetry outbox with a local HTTP API and mTLS upload.
///
/// Applications publish JSON records to the local API (unix socket, optionally loopback TCP).
/// Each record is committed to an SQLite outbox before the API answers 202, then uploaded in
/// batches to outpost-hub and deleted only when the hub acknowledged its id.
#[derive(Parser)]
#[command(
    version,
    after_help = "EXAMPLES:\n  outpost-agent --config /etc/outpost/agent.toml\n  outpost-agent --config /etc/outpost/agent.toml --check"
)]
struct Args {
    /// Agent configuration file (TOML; see docs/configuration.md). Relative paths inside it
    /// resolve against the folder that contains it.
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// Validate the configuration (and load the hub TLS files, if configured), then exit:
    /// 0 when valid, 1 otherwise.
    #[arg(long)]
    check: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match real_main(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Library errors already name their cause; the alternate form would repeat it.
            eprintln!("outpost-agent: {e}");
            ExitCode::FAILURE
        }
    }
}

fn real_main(args: Args) -> anyhow::Result<()> {
    let config = Config::load(&args.config)?;
    if args.check {
        uploader::tls::check(&config)?;
        println!("{}: configuration OK", args.config.display());
        return Ok(());
    }
    logging::init(&config.log)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("outpost-agent")
        .build()
        .map_err(|e| anyhow::anyhow!("cannot start the async runtime: {e}"))?;
    runtime.block_on(daemon::run(config))?;
    Ok(())
}
