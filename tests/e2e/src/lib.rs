//! Harness for cross-component tests: runs the real `outpost-hub`, `outpost-agent` and
//! `outpostctl` binaries in a temporary fleet made by `outpost-hub init`, and talks to them over
//! their real sockets. Nothing here is a fake: the point is to test what a user runs.

pub mod fleet;
pub mod process;
pub mod unix_http;

pub use fleet::{DeviceDir, Fleet};
pub use process::{bin_path, Agent, Hub};
pub use unix_http::UnixHttp;

pub mod metrics;
pub mod publish;
pub use process::wait_for;

/// The `[[update.slots]]` of a device with two raw file-backed root slots, A and B, in `dir`
/// (`rootfs-a`, `rootfs-b`), for the tests' agent.toml files.
pub fn ab_slots_toml(dir: &std::path::Path) -> String {
    let d = dir.display();
    format!(
        r#"[[update.slots]]
class = "rootfs"
index = 0
device = "{d}/rootfs-a"
type = "raw"
bootname = "A"

[[update.slots]]
class = "rootfs"
index = 1
device = "{d}/rootfs-b"
type = "raw"
bootname = "B"
"#
    )
}
