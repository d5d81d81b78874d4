//! The command check: run argv (no shell) and pass on exit 0.
//!
//! The command runs in its own process group; if the run is abandoned (timeout: the caller
//! drops this future) the whole group gets SIGKILL, so a shell script's children die with it.
//! stdout is discarded; the tail of stderr becomes the detail of a failure.

use std::process::Stdio;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::io::AsyncReadExt;
use tokio::process::Command;

use super::CheckOutcome;

/// How much of stderr is kept for the report.
const STDERR_TAIL: usize = 512;

pub async fn run(argv: &[String], fatal_exit_codes: &[i32]) -> CheckOutcome {
    let Some((program, args)) = argv.split_first() else {
        return CheckOutcome::fatal("empty command");
    };
    let mut child = match Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
    {
        Ok(c) => c,
        Err(e) => return CheckOutcome::fail(format!("cannot run {program}: {e}")),
    };
    let mut guard = GroupGuard(child.id().and_then(|p| i32::try_from(p).ok()));
    let stderr = child.stderr.take();
    let (status, tail) = tokio::join!(child.wait(), read_tail(stderr));
    // The leader exited: from here on nothing of ours needs killing.
    guard.0 = None;
    let status = match status {
        Ok(s) => s,
        Err(e) => return CheckOutcome::fail(format!("waiting for {program}: {e}")),
    };
    let detail = |what: String| {
        if tail.is_empty() {
            what
        } else {
            format!("{what}: {tail}")
        }
    };
    match status.code() {
        Some(0) => CheckOutcome::pass(format!("{program} exited 0")),
        Some(code) if fatal_exit_codes.contains(&code) => {
            CheckOutcome::fatal(detail(format!("{program} exited {code} (fatal)")))
        }
        Some(code) => CheckOutcome::fail(detail(format!("{program} exited {code}"))),
        None => CheckOutcome::fail(detail(format!("{program} was killed ({status})"))),
    }
}

/// Kills the process group on drop (the run was abandoned).
struct GroupGuard(Option<i32>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            // The group may be gone already; nothing to do about an error here.
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

async fn read_tail(stderr: Option<tokio::process::ChildStderr>) -> String {
    let Some(mut stderr) = stderr else {
        return String::new();
    };
    let mut tail: Vec<u8> = Vec::new();
    let mut buf = [0u8; 1024];
    // Drain everything (a full pipe would block the child) and keep the last bytes.
    while let Ok(n) = stderr.read(&mut buf).await {
        if n == 0 {
            break;
        }
        tail.extend_from_slice(&buf[..n]);
        if tail.len() > STDERR_TAIL {
            tail.drain(..tail.len() - STDERR_TAIL);
        }
    }
    String::from_utf8_lossy(&tail).trim().to_owned()
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::record::Verdict;

    fn argv(s: &[&str]) -> Vec<String> {
        s.iter().map(|a| (*a).to_owned()).collect()
    }

    #[tokio::test]
    async fn exit_codes_map_to_verdicts() {
        assert_eq!(run(&argv(&["true"]), &[]).await.verdict, Verdict::Pass);
        let f = run(&argv(&["sh", "-c", "echo broken >&2; exit 2"]), &[3]).await;
        assert_eq!(f.verdict, Verdict::Fail);
        assert_eq!(f.detail.as_deref(), Some("sh exited 2: broken"));
        assert_eq!(
            run(&argv(&["sh", "-c", "exit 3"]), &[3]).await.verdict,
            Verdict::Fatal
        );
        let missing = run(&argv(&["/nonexistent/x"]), &[]).await;
        assert_eq!(missing.verdict, Verdict::Fail);
    }

    #[tokio::test]
    async fn a_timed_out_run_kills_the_whole_group() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("survived");
        let script = format!("(sleep 0.5; touch {}) & wait", marker.display());
        let t0 = Instant::now();
        let r = tokio::time::timeout(
            Duration::from_millis(100),
            run(&argv(&["sh", "-c", &script]), &[]),
        )
        .await;
        assert!(r.is_err());
        assert!(t0.elapsed() < Duration::from_millis(400));
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert!(!marker.exists(), "the grandchild was killed with the group");
    }
}
