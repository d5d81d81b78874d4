//! Integration tests of outpost-workloads against its public API (one binary, see
//! ARCHITECTURE.md "Tests").

mod apply;
mod common;
mod crash;
mod refuse;
