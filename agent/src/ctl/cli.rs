//! outpostctl's command line.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

pub const DEFAULT_SOCKET: &str = crate::config::DEFAULT_SOCKET;

const AFTER_HELP: &str = "\
EXIT STATUS:
  0  success
  1  the agent refused the request or the install failed (its message is printed on
     stderr); info: the bundle did not verify
  2  usage error (bad arguments, unreadable --config file, keyring or stdin)
  3  the agent is unreachable (socket missing, permission denied, connection failed)

EXAMPLES:
  outpostctl publish temperature '{\"celsius\": 21.5}'
  echo '{\"door\":\"open\"}' | outpostctl publish alarms --priority critical -
  outpostctl publish orders --key order-42 '{\"total\": 9.90}'
  outpostctl status
  outpostctl --config /etc/outpost/agent.toml outbox --json
  outpostctl info --keyring /etc/outpost/bundle-ca.pem update-2026.11.raucb
  outpostctl install /data/update-2026.11.raucb
  outpostctl slots
  outpostctl mark good booted
  outpostctl health
  outpostctl health --wait --timeout 10m
  outpostctl identity
  outpostctl enroll --token opt1_...";

/// Control and inspect the local outpost-agent.
///
/// outpostctl talks to the agent's local HTTP API over its unix socket: it publishes JSON
/// records into the agent's durable outbox, shows the agent's status and per-stream outbox
/// statistics, and drives A/B updates (install a RAUC bundle, show and mark slots, like
/// `rauc install` and `rauc status`). `info` alone works offline, without the agent. The
/// socket is /run/outpost/agent.sock unless --socket names another or --config names the
/// agent's configuration file, whose [api] socket is then used.
#[derive(Debug, Parser)]
#[command(name = "outpostctl", version, after_help = AFTER_HELP)]
pub struct Cli {
    /// Read the socket path (api.socket) from this agent configuration file; relative paths
    /// resolve against the file's folder, as the agent does.
    #[arg(long, global = true, value_name = "FILE", conflicts_with = "socket")]
    pub config: Option<PathBuf>,

