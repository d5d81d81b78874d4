//! Tests against the real peers: `grub-editenv` (grub-common), `fw_printenv`/`fw_setenv`
//! (libubootenv-tool), shell scripts speaking RAUC's custom backend protocol, and `bootctl`
//! (systemd-boot) reading a directory ESP.
//! Install the tools with `apt-get install -y grub-common libubootenv-tool`.

mod custom;
mod grub;
mod sdboot;
mod sdboot_power_cut;
mod uboot;

use std::path::Path;
use std::process::{Command, Output};

use outpost_boot::SlotName;

/// Runs a tool and returns its output, failing the test with stderr if it fails.
pub fn run(program: &str, args: &[&str]) -> Output {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("{program} not runnable ({e}); apt-get install -y grub-common libubootenv-tool")
        });
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn stdout(program: &str, args: &[&str]) -> String {
    String::from_utf8(run(program, args).stdout).unwrap()
}

pub fn slot(name: &str) -> SlotName {
    SlotName::new(name).unwrap()
}

pub fn ab() -> Vec<SlotName> {
    vec![slot("A"), slot("B")]
}

pub fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}
