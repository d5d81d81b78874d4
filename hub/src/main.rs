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
use outpost_hub::{devices, records, stats};
mod workloads_cli;

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
    Token(TokenArgs),
    Devices(DevicesArgs),
    Device(DeviceArgs),
    Release(ReleaseArgs),
    Workloads(workloads_cli::WorkloadsArgs),
}

/// Publish bundles for devices and list what is published.
#[derive(Args, Debug)]
struct ReleaseArgs {
    #[command(subcommand)]
    command: ReleaseCommand,
}

#[derive(Subcommand, Debug)]
enum ReleaseCommand {
    Add(ReleaseAddArgs),
    List(ReleaseListArgs),
}

/// Verify a RAUC bundle and make it the current release of a channel.
#[derive(Args, Debug)]
#[command(
    long_about = "\
Verify BUNDLE against [releases] keyring in hub.toml (signature, chain, manifest: the checks a
device makes), copy it (and with --store, its casync chunk store) under data_dir/releases/<id>/,
and make it the current release of CHANNEL for the bundle's compatible. Devices of that
compatible on that channel that run another version are offered it at their next
GET /v1/updates. Adding an older bundle again makes it current again (a rollback).",
    after_long_help = "\
EXAMPLES:
    outpost-hub release add --config ./outpost/hub.toml --channel stable update-2026.12.raucb
    outpost-hub release add --config ./outpost/hub.toml --channel beta \\
        --store update-2026.12.castr update-2026.12.raucb"
)]
struct ReleaseAddArgs {
    /// Path to hub.toml.
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// The channel devices follow (`[updates] channel` on the device).
    #[arg(long, value_name = "NAME")]
    channel: String,
    /// The casync chunk store of a casync bundle (`rauc convert` writes it beside the bundle).
    #[arg(long, value_name = "DIR")]
    store: Option<PathBuf>,
    /// Print the release as JSON.
    #[arg(long)]
    json: bool,
    /// The RAUC bundle (.raucb).
    #[arg(value_name = "BUNDLE")]
    bundle: PathBuf,
}

/// List published releases, oldest first.
#[derive(Args, Debug)]
struct ReleaseListArgs {
    /// Path to hub.toml.
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// JSON array instead of a table.
    #[arg(long)]
    json: bool,
}

/// Manage enrollment tokens.
#[derive(Args, Debug)]
struct TokenArgs {
    #[command(subcommand)]
    command: TokenCommand,
}

#[derive(Subcommand, Debug)]
enum TokenCommand {
    Create(TokenCreateArgs),
}

/// Create a bootstrap token that lets devices enroll (POST /v1/enroll).
#[derive(Args, Debug)]
#[command(
    long_about = "\
Create a bootstrap token and print it on stdout, once: the hub stores only its SHA-256, so it
cannot be shown again. A device presents it with a CSR to get its certificate, either from
its configuration ([identity] token or token_file) or with `outpostctl enroll --token T`.

The token is single use unless --uses says otherwise, and expires after --ttl. The hub's
hub.toml needs an [enroll] section (outpost-hub init writes one). Works while the hub runs.",
    after_long_help = "\
EXAMPLES:
    outpost-hub token create --config ./outpost/hub.toml
    outpost-hub token create --config ./outpost/hub.toml --ttl 7d --uses 50 > batch-17.token"
)]
struct TokenCreateArgs {
    /// Path to hub.toml.
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// How long the token is valid (e.g. 30m, 24h, 7d).
    #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = parse_ttl)]
    ttl: std::time::Duration,
    /// How many devices may enroll with it.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    uses: u32,
}

fn parse_ttl(s: &str) -> Result<std::time::Duration, String> {
    let d =
        humantime::parse_duration(s).map_err(|e| format!("{s:?}: {e} (use e.g. 30m, 24h, 7d)"))?;
    if d.is_zero() || d > std::time::Duration::from_secs(366 * 86_400) {
        return Err(format!("{s:?}: must be more than 0 and at most a year"));
    }
    Ok(d)
}

/// List enrolled and revoked devices.
#[derive(Args, Debug)]
#[command(
    long_about = "\
List the devices the hub knows from enrollment: id, key protection (tpm or software),
certificate expiry, when it enrolled, when it last uploaded, and whether it is revoked.
Devices made by `outpost-hub init` appear only once revoked. Works while the hub runs.

--json prints an array of objects with id, key_protection, cert_not_after, enrolled_at,
last_seen, revoked_at (RFC 3339 or null) and status (enrolled or revoked).",
    after_long_help = "\
EXAMPLES:
    outpost-hub devices --config ./outpost/hub.toml
    outpost-hub devices --config ./outpost/hub.toml --json | jq -r '.[].id'"
)]
struct DevicesArgs {
    /// Path to hub.toml.
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// Act on one device.
#[derive(Args, Debug)]
struct DeviceArgs {
    #[command(subcommand)]
    command: DeviceCommand,
}

#[derive(Subcommand, Debug)]
enum DeviceCommand {
    Revoke(RevokeArgs),
    Allow(AllowArgs),
}

/// Revoke a device: its requests are refused (403) and it cannot enroll again.
#[derive(Args, Debug)]
#[command(
    long_about = "\
Revoke a device by id. From its next request on, the running hub answers it 403, also on
connections opened before; enrolling again with the same key is refused. Works for devices
made by `outpost-hub init` too (their id is the certificate's CN). A TPM device's id is its
EK's, so neither a new key nor a reflash gets it back in; `outpost-hub device allow` does.",
    after_long_help = "\
EXAMPLES:
    outpost-hub device revoke --config ./outpost/hub.toml 3f6c...e1"
)]
struct RevokeArgs {
    /// Path to hub.toml.
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// The device id (as `outpost-hub devices` shows it).
    #[arg(value_name = "ID")]
    id: String,
}

