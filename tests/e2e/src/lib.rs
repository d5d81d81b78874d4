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
