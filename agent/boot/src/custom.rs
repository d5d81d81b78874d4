//! RAUC's custom bootloader backend protocol: an integrator's program, run as
//!
//! | call                                  | stdout                        | RAUC reads it as            |
//! |---------------------------------------|-------------------------------|-----------------------------|
//! | `<prog> get-primary`                  | bootname                      | stripped; must be a configured bootname |
//! | `<prog> set-primary <bootname>`       | (not captured)                | exit status only            |
//! | `<prog> get-state <bootname>`         | `good` or `bad`               | stripped; anything else is an error |
//! | `<prog> set-state <bootname> good\|bad`| (not captured)               | exit status only            |
//! | `<prog> get-current`                  | bootname on the first line    | first line, not stripped; empty is an error |
//!
//! Exit status 0 is success, anything else (or a signal) an error. stderr is inherited (it
//! goes where the agent's own stderr goes, the journal). We add what RAUC lacks: a bound on
//! captured output and a timeout, after which the program is killed.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::bootloader::Bootloader;
use crate::error::BootError;
use crate::slot::{SlotName, SlotState};

/// Most stdout we keep from one call; a bootname or a state word is a few bytes.
pub const MAX_OUTPUT: usize = 4096;
/// Default time a call may take.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
pub struct CustomBackend {
    program: PathBuf,
    slots: Vec<SlotName>,
    timeout: Duration,
}

impl CustomBackend {
    pub fn new(program: impl Into<PathBuf>, slots: Vec<SlotName>) -> Self {
        Self {
            program: program.into(),
            slots,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn program(&self) -> &Path {
        &self.program
    }

    /// Runs a get-command and returns its stdout (at most [`MAX_OUTPUT`] bytes, lossy UTF-8).
    fn get(&self, args: &[&str]) -> Result<String, BootError> {
        let mut child = self.spawn(args, Stdio::piped())?;
        let reader = child.stdout.take().map(|out| {
            thread::spawn(move || {
                let mut buf = Vec::new();
                // Read one byte past the limit so "too much" is detectable; the rest is left in
                // the pipe (the child gets EPIPE or is killed by the timeout).
                let res = out.take(MAX_OUTPUT as u64 + 1).read_to_end(&mut buf);
                res.map(|_| buf)
            })
        });
        let status = self.wait(&mut child, args)?;
        let output = match reader.map(|r| r.join()) {
            Some(Ok(Ok(buf))) => buf,
            Some(Ok(Err(e))) => return Err(BootError::io("read stdout of", &self.program, e)),
            Some(Err(_)) => return Err(self.script_err("stdout reader thread panicked")),
            None => Vec::new(),
        };
        // Checked before the status: we closed the pipe after MAX_OUTPUT bytes, so a handler
        // that kept writing died of SIGPIPE and its status says nothing.
        if output.len() > MAX_OUTPUT {
            return Err(self.script_err(&format!("printed more than {MAX_OUTPUT} bytes")));
        }
        self.check_status(status, args)?;
        Ok(String::from_utf8_lossy(&output).into_owned())
    }

    /// Runs a set-command; only the exit status counts.
    fn set(&self, args: &[&str]) -> Result<(), BootError> {
        let mut child = self.spawn(args, Stdio::inherit())?;
        let status = self.wait(&mut child, args)?;
        self.check_status(status, args)
    }

    fn spawn(&self, args: &[&str], stdout: Stdio) -> Result<Child, BootError> {
        Command::new(&self.program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| BootError::io("run", &self.program, e))
    }

    /// Waits for the child, killing it after the timeout. No tokio: poll `try_wait`.
    fn wait(&self, child: &mut Child, args: &[&str]) -> Result<ExitStatus, BootError> {
        let deadline = Instant::now() + self.timeout;
        let mut pause = Duration::from_millis(1);
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return Ok(status),
                Ok(None) => {}
                Err(e) => return Err(BootError::io("wait for", &self.program, e)),
            }
            if Instant::now() >= deadline {
                // Kill errors mean it already exited; wait() reaps it either way.
                let _ = child.kill();
                let _ = child.wait();
                return Err(self.script_err(&format!(
                    "{args:?} did not finish within {:?}; killed",
                    self.timeout
                )));
            }
            thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }

    fn check_status(&self, status: ExitStatus, args: &[&str]) -> Result<(), BootError> {
        if status.success() {
            Ok(())
        } else {
            Err(BootError::ScriptFailed {
                program: self.program.clone(),
                args: args.iter().map(|s| (*s).to_owned()).collect(),
                status,
            })
        }
    }

    fn script_err(&self, reason: &str) -> BootError {
        BootError::Script {
            program: self.program.clone(),
            reason: reason.to_owned(),
        }
    }

    fn output_err(&self, args: &[&str], output: &str, expected: &'static str) -> BootError {
        BootError::ScriptOutput {
            program: self.program.clone(),
            args: args.iter().map(|s| (*s).to_owned()).collect(),
            output: output.to_owned(),
            expected,
        }
    }

    fn configured(&self, name: &str) -> Option<SlotName> {
        self.slots.iter().find(|s| s.as_str() == name).cloned()
    }
}

/// `g_strstrip`: ASCII whitespace off both ends.
fn strip(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_ascii_whitespace())
}

impl Bootloader for CustomBackend {
    fn primary(&self) -> Result<Option<SlotName>, BootError> {
        let args = ["get-primary"];
        let out = self.get(&args)?;
        // RAUC errors out when the name is not a configured bootname; so do we.
        self.configured(strip(&out))
            .map(Some)
            .ok_or_else(|| self.output_err(&args, &out, "a configured bootname"))
    }

    fn set_primary(&self, slot: &SlotName) -> Result<(), BootError> {
        self.set(&["set-primary", slot.as_str()])
    }

    fn state(&self, slot: &SlotName) -> Result<SlotState, BootError> {
        let args = ["get-state", slot.as_str()];
        let out = self.get(&args)?;
        match strip(&out) {
            "good" => Ok(SlotState::Good),
            "bad" => Ok(SlotState::Bad),
            _ => Err(self.output_err(&args, &out, "\"good\" or \"bad\"")),
        }
    }

    fn set_state(&self, slot: &SlotName, state: SlotState) -> Result<(), BootError> {
        self.set(&["set-state", slot.as_str(), state.as_str()])
    }

    /// The protocol has no attempt counter.
    fn attempts_left(&self, _slot: &SlotName) -> Result<Option<u32>, BootError> {
        Ok(None)
    }

    fn booted(&self) -> Result<Option<SlotName>, BootError> {
        let args = ["get-current"];
        let out = self.get(&args)?;
        // RAUC reads one line with GDataInputStream (drops "\n" or "\r\n"), no stripping.
        let line = out.split('\n').next().unwrap_or_default();
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            return Err(self.output_err(&args, &out, "a bootname on the first line"));
        }
        self.configured(line)
            .map(Some)
            .ok_or_else(|| self.output_err(&args, &out, "a configured bootname"))
    }
}
