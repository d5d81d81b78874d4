//! The local HTTP API (unix socket, optional loopback TCP). It has no authentication: access is
//! controlled by the socket's file mode and by binding TCP to loopback only.

pub mod delivery;
pub mod errors;
pub mod health;
pub mod identity;
pub mod info;
pub mod publish;
pub mod response;
pub mod routes;
pub mod server;
pub mod state;
pub mod update;
pub mod workloads;

#[cfg(test)]
mod tests;

pub use server::{bind_tcp, bind_unix, serve, BindError, Listener};
pub use state::AppState;
