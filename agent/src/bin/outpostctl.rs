//! `outpostctl`: publish records to and inspect the local outpost-agent, and drive updates.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::Parser;
use outpost_agent::ctl::{self, cli::Cli};

fn main() -> ExitCode {
    // clap exits with status 2 on usage errors, matching the documented exit codes.
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("outpostctl: cannot start the async runtime: {e}");
            return ExitCode::from(ctl::EXIT_UNREACHABLE);
        }
    };
    let tty = std::io::stdout().is_terminal();
    let mut live = |text: &str| {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    };
    let outcome = runtime.block_on(ctl::run_live(cli, &mut std::io::stdin(), tty, &mut live));
    // A closed stdout/stderr (e.g. `| head`) must not turn success into a panic.
    let _ = std::io::stdout().write_all(outcome.stdout.as_bytes());
    let _ = std::io::stderr().write_all(outcome.stderr.as_bytes());
    ExitCode::from(outcome.code)
}
