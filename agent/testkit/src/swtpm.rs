//! A real swtpm process per test: data port P, control port P + 1 (the swtpm TCTI always uses
//! P + 1), state in a caller-owned directory. Used by outpost-identity's tests and benchmark and
//! by the end-to-end enrollment tests.
//!
//! Dropping it sends an orderly `TPM2_Shutdown` first (bounded in time: a client may still
//! hold the TPM's one connection), then stops the process. [`Swtpm::restart`] is the power
//! cut: killed without a shutdown, started again on the same state.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub struct Swtpm {
    child: Child,
    port: u16,
    state_dir: PathBuf,
}

impl Swtpm {
    /// Starts swtpm on free ports, retrying if another test grabbed them first.
    pub fn start(state_dir: &Path) -> Swtpm {
        std::fs::create_dir_all(state_dir).unwrap();
        for _ in 0..20 {
            if let Some(tpm) = Self::try_start(state_dir, free_port_pair()) {
                return tpm;
            }
        }
        let log = std::fs::read_to_string(state_dir.join("swtpm.log")).unwrap_or_default();
        panic!("could not start swtpm (is the swtpm package installed?): {log}");
    }

    fn try_start(state_dir: &Path, port: u16) -> Option<Swtpm> {
        let log = std::fs::File::create(state_dir.join("swtpm.log")).unwrap();
        let child = Command::new("swtpm")
            .args(["socket", "--tpm2", "--server"])
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
            .expect("spawn swtpm (is the swtpm package installed?)");
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
        None
    }

    pub fn tcti(&self) -> String {
        format!("swtpm:host=127.0.0.1,port={}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Runs a tpm2-tools command against this TPM in `dir` (only while no one else holds the
    /// TPM's connection), panicking with its output unless it succeeds.
    pub fn tool(&self, dir: &Path, args: &[&str]) -> Output {
        crate::cmd::run(
            Command::new(args[0])
                .args(&args[1..])
                .current_dir(dir)
                .env("TPM2TOOLS_TCTI", self.tcti())
                .env("TSS2_LOG", "all+none"),
        )
    }

    /// tpm2-tools' own view of an outpost-identity key blob (`OUTPOST-TPMKEY1\n`, then the
    /// TPM2B_PUBLIC and TPM2B_PRIVATE halves): an SRK made by `tpm2_createprimary` from the
    /// standard ECC template, the blob loaded under it, `tpm2_readpublic -f der`. Returns the
    /// SubjectPublicKeyInfo DER. Work files go to `work`.
    pub fn read_public_of_key_blob(&self, blob: &Path, work: &Path) -> Vec<u8> {
        std::fs::create_dir_all(work).unwrap();
        let blob = std::fs::read(blob).unwrap();
        let rest = blob
            .strip_prefix(b"OUTPOST-TPMKEY1\n".as_slice())
            .expect("an outpost key blob starts with its magic line");
        let pub_len = 2 + usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        std::fs::write(work.join("key.pub"), &rest[..pub_len]).unwrap();
        std::fs::write(work.join("key.priv"), &rest[pub_len..]).unwrap();
        let srk_attributes =
            "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|noda|restricted|decrypt";
        self.tool(
            work,
            &[
                "tpm2_createprimary",
                "-C",
                "o",
                "-g",
                "sha256",
                "-G",
                "ecc256:aes128cfb",
                "-a",
                srk_attributes,
                "-c",
                "srk.ctx",
            ],
        );
        // swtpm has no resource manager: free the slot before the next command loads more.
        self.tool(work, &["tpm2_flushcontext", "-t"]);
        self.tool(
            work,
            &[
                "tpm2_load",
                "-C",
                "srk.ctx",
                "-u",
                "key.pub",
                "-r",
                "key.priv",
                "-c",
                "key.ctx",
            ],
        );
        self.tool(work, &["tpm2_flushcontext", "-t"]);
        self.tool(
            work,
            &[
                "tpm2_readpublic",
                "-c",
                "key.ctx",
                "-f",
                "der",
                "-o",
                "key.der",
            ],
        );
        std::fs::read(work.join("key.der")).unwrap()
    }

    /// Power cut: killed without a shutdown, then started again on the same state, possibly
    /// on other ports.
    pub fn restart(mut self) -> Swtpm {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let state_dir = self.state_dir.clone();
        drop(self); // already exited: no shutdown is sent
        Swtpm::start(&state_dir)
    }

    /// `TPM2_Shutdown(CLEAR)` as an orderly OS shutdown sends it; `false` if it did not
    /// finish within two seconds (someone still holds the connection).
    fn orderly_shutdown(&self) -> bool {
        let Ok(mut child) = Command::new("tpm2_shutdown")
            .env("TPM2TOOLS_TCTI", self.tcti())
            .env("TSS2_LOG", "all+none")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        else {
            return false;
        };
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
        false
    }
}

impl Drop for Swtpm {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.orderly_shutdown();
        }
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
