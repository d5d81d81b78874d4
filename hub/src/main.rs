//! `outpost-hub` command line: parses arguments and calls into the library.

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use outpost_hub::config::Config;
use outpost_hub::init::{self, InitOptions};
use outpost_hub::server::Server;
use outpost_hub::store::{Filter, Store};
use outpost_hub::{records, stats};

/// Outpost hub: the cloud side that devices upload telemetry to.
#[derive(Parser, Debug)]
#[command(
    name = "outpost-hub",
    version,
    about = "Outpost hub: fleet CA, mutual-TLS ingest and idempotent storage of device telemetry",
    long_about = "\
outpost-hub receives telemetry batches from outpost-agent over HTTPS with mutual TLS and
stores every record exactly once per (device, id) in a SQLite database.

Devices are identified by the Common Name of their client certificate, which must chain to
the fleet CA named in hub.toml. Reference-agent devices that cannot present a certificate can
be admitted with per-device keys ([legacy_device_keys] in hub.toml).

Start with `outpost-hub init`, which creates a fleet CA, the hub's certificate, hub.toml and a
ready-to-use agent configuration per device.",
    after_long_help = "\
EXAMPLES:
    # Create a hub and three devices in ./outpost, then run the hub
    outpost-hub init --dir ./outpost --devices 3
    outpost-hub serve --config ./outpost/hub.toml

    # Look at what arrived (works while the hub is running)
    outpost-hub stats --config ./outpost/hub.toml
    outpost-hub records --config ./outpost/hub.toml --device device-001 --json

LOGGING:
    Logs go to stderr; set RUST_LOG (e.g. RUST_LOG=debug) to change the level.

See docs/hub.md for the hub.toml reference and the HTTP API."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    Init(InitArgs),
    Serve(ServeArgs),
    Records(RecordsArgs),
    Stats(StatsArgs),
}

/// Create a fleet CA, a hub certificate, hub.toml and per-device agent configs.
#[derive(Args, Debug)]
#[command(
    long_about = "\
Create everything needed to run a hub and connect devices to it, in one folder:

    DIR/ca.pem, DIR/ca.key            fleet CA (ECDSA P-256); ca.key is mode 0600
    DIR/server.pem, DIR/server.key    hub TLS certificate for localhost, 127.0.0.1 and --san names
    DIR/hub.toml                      hub configuration (listen address, TLS files, data_dir)
    DIR/devices/device-NNN/           per device: device.pem, device.key (0600), hub-ca.pem
                                      and agent.toml, a ready outpost-agent configuration

Without --listen, a currently free loopback port is chosen. Existing files are never
overwritten unless --force is given; --force replaces the whole setup including the fleet CA,
so certificates issued by the old CA stop working.",
    after_long_help = "\
EXAMPLES:
    outpost-hub init --dir ./outpost
    outpost-hub init --dir /etc/outpost-hub --devices 10 --listen 0.0.0.0:8443 --san hub.example.com
    outpost-agent --config ./outpost/devices/device-001/agent.toml"
)]
struct InitArgs {
    /// Folder to create the setup in (created if missing).
    #[arg(long, value_name = "DIR")]
    dir: PathBuf,
    /// Number of device identities to create (device-001, device-002, ...).
    #[arg(long, value_name = "N", default_value_t = 1)]
    devices: u32,
    /// Address the hub will listen on [default: a free port on 127.0.0.1].
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Extra DNS name or IP address for the hub's certificate (repeatable).
    #[arg(long = "san", value_name = "NAME")]
    sans: Vec<String>,
    /// Overwrite an existing setup in DIR (replaces the fleet CA).
    #[arg(long)]
    force: bool,
}

/// Run the HTTPS ingest server.
#[derive(Args, Debug)]
#[command(
    long_about = "\
Run the hub: listen for HTTPS with mutual TLS and store uploaded records.

Once the listener is bound, exactly one line `outpost-hub listening on https://ADDR` is
printed to stdout; logs go to stderr. SIGTERM or SIGINT stops accepting connections, lets
requests in flight finish and exits 0.

Endpoints:
    POST /v1/ingest        native batch upload (client certificate required; zstd or plain JSON)
    POST /ingest           reference-agent upload (X-Device-Key; also /v1/ingest/ingest, or
                           /v1/ingest with an X-Device-Key header)
    GET  /healthz          liveness",
    after_long_help = "\
EXAMPLES:
    outpost-hub serve --config ./outpost/hub.toml
    outpost-hub serve --config /etc/outpost-hub/hub.toml --listen 0.0.0.0:9443"
)]
struct ServeArgs {
    /// Path to hub.toml.
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// Listen address, overriding `listen` in the config (port 0 picks a free port).
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
}

