//! Integration tests against real peers: swtpm (the TPM), openssl, ring, rustls, tpm2-tools.
//! Every swtpm test starts its own swtpm on its own ports and state dir, so they run in parallel.

mod support;

mod attestation;
mod csr;
mod file_key;
mod mtls;
mod tpm_key;
