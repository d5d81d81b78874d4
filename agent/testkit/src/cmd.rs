//! Running the real tools.

use std::process::{Command, Output};

/// Runs `cmd`, panicking with its output unless it succeeds.
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// [`run`], returning stdout as text.
pub fn run_stdout(cmd: &mut Command) -> String {
    String::from_utf8_lossy(&run(cmd).stdout).into_owned()
}

/// Whether `tool` is on `PATH`.
pub fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Installs the tools the fixtures use if any is missing (the test machine is Debian and
/// tests run as root). Fails loudly rather than skipping: comparisons with them are the point.
pub fn ensure_tools() {
    let tools = ["rauc", "mksquashfs", "openssl", "mkfs.ext4"];
    if tools.iter().all(|t| have(t)) {
        return;
    }
    let _ = Command::new("apt-get")
        .args([
            "install",
            "-y",
            "rauc",
            "squashfs-tools",
            "openssl",
            "e2fsprogs",
        ])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .output();
    for t in tools {
        assert!(
            have(t),
            "required tool '{t}' is missing and could not be installed"
        );
    }
}
