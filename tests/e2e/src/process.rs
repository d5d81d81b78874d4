//! Starting, waiting for and killing the real daemons.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// Path of a workspace binary. `OUTPOST_BIN_DIR` wins; else the profile folder this test
/// binary was built into (`target/<profile>/deps/..`), which is where cargo put the daemons.
pub fn bin_path(name: &str) -> PathBuf {
    let dir = match std::env::var_os("OUTPOST_BIN_DIR") {
        Some(d) => PathBuf::from(d),
        None => {
            let exe = std::env::current_exe().expect("current_exe");
            let mut dir = exe.parent().expect("exe dir").to_path_buf();
            if dir.ends_with("deps") {
                dir.pop();
            }
            dir
        }
    };
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} not found: build the binaries first (cargo build --workspace --bins) or set OUTPOST_BIN_DIR",
        path.display()
    );
    path
}

/// A running daemon whose stdout we watch for its readiness line.
struct Daemon {
    child: Child,
    name: &'static str,
}

impl Daemon {
    fn spawn(
        name: &'static str,
        mut cmd: Command,
        ready_marker: &str,
        log: &Path,
    ) -> Result<(Self, String)> {
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)?;
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::from(log_file))
            .stdin(Stdio::null());
        let mut child = cmd.spawn().with_context(|| format!("spawning {name}"))?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
        let (tx, rx) = mpsc::channel();
        let marker = ready_marker.to_owned();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if !sent && line.contains(&marker) {
                    let _ = tx.send(line);
                    sent = true;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match rx.recv_timeout(Duration::from_millis(50)) {
                Ok(line) => return Ok((Self { child, name }, line)),
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if let Some(status) = child.try_wait()? {
                        let log = std::fs::read_to_string(log).unwrap_or_default();
                        bail!("{name} exited with {status} before it was ready; log:\n{log}");
                    }
                    if Instant::now() > deadline {
                        let _ = child.kill();
                        bail!("{name} not ready within 30 s");
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = child.wait()?;
                    let log = std::fs::read_to_string(log).unwrap_or_default();
                    bail!("{name} closed stdout ({status}) before it was ready; log:\n{log}");
                }
            }
        }
    }

    fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    fn kill9(&mut self) {
        let _ = kill(self.pid(), Signal::SIGKILL);
        let _ = self.child.wait();
    }

    /// SIGTERM and wait for a clean exit; returns whether it exited with status 0.
    fn terminate(&mut self) -> Result<bool> {
        kill(self.pid(), Signal::SIGTERM).with_context(|| format!("SIGTERM {}", self.name))?;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status.success());
            }
            if Instant::now() > deadline {
                self.kill9();
                bail!("{} did not exit within 20 s of SIGTERM", self.name);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.alive() {
            self.kill9();
        }
    }
}

/// A running `outpost-hub serve`.
pub struct Hub {
    daemon: Daemon,
    pub config: PathBuf,
    pub url: String,
}

impl Hub {
    pub fn start(config: &Path) -> Result<Self> {
        let mut cmd = Command::new(bin_path("outpost-hub"));
        cmd.arg("serve").arg("--config").arg(config);
        let log = config.with_file_name("hub.log");
        let (daemon, line) = Daemon::spawn("outpost-hub", cmd, "listening on", &log)?;
        let url = line.rsplit(' ').next().unwrap_or_default().to_owned();
        Ok(Self {
            daemon,
            config: config.to_owned(),
            url,
        })
    }

    pub fn pid(&self) -> i32 {
        self.daemon.pid().as_raw()
    }

    pub fn kill9(&mut self) {
        self.daemon.kill9();
    }

    pub fn terminate(&mut self) -> Result<bool> {
        self.daemon.terminate()
    }

    pub fn alive(&mut self) -> bool {
        self.daemon.alive()
    }
}

/// A running `outpost-agent`.
pub struct Agent {
    daemon: Daemon,
    pub config: PathBuf,
}

impl Agent {
    pub fn start(config: &Path) -> Result<Self> {
        Self::start_with(config, &[])
    }

    /// Started with extra environment, e.g. libfaketime's `LD_PRELOAD` + `FAKETIME` for an
    /// agent whose wall clock is wrong.
    pub fn start_with(config: &Path, env: &[(&str, &str)]) -> Result<Self> {
        let mut cmd = Command::new(bin_path("outpost-agent"));
        cmd.envs(env.iter().copied());
        // As the systemd unit in modules/agent.nix runs it.
        cmd.arg("--config")
            .arg(config)
            .env("RUST_LOG", "info")
            .env("MALLOC_ARENA_MAX", "2");
        let log = config.with_file_name("agent.log");
        let (daemon, _) = Daemon::spawn("outpost-agent", cmd, "ready", &log)?;
        Ok(Self {
            daemon,
            config: config.to_owned(),
        })
    }

    pub fn pid(&self) -> i32 {
        self.daemon.pid().as_raw()
    }

    pub fn kill9(&mut self) {
        self.daemon.kill9();
    }

    pub fn terminate(&mut self) -> Result<bool> {
        self.daemon.terminate()
    }

    pub fn alive(&mut self) -> bool {
        self.daemon.alive()
    }

    /// Resident set size in KiB (VmRSS) and its peak (VmHWM), from /proc.
    pub fn rss_kib(&self) -> Result<(u64, u64)> {
        rss_kib(self.pid())
    }
}

/// CPU time (user + system) a process has used so far, from /proc/PID/stat.
pub fn cpu_time(pid: i32) -> Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| anyhow!("bad /proc/{pid}/stat"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| -> Result<u64> {
        fields
            .get(i)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| anyhow!("bad /proc/{pid}/stat field {i}"))
    };
    // USER_HZ is 100 on every Linux this runs on.
    Ok(Duration::from_millis((ticks(11)? + ticks(12)?) * 10))
}

pub fn rss_kib(pid: i32) -> Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> Result<u64> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| anyhow!("{name} missing in /proc/{pid}/status"))
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

/// Polls `check` every 100 ms until it returns `Some`, or fails after `timeout`.
pub fn wait_for<T>(
    timeout: Duration,
    what: &str,
    mut check: impl FnMut() -> Result<Option<T>>,
) -> Result<T> {
    let deadline = Instant::now() + timeout;
    let mut last_err = None;
    loop {
        match check() {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(e) => last_err = Some(e),
        }
        if Instant::now() > deadline {
            bail!("timed out after {timeout:?} waiting for {what} (last error: {last_err:?})");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
