//! TPMs "from a factory": swtpm state made by `swtpm_setup --create-ek-cert` with a local
//! manufacturer CA (`swtpm_localca`), so the TPM has an RSA EK certificate in NV 0x01c00002
//! that chains to a CA the hub can be told to trust.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A local TPM-manufacturer CA; one can manufacture many TPMs.
pub struct EkCa {
    dir: PathBuf,
}

impl EkCa {
    /// A CA whose files live in `dir` (created on first use by `swtpm_localca`).
    pub fn new(dir: &Path) -> EkCa {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(
            dir.join("swtpm-localca.conf"),
            format!(
                "statedir = {d}\nsigningkey = {d}/signkey.pem\nissuercert = {d}/issuercert.pem\n\
                 certserial = {d}/certserial\n",
                d = dir.display()
            ),
        )
        .unwrap();
        std::fs::write(
            dir.join("swtpm_setup.conf"),
            format!(
                "create_certs_tool = /usr/bin/swtpm_localca\n\
                 create_certs_tool_config = {}/swtpm-localca.conf\n\
                 create_certs_tool_options = /etc/swtpm-localca.options\n\
                 active_pcr_banks = sha256\n",
                dir.display()
            ),
        )
        .unwrap();
        EkCa {
            dir: dir.to_path_buf(),
        }
    }

    /// Manufactures a TPM state in `state_dir` (empty or missing): EK certificates signed by
    /// this CA's issuer. Start it with [`crate::swtpm::Swtpm::start`].
    pub fn manufacture(&self, state_dir: &Path) {
        std::fs::create_dir_all(state_dir).unwrap();
        crate::cmd::run(
            Command::new("swtpm_setup")
                .args(["--tpm2", "--tpmstate"])
                .arg(state_dir)
                .args(["--create-ek-cert", "--config"])
                .arg(self.dir.join("swtpm_setup.conf")),
        );
    }

    /// The root certificate (PEM) a verifier trusts.
    pub fn root_cert(&self) -> PathBuf {
        self.dir.join("swtpm-localca-rootca-cert.pem")
    }

    /// The intermediate that signs EK certificates (PEM).
    pub fn issuer_cert(&self) -> PathBuf {
        self.dir.join("issuercert.pem")
    }
}
