//! `outpost-hub workloads set|list` (the binary's half; the logic is in `outpost_hub::workloads`).

use std::path::PathBuf;

use clap::{Args, Subcommand};
use outpost_hub::config::Config;
use outpost_hub::workloads::{self, PackOptions, WorkloadSet};

use crate::{now_ms, open_or_create_store, open_store, write_stdout};

/// Publish workload manifest sets for devices and list what is published.
#[derive(Args, Debug)]
pub struct WorkloadsArgs {
    #[command(subcommand)]
    pub command: WorkloadsCommand,
}

#[derive(Subcommand, Debug)]
pub enum WorkloadsCommand {
    Set(SetArgs),
    List(ListArgs),
}

/// Make a manifest set the desired workloads of a channel.
#[derive(Args, Debug)]
#[command(
    long_about = "\
Publish the workloads devices of CHANNEL should run. SOURCE is either a signed artifact (a RAUC
bundle whose [image.manifests] is the set's tar archive; its [update] version is the revision)
or a directory, which is packed into such an artifact and signed with `rauc bundle` using
--cert and --key (the key is read by rauc only; the hub never stores it). A directory holds
manifests/*.yaml|yml|json and optionally images/*.tar[.gz|.zst|.lz4|.bz2] (airgap images), or
only manifest files at its top level.

The artifact is verified against [releases] keyring in hub.toml and the set inside is checked
with the devices' rules (file names K3s accepts, YAML that parses, every object with a kind and
a name) before it is published. Devices on CHANNEL with that compatible that run another
revision get it at their next GET /v1/workloads, apply it to K3s's manifests directory and
keep running it offline. Setting an earlier artifact again makes it current again.",
    after_long_help = "\
EXAMPLES:
    outpost-hub workloads set --config hub.toml --channel stable workloads-42.raucb
    outpost-hub workloads set --config hub.toml --channel stable \\
        --compatible outpost-x86_64 --revision 43 --cert signer.pem --key signer.key ./workloads/"
)]
pub struct SetArgs {
    /// Path to hub.toml.
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// The channel devices follow (`[workloads] channel`, by default their update channel).
    #[arg(long, value_name = "NAME")]
    channel: String,
    /// Directory only: the devices' compatible string.
    #[arg(long, value_name = "TEXT")]
    compatible: Option<String>,
    /// Directory only: the set's revision (letters, digits, '.', '_', '+', '-').
    #[arg(long, value_name = "REV")]
    revision: Option<String>,
    /// Directory only: the signing certificate (PEM).
    #[arg(long, value_name = "FILE")]
    cert: Option<PathBuf>,
    /// Directory only: the signing key (PEM or a PKCS#11 URI, as rauc takes it).
    #[arg(long, value_name = "FILE")]
    key: Option<PathBuf>,
    /// Directory only: the rauc program that signs.
    #[arg(long, value_name = "PROGRAM", default_value = "rauc")]
    rauc: PathBuf,
    /// Print the published set as JSON.
    #[arg(long)]
    json: bool,
    /// A signed artifact (.raucb) or a directory of manifests.
    #[arg(value_name = "SOURCE")]
    source: PathBuf,
}

/// List published workload sets, oldest first.
#[derive(Args, Debug)]
pub struct ListArgs {
    /// Path to hub.toml.
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// JSON array instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn run(args: WorkloadsArgs) -> anyhow::Result<()> {
    match args.command {
        WorkloadsCommand::Set(args) => run_set(args),
        WorkloadsCommand::List(args) => run_list(args),
    }
}

fn run_set(args: SetArgs) -> anyhow::Result<()> {
    let config = Config::load(&args.config)?;
    let mut store = open_or_create_store(&config)?;
    let scratch = tempfile::tempdir()?;
    let packed_from = args.source.is_dir().then(|| args.source.clone());
    let artifact = if args.source.is_dir() {
        let (Some(compatible), Some(revision), Some(cert), Some(key)) =
            (args.compatible, args.revision, args.cert, args.key)
        else {
            return Err(workloads::WorkloadError::PackArgsMissing.into());
        };
        let out = scratch.path().join("workloads.raucb");
        let opts = PackOptions {
            compatible,
            revision,
            cert,
            key,
            rauc: args.rauc,
        };
        workloads::pack(&args.source, &opts, &out)?;
        out
    } else {
        args.source
    };
    let set = workloads::set(
        &mut store,
        &config.releases_dir(),
        config.releases_keyring.as_deref(),
        &artifact,
        &args.channel,
        now_ms(),
    )
    .map_err(|e| match (e, packed_from) {
        // Name the directory the user gave, not the artifact packed from it in a scratch dir.
        (workloads::WorkloadError::BadSet { message, .. }, Some(dir)) => {
            workloads::WorkloadError::BadSet { path: dir, message }
        }
        (e, _) => e,
    })?;
    if args.json {
        write_stdout(&(serde_json::to_string_pretty(&set)? + "\n"))
    } else {
        write_stdout(&format!(
            "workload set {}: {} revision {} on channel {} ({} manifest(s), {} image(s), {} bytes)\n",
            set.id,
            set.compatible,
            set.revision,
            set.channel,
            set.manifests,
            set.images,
            set.artifact_size
        ))
    }
}

fn run_list(args: ListArgs) -> anyhow::Result<()> {
    let store = open_store(&args.config)?;
    let rows: Vec<WorkloadSet> = store.workload_sets()?;
    if args.json {
        return write_stdout(&(serde_json::to_string_pretty(&rows)? + "\n"));
    }
    let mut out = format!(
        "{:<17} {:<12} {:<24} {:<16} {:>9} {:>6} {:>12}\n",
        "SET", "CHANNEL", "COMPATIBLE", "REVISION", "MANIFESTS", "IMAGES", "BYTES"
    );
    for r in &rows {
        out.push_str(&format!(
            "{:<17} {:<12} {:<24} {:<16} {:>9} {:>6} {:>12}\n",
            r.id, r.channel, r.compatible, r.revision, r.manifests, r.images, r.artifact_size
        ));
    }
    out.push_str(&format!("{} workload set(s)\n", rows.len()));
    write_stdout(&out)
}
