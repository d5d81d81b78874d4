//! outpostctl's command line.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

pub const DEFAULT_SOCKET: &str = crate::config::DEFAULT_SOCKET;

const AFTER_HELP: &str = "\
EXIT STATUS:
  0  success
  1  the agent refused the request (its message is printed on stderr)
  2  usage error (bad arguments, unreadable --config file or stdin)
  3  the agent is unreachable (socket missing, permission denied, connection failed)

EXAMPLES:
  outpostctl publish temperature '{\"celsius\": 21.5}'
  echo '{\"door\":\"open\"}' | outpostctl publish alarms --priority critical -
  outpostctl publish orders --key order-42 '{\"total\": 9.90}'
  outpostctl status
  outpostctl --config /etc/outpost/agent.toml outbox --json";

/// Control and inspect the local outpost-agent.
///
/// outpostctl talks to the agent's local HTTP API over its unix socket: it publishes JSON
/// records into the agent's durable outbox and shows the agent's status and per-stream
/// outbox statistics. The socket is /run/outpost/agent.sock unless --socket names another or
/// --config names the agent's configuration file, whose [api] socket is then used.
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
pub struct OutputArgs {
    /// Print the agent's JSON document instead of the readable summary.
    #[arg(long)]
    pub json: bool,
}
