//! Test helpers: the swtpm harness, a test CA, and independent signature verifiers.

pub mod ca;
pub mod swtpm;
pub mod verify;