/// Allow a revoked device to enroll again (its old certificates stay refused).
#[derive(Args, Debug)]
#[command(
    long_about = "\
Lift the revocation of a device: it may enroll again with a token (for a TPM device: the same
TPM, so the same id). Certificates issued to it before the revocation stay refused, so a
certificate that was stolen before the revocation does not come back with it; certificates
issued from now on (by enrollment or renewal) have a notBefore after the revocation.",
    after_long_help = "\
EXAMPLES:
    outpost-hub device allow --config ./outpost/hub.toml 3f6c...e1
    outpost-hub token create --config ./outpost/hub.toml     # then enroll the device again"
)]
struct AllowArgs {
    /// Path to hub.toml.
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// The device id (as `outpost-hub devices` shows it).
    #[arg(value_name = "ID")]
    id: String,
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
        Command::Token(TokenArgs {
            command: TokenCommand::Create(args),
        }) => run_token_create(args),
        Command::Devices(args) => run_devices(args),
        Command::Device(DeviceArgs {
            command: DeviceCommand::Revoke(args),
        }) => run_revoke(args),
        Command::Device(DeviceArgs {
            command: DeviceCommand::Allow(args),
        }) => run_allow(args),
        Command::Release(ReleaseArgs {
            command: ReleaseCommand::Add(args),
        }) => run_release_add(args),
        Command::Release(ReleaseArgs {
            command: ReleaseCommand::List(args),
        }) => run_release_list(args),
        Command::Workloads(args) => workloads_cli::run(args),
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

/// Opens (creating if needed) the database of a hub that may not have run yet.
fn open_or_create_store(config: &Config) -> anyhow::Result<Store> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create {}", config.data_dir.display()))?;
    Ok(Store::open(&config.db_path())?)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn run_token_create(args: TokenCreateArgs) -> anyhow::Result<()> {
    let config = Config::load(&args.config)?;
    if config.enroll.is_none() {
        anyhow::bail!(
            "{} has no [enroll] section: the hub would not accept this token (see docs/hub.md)",
            args.config.display()
        );
    }
    let mut store = open_or_create_store(&config)?;
    let token = devices::new_token().context("cannot get random bytes for the token")?;
    let now = now_ms();
    let expires = now.saturating_add(i64::try_from(args.ttl.as_millis()).unwrap_or(i64::MAX));
    store.add_token(&devices::token_hash(&token), now, expires, args.uses)?;
    eprintln!(
        "outpost-hub: token valid until {} for {} enrollment(s); it is shown only now",
        outpost_proto::time::rfc3339_millis(expires),
        args.uses
    );
    write_stdout(&format!("{token}\n"))
}

fn run_devices(args: DevicesArgs) -> anyhow::Result<()> {
    let store = open_store(&args.config)?;
    let rows = store.devices()?;
    let text = if args.json {
        devices::render_json(&rows)? + "\n"
    } else {
        devices::render_table(&rows)
    };
    write_stdout(&text)
}

fn run_revoke(args: RevokeArgs) -> anyhow::Result<()> {
    outpost_hub::identity::validate_device_id(&args.id)?;
    let config = Config::load(&args.config)?;
    let mut store = open_or_create_store(&config)?;
    if store.revoke(&args.id, now_ms())? {
        write_stdout(&format!("revoked {}\n", args.id))
    } else {
        write_stdout(&format!("{} was already revoked\n", args.id))
    }
}

fn run_release_add(args: ReleaseAddArgs) -> anyhow::Result<()> {
    let config = Config::load(&args.config)?;
    let mut store = open_or_create_store(&config)?;
    let release = outpost_hub::releases::add(
        &mut store,
        &config.releases_dir(),
        config.releases_keyring.as_deref(),
        &args.bundle,
        args.store.as_deref(),
        &args.channel,
        now_ms(),
    )?;
    if args.json {
        write_stdout(&(serde_json::to_string_pretty(&release)? + "\n"))
    } else {
        write_stdout(&format!(
            "release {}: {} {} on channel {}{} ({} bytes)\n",
            release.id,
            release.compatible,
            release.version,
            release.channel,
            if release.has_store {
                ", with chunk store"
            } else {
                ""
            },
            release.bundle_size
        ))
    }
}

fn run_release_list(args: ReleaseListArgs) -> anyhow::Result<()> {
    let store = open_store(&args.config)?;
    let rows = store.releases()?;
    if args.json {
        return write_stdout(&(serde_json::to_string_pretty(&rows)? + "\n"));
    }
    let mut out = format!(
        "{:<17} {:<12} {:<24} {:<16} {:>12} {}\n",
        "RELEASE", "CHANNEL", "COMPATIBLE", "VERSION", "BYTES", "STORE"
    );
    for r in &rows {
        out.push_str(&format!(
            "{:<17} {:<12} {:<24} {:<16} {:>12} {}\n",
            r.id,
            r.channel,
            r.compatible,
            r.version,
            r.bundle_size,
            if r.has_store { "yes" } else { "-" }
        ));
    }
    out.push_str(&format!("{} release(s)\n", rows.len()));
    write_stdout(&out)
}

fn run_allow(args: AllowArgs) -> anyhow::Result<()> {
    outpost_hub::identity::validate_device_id(&args.id)?;
    let config = Config::load(&args.config)?;
    let mut store = open_or_create_store(&config)?;
    if store.allow(&args.id, now_ms())? {
        write_stdout(&format!(
            "allowed {}: it may enroll again with a token; its earlier certificates stay refused\n",
            args.id
        ))
    } else {
        anyhow::bail!("{} is not revoked", args.id)
    }
}

/// Writes without panicking when stdout is a closed pipe (`outpost-hub records | head`).
fn write_stdout(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}