/// List stored records.
#[derive(Args, Debug)]
#[command(
    long_about = "\
List the records stored by the hub, ordered by device, stream, creation time and arrival.
Reads the database directly, so it works while the hub is running.

--json prints an array of objects with id, device, stream, created_at (RFC 3339, ms),
created_at_ms, received_at, sha256 and payload (the stored JSON value itself).",
    after_long_help = "\
EXAMPLES:
    outpost-hub records --config ./outpost/hub.toml
    outpost-hub records --config ./outpost/hub.toml --device device-001 --stream temp --json"
)]
struct RecordsArgs {
    /// Path to hub.toml.
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// Only records of this device.
    #[arg(long, value_name = "ID")]
    device: Option<String>,
    /// Only records of this stream.
    #[arg(long, value_name = "S")]
    stream: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// Summarise stored records per device and stream, re-verifying checksums.
#[derive(Args, Debug)]
#[command(
    long_about = "\
Per device and stream: the number of records, the first and last created_at, and a fresh
SHA-256 check of every stored payload against its recorded checksum (checksums_ok,
checksums_bad). Works while the hub is running.",
    after_long_help = "\
EXAMPLES:
    outpost-hub stats --config ./outpost/hub.toml
    outpost-hub stats --config ./outpost/hub.toml --json"
)]
struct StatsArgs {
    /// Path to hub.toml.
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_level = if matches!(cli.command, Command::Serve(_)) {
        "info"
    } else {
        "warn"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a terminal, never into journald or log files.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let result = match cli.command {
        Command::Init(args) => run_init(args),
        Command::Serve(args) => run_serve(args),
        Command::Records(args) => run_records(args),
        Command::Stats(args) => run_stats(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("outpost-hub: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run_init(args: InitArgs) -> anyhow::Result<()> {
    let summary = init::run(&InitOptions {
        dir: args.dir,
        devices: args.devices,
        listen: args.listen,
        extra_sans: args.sans,
        force: args.force,
    })?;
    let mut out = String::new();
    out.push_str(&format!(
        "Created an Outpost hub setup in {}\n",
        summary.dir.display()
    ));
    out.push_str(&format!(
        "  hub config:   {}\n",
        summary.hub_config.display()
    ));
    out.push_str(&format!(
        "  listen:       {} (agents dial {})\n",
        summary.listen, summary.hub_url
    ));
    out.push_str(&format!(
        "  fleet CA:     {} (key: ca.key, keep it private)\n",
        summary.ca_cert.display()
    ));
    out.push_str(&format!(
        "  server cert:  {} for {}\n",
        summary.server_cert.display(),
        summary.sans.join(", ")
    ));
    for (name, folder) in &summary.devices {
        out.push_str(&format!(
            "  {name}:   {}\n",
            folder.join("agent.toml").display()
        ));
    }
    out.push_str(&format!(
        "Next: outpost-hub serve --config {}\n",
        summary.hub_config.display()
    ));
    print!("{out}");
    Ok(())
}

fn run_serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = Config::load(&args.config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let server = Server::bind(&config, args.listen).await?;
        let addr = server
            .local_addr()
            .context("cannot read the bound address")?;
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "outpost-hub listening on https://{addr}")?;
        stdout.flush()?;
        drop(stdout);
        let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("cannot install the SIGTERM handler")?;
        server
            .run(async move {
                tokio::select! {
                    _ = sigterm.recv() => tracing::info!("SIGTERM received"),
                    _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
                }
            })
            .await;
        Ok(())
    })
}

fn open_store(config_path: &std::path::Path) -> anyhow::Result<Store> {
    let config = Config::load(config_path)?;
    Ok(Store::open_existing(&config.db_path())?)
}

fn run_records(args: RecordsArgs) -> anyhow::Result<()> {
    let store = open_store(&args.config)?;
    let views = records::load(
        &store,
        &Filter {
            device: args.device,
            stream: args.stream,
        },
    )?;
    let text = if args.json {
        records::render_json(&views)? + "\n"
    } else {
        records::render_table(&views)
    };
    write_stdout(&text)
}

fn run_stats(args: StatsArgs) -> anyhow::Result<()> {
    let store = open_store(&args.config)?;
    let stats = stats::compute(&store, &Filter::default())?;
    let text = if args.json {
        serde_json::to_string_pretty(&stats)? + "\n"
    } else {
        stats::render_table(&stats)
    };
    write_stdout(&text)
}

/// Writes without panicking when stdout is a closed pipe (`outpost-hub records | head`).
fn write_stdout(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}
