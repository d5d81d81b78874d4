//! A real swtpm process per test: data port P, control port P + 1 (the swtpm TCTI always
//! uses P + 1), state in a caller-owned directory. Killed (not shut down) on drop, which is
//! what a power cut looks like to the TPM.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Swtpm {
    child: Child,
    port: u16,
    state_dir: PathBuf,
}

impl Swtpm {
    /// Start swtpm on free ports, retrying if another test grabbed them first.
    pub fn start(state_dir: &Path) -> Swtpm {
        std::fs::create_dir_all(state_dir).unwrap();
        for _ in 0..20 {
            let port = free_port_pair();
            if let Some(tpm) = Self::try_start(state_dir, port) {
                return tpm;
            }
        }
        panic!("could not start swtpm (is the swtpm package installed?)");
    }

    fn try_start(state_dir: &Path, port: u16) -> Option<Swtpm> {
        let log = std::fs::File::create(state_dir.join("swtpm.log")).unwrap();
        let child = Command::new("swtpm")
            .arg("socket")
            .arg("--tpm2")
            .arg("--server")
            .arg(format!("type=tcp,port={port},bindaddr=127.0.0.1"))
            .arg("--ctrl")
            .arg(format!("type=tcp,port={},bindaddr=127.0.0.1", port + 1))
            .arg("--tpmstate")
            .arg(format!("dir={}", state_dir.display()))
            .args(["--flags", "not-need-init,startup-clear"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn swtpm");
        let mut tpm = Swtpm {
            child,
            port,
            state_dir: state_dir.to_path_buf(),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            // Exited: most likely a port clash with a parallel test; the caller retries.
            if tpm.child.try_wait().unwrap().is_some() {
                return None;
            }
            if TcpStream::connect(("127.0.0.1", port + 1)).is_ok() {
                return Some(tpm);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let log = std::fs::read_to_string(state_dir.join("swtpm.log")).unwrap_or_default();
        panic!("swtpm did not come up: {log}");
    }

    pub fn tcti(&self) -> String {
        format!("swtpm:host=127.0.0.1,port={}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kill (power cut) and start again on the same state, possibly on other ports.
    pub fn restart(self) -> Swtpm {
        let state_dir = self.state_dir.clone();
        drop(self);
        Swtpm::start(&state_dir)
    }
}

impl Drop for Swtpm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port P such that P and P + 1 were both free a moment ago.
fn free_port_pair() -> u16 {
    loop {
        let a = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = a.local_addr().unwrap().port();
        if port < u16::MAX && TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
}
