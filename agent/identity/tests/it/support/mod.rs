//! Test helpers: a test CA and independent signature verifiers (swtpm comes from
//! outpost-testkit).

pub mod ca;
pub mod verify;