    /// Path of the agent's unix socket [default: /run/outpost/agent.sock]
    #[arg(long, global = true, value_name = "PATH", env = "OUTPOST_SOCKET")]
    pub socket: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Publish one JSON record to a stream.
    ///
    /// The record is stored durably by the agent before this command succeeds; it then
    /// prints the record's id. Publishing again with the same --key and the same JSON is
    /// harmless: the agent reports a duplicate and stores nothing new.
    #[command(
        after_help = "EXAMPLES:\n  outpostctl publish temperature '{\"celsius\": 21.5}'\n  sensor-read | outpostctl publish readings --priority best_effort -\n  outpostctl publish orders --key order-42 --json '{\"total\": 9.90}'"
    )]
    Publish(PublishArgs),

    /// Show the agent's status: version, uptime, hub, uploader state and outbox totals.
    Status(OutputArgs),

    /// Show per-stream outbox statistics and the uploader's last upload and last error.
    Outbox(OutputArgs),

    /// Verify a RAUC bundle and show what it contains (offline: the agent is not asked).
    ///
    /// Checks the bundle's signature against a keyring and its payload (whole-payload digest
    /// for plain bundles, dm-verity hash tree for verity bundles), then prints compatible,
    /// version, build, format, each image with its size and sha256, the signer and the
    /// verification result. The keyring is --keyring PEM, or the [update] section of the
    /// agent configuration named by --config (keyring and check purpose). Exit status 1 if
    /// the bundle does not verify. Encrypted (crypt) bundles are not supported.
    #[command(
        after_help = "EXAMPLES:\n  outpostctl info --keyring /etc/outpost/bundle-ca.pem update.raucb\n  outpostctl --config /etc/outpost/agent.toml info --json update.raucb\n  outpostctl info --keyring ca.pem --check-purpose codesign update.raucb"
    )]
    Info(InfoArgs),

    /// Install a RAUC bundle into the inactive slots, through the agent.
    ///
    /// The agent verifies the bundle, marks the target slot bad, writes every image
    /// (size- and sha256-checked, fsynced), records it in central.raucs and makes the slot
    /// primary: the next boot starts the new system. Progress (percent and step) is shown
    /// while it runs: one updating line on a terminal, one line per step otherwise. Exits 0
    /// only when the install succeeded; 1 if it was refused or failed (the agent's message is
    /// printed). The bundle path is made absolute here and must be readable by the agent.
    #[command(
        after_help = "EXAMPLES:\n  outpostctl install /data/update-2026.11.raucb\n  outpostctl install --json update.raucb | jq .state"
    )]
    Install(InstallArgs),

    /// Show the A/B slots, like `rauc status`: booted and primary slot, each slot's device,
    /// type, bootname, state (booted, active, inactive), boot status (good, bad) and what
    /// was installed into it.
    #[command(
        after_help = "EXAMPLES:\n  outpostctl slots\n  outpostctl slots --json | jq -r .primary"
    )]
    Slots(OutputArgs),

    /// Mark a slot good, bad or active, like `rauc status mark-good|mark-bad|mark-active`.
    ///
    /// good: the bootloader may boot the slot (commit after a successful trial boot).
    /// bad: the bootloader must not boot it. active: boot it next (with fresh attempts).
    /// SLOT is booted (default), other (the other slot of the booted slot's class) or a slot
    /// name such as rootfs.1.
    #[command(
        after_help = "EXAMPLES:\n  outpostctl mark good            # commit the running system\n  outpostctl mark active other    # boot the other slot next\n  outpostctl mark bad rootfs.1"
    )]
    Mark(MarkArgs),

    /// Show the health gate: whether this boot is a trial, each check's last result and the
    /// deadline, or how the gate decided (committed, failed and rebooting, not a trial).
    ///
    /// After an update the new slot is on trial until every required check passes together
    /// before the deadline; then the agent commits it (marks it good). Otherwise it marks the
    /// slot bad and reboots into the old one, which records why. --wait blocks until the gate
    /// has decided this boot (retrying while the agent restarts) and sets the exit status:
    /// 0 committed or not a trial, 1 failed, errored or --timeout passed. outpost-health.service
    /// runs `outpostctl health --wait` so that boot-complete.target follows the gate.
    #[command(
        after_help = "EXAMPLES:\n  outpostctl health\n  outpostctl health --json | jq .phase\n  outpostctl health --wait --timeout 10m && echo committed"
    )]
    Health(HealthArgs),

    /// Updates from the hub ([delivery]): check for one, or fetch and install it now.
    ///
    /// The agent asks its hub for the current release of its channel (GET /v1/updates with
    /// its compatible and the booted slot's version). `check` only asks and prints the offer.
    /// `now` also downloads the bundle (continuing a partial download, ignoring the download
    /// windows), checks its size and sha256, and installs it like `outpostctl install`; it
    /// returns when that is done. `status` shows the poller's state. Exit status 0 when the
    /// device is up to date or the update was installed (or waits for its reboot); 1 when the
    /// check, the download or the install failed.
    #[command(
        after_help = "EXAMPLES:\n  outpostctl update check\n  outpostctl update now --json | jq .result\n  outpostctl update status"
    )]
    Update(UpdateArgs),

    /// Workloads on K3s ([workloads]): the revision each slot runs, its objects, and checks.
    ///
    /// A workload set is a signed artifact of Kubernetes manifests (and optionally airgap
    /// images) with a revision. The agent applies the revision bound to the booted slot to
    /// K3s's auto-deploy folder at start, without any network, and asks the hub for its
    /// channel's set every interval. `status` (the default) shows the desired and applied
    /// revisions, each Deployment/DaemonSet/StatefulSet and whether it is rolled out, files
    /// waiting for K3s to prune their objects, and the last error. `check` asks the hub now
    /// and applies what it wants (unless the slot is on trial). Exit status 1 when the check
    /// or the apply failed.
    #[command(
        after_help = "EXAMPLES:\n  outpostctl workloads\n  outpostctl workloads --json | jq .applied\n  outpostctl workloads check"
    )]
    Workloads(WorkloadsArgs),

    /// K3s as the agent sees it ([k3s]): unit state, API and node readiness, restarts,
    /// the earliest certificate expiry and rotations.
    ///
    /// The agent starts K3s when it is down, restarts it with backoff when it failed, and
    /// rotates its certificates (k3s certificate rotate, with K3s stopped) when one expires
    /// within [k3s] rotate_before, at a quiet moment (no install, no trial).
    #[command(after_help = "EXAMPLES:\n  outpostctl k3s\n  outpostctl k3s --json | jq .ready")]
    K3s(OutputArgs),

    /// Show the device identity: device id, key backend and protection, enrollment state,
    /// the client certificate (subject, issuer, validity) and the hub.
    #[command(
        after_help = "EXAMPLES:\n  outpostctl identity\n  outpostctl identity --json | jq -r .device_id"
    )]
    Identity(OutputArgs),

    /// Enroll with the hub now, with a token from `outpost-hub token create`.
    ///
    /// The agent makes a CSR signed by its device key ([identity] in its configuration),
    /// sends it with the token to the hub and stores the certificate it gets. Served on the
    /// unix socket only. Exit status 1 if the hub refuses (expired or used token, revoked
    /// device) or cannot be reached. A device with a token in its configuration enrolls by
    /// itself at start; this is for the others, and to re-enroll.
    #[command(
        after_help = "EXAMPLES:\n  outpostctl enroll --token \"$(cat /boot/outpost.token)\""
    )]
    Enroll(EnrollArgs),
}

