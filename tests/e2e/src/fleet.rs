//! A temporary fleet made by the real `outpost-hub init`: one hub config and N device folders,
//! each with a ready `agent.toml` and credentials.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::process::bin_path;
use crate::unix_http::UnixHttp;

pub struct Fleet {
    _tmp: tempfile::TempDir,
    pub dir: PathBuf,
}

#[derive(Clone, Debug)]
pub struct DeviceDir {
    pub name: String,
    pub dir: PathBuf,
    pub config: PathBuf,
}

impl Fleet {
    pub fn init(devices: usize) -> Result<Self> {
        let tmp = tempfile::Builder::new().prefix("outpost-e2e").tempdir()?;
        let dir = tmp.path().join("fleet");
        let out = Command::new(bin_path("outpost-hub"))
            .args(["init", "--devices", &devices.to_string(), "--dir"])
            .arg(&dir)
            .output()?;
        if !out.status.success() {
            bail!(
                "outpost-hub init failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(Self { _tmp: tmp, dir })
    }

    pub fn hub_config(&self) -> PathBuf {
        self.dir.join("hub.toml")
    }

    pub fn device(&self, i: usize) -> DeviceDir {
        let name = format!("device-{i:03}");
        let dir = self.dir.join("devices").join(&name);
        DeviceDir {
            config: dir.join("agent.toml"),
            name,
            dir,
        }
    }

    /// Appends TOML to hub.toml (e.g. a `[legacy_device_keys]` table).
    pub fn append_hub_config(&self, toml: &str) -> Result<()> {
        append(&self.hub_config(), toml)
    }

    /// `outpost-hub records --json`, filtered.
    pub fn hub_records(&self, device: Option<&str>, stream: Option<&str>) -> Result<Vec<Value>> {
        let mut cmd = Command::new(bin_path("outpost-hub"));
        cmd.arg("records")
            .arg("--config")
            .arg(self.hub_config())
            .arg("--json");
        if let Some(d) = device {
            cmd.args(["--device", d]);
        }
        if let Some(s) = stream {
            cmd.args(["--stream", s]);
        }
        let out = cmd.output()?;
        if !out.status.success() {
            bail!(
                "outpost-hub records failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let v: Value = serde_json::from_slice(&out.stdout).context("records --json output")?;
        match v {
            Value::Array(items) => Ok(items),
            other => bail!("records --json is not an array: {other}"),
        }
    }
}

impl DeviceDir {
    pub fn socket(&self) -> PathBuf {
        self.dir.join("agent.sock")
    }

    pub fn api(&self) -> UnixHttp {
        UnixHttp::new(&self.socket())
    }

    pub fn append_config(&self, toml: &str) -> Result<()> {
        append(&self.config, toml)
    }

    /// Puts `line` (e.g. `max_body_bytes = 4096`) into `[section]` of agent.toml, adding the
    /// section if the file has none (TOML forbids declaring a table twice).
    pub fn set_config(&self, section: &str, line: &str) -> Result<()> {
        let text = std::fs::read_to_string(&self.config)?;
        let header = format!("[{section}]");
        let new = match text.lines().position(|l| l.trim() == header) {
            Some(at) => {
                let mut lines: Vec<&str> = text.lines().collect();
                lines.insert(at + 1, line);
                lines.join("\n") + "\n"
            }
            None => format!("{text}\n{header}\n{line}\n"),
        };
        std::fs::write(&self.config, new)?;
        Ok(())
    }

    /// Runs `outpostctl --config agent.toml ARGS`, with `stdin` piped in if given.
    pub fn ctl(&self, args: &[&str], stdin: Option<&[u8]>) -> Result<Output> {
        let mut cmd = Command::new(bin_path("outpostctl"));
        cmd.arg("--config").arg(&self.config).args(args);
        cmd.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn()?;
        if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(input)?;
        }
        Ok(child.wait_with_output()?)
    }

    /// `outpostctl ARGS --json`, parsed; fails unless it exits 0.
    pub fn ctl_json(&self, args: &[&str]) -> Result<Value> {
        let mut all = args.to_vec();
        all.push("--json");
        let out = self.ctl(&all, None)?;
        if !out.status.success() {
            bail!(
                "outpostctl {args:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        serde_json::from_slice(&out.stdout)
            .with_context(|| format!("outpostctl {args:?} --json output"))
    }
}

fn append(path: &Path, toml: &str) -> Result<()> {
    let mut f = std::fs::OpenOptions::new().append(true).open(path)?;
    writeln!(f, "\n{toml}")?;
    Ok(())
}