#[derive(Debug, Args)]
pub struct EnrollArgs {
    /// The enrollment token.
    #[arg(long, value_name = "TOKEN")]
    pub token: String,

    /// Print the agent's JSON answer.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct HealthArgs {
    /// Print the agent's JSON document instead of the readable summary.
    #[arg(long)]
    pub json: bool,

    /// Wait until the gate has decided this boot; exit 0 when committed or not a trial.
    #[arg(long)]
    pub wait: bool,

    /// With --wait: give up after this long (e.g. 90s, 10m) with exit status 1.
    #[arg(long, value_name = "DURATION", requires = "wait", value_parser = parse_duration)]
    pub timeout: Option<std::time::Duration>,
}

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{s:?}: {e} (use e.g. 90s, 10m)"))
}

#[derive(Debug, Args)]
pub struct InfoArgs {
    /// PEM file with the CA certificate(s) trusted to sign bundles. Not with --config.
    #[arg(long, value_name = "PEM")]
    pub keyring: Option<PathBuf>,

    /// Certificate purpose the signer must fit: smimesign (RAUC's default), codesign or any.
    /// Defaults to the configuration's check purpose with --config, else smimesign.
    #[arg(long, value_name = "PURPOSE")]
    pub check_purpose: Option<String>,

    /// Print the verified summary as JSON.
    #[arg(long)]
    pub json: bool,

    /// The bundle file (.raucb).
    #[arg(value_name = "BUNDLE")]
    pub bundle: PathBuf,
}

#[derive(Debug, Args)]
pub struct InstallArgs {
    /// Print the final result as the agent's JSON document (no progress lines).
    #[arg(long)]
    pub json: bool,

    /// The bundle file (.raucb).
    #[arg(value_name = "BUNDLE")]
    pub bundle: PathBuf,
}

#[derive(Debug, Args)]
pub struct MarkArgs {
    /// good, bad or active.
    #[arg(value_name = "STATE", value_parser = ["good", "bad", "active"])]
    pub state: String,

    /// booted, other or a slot name (<class>.<index>).
    #[arg(value_name = "SLOT", default_value = "booted")]
    pub slot: String,

    /// Print the agent's JSON answer.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PublishArgs {
    /// Stream name: 1 to 64 characters from a-z, 0-9, '.', '_' and '-', starting with a
    /// letter or digit (e.g. "temperature", "door.events").
    #[arg(value_name = "STREAM")]
    pub stream: String,

    /// The record: one JSON value, stored byte for byte. Use "-" to read it from stdin.
    #[arg(value_name = "JSON", allow_hyphen_values = true)]
    pub record: String,

    /// Priority when the outbox is full: critical (never evicted), normal, best_effort
    /// (evicted first). Defaults to the stream's configured priority, else
    /// outbox.default_priority.
    #[arg(long, short, value_name = "P")]
    pub priority: Option<String>,

    /// Record id (sent as Idempotency-Key): 1 to 128 characters from A-Z a-z 0-9 . _ : @ + = -.
    /// Without it the agent assigns a UUIDv7.
    #[arg(long, value_name = "ID")]
    pub key: Option<String>,

    /// Print the agent's JSON answer ({"id":...,"duplicate":...}) instead of just the id.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    #[command(subcommand)]
    pub command: UpdateCommand,
}

#[derive(Subcommand, Debug)]
pub enum UpdateCommand {
    /// Ask the hub whether the channel has a release for this device; install nothing.
    Check(OutputArgs),
    /// Check, download and install now (ignores the download windows).
    Now(OutputArgs),
    /// Show the update poller's state: channel, last check, offer, download progress.
    Status(OutputArgs),
}

#[derive(Args, Debug)]
pub struct WorkloadsArgs {
    #[command(subcommand)]
    pub command: Option<WorkloadsCommand>,
    /// Print the agent's JSON document instead of the readable summary (for `status`).
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum WorkloadsCommand {
    /// Show the revisions, objects and last error (the default).
    Status(OutputArgs),
    /// Ask the hub for the channel's set now and apply it.
    Check(OutputArgs),
}

#[derive(Args, Debug)]
pub struct OutputArgs {
    /// Print the agent's JSON document instead of the readable summary.
    #[arg(long)]
    pub json: bool,
}
