//! A small PKI made with the real `openssl`, like rauc-demo's `make.sh`: CAs and the signers
//! they certify, as PEM files `NAME.pem` / `NAME.key` in one folder.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cmd::run;

const OPENSSL_CNF: &str = "[ req ]\ndistinguished_name = dn\nprompt = no\n[ dn ]\nCN = x\n\
[ v3_ca ]\nbasicConstraints = critical, CA:true\nkeyUsage = critical, keyCertSign, cRLSign\n\
subjectKeyIdentifier = hash\n";

/// The key of a CA or signer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyType {
    /// P-256 (prime256v1), what `make.sh` uses.
    Ec,
    Rsa2048,
}

impl KeyType {
    fn newkey_args(self) -> &'static [&'static str] {
        match self {
            KeyType::Ec => &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"],
            KeyType::Rsa2048 => &["-newkey", "rsa:2048"],
        }
    }
}

/// A folder of CAs and signers.
pub struct Pki {
    pub dir: PathBuf,
}

impl Pki {
    /// Creates `dir` (and the openssl configuration in it).
    pub fn new(dir: &Path) -> Pki {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("openssl.cnf"), OPENSSL_CNF).unwrap();
        Pki {
            dir: dir.to_path_buf(),
        }
    }

    /// `NAME.pem`: the certificate of a CA or signer.
    pub fn cert(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.pem"))
    }

    /// `NAME.key`: its private key.
    pub fn key(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.key"))
    }

    /// A self-signed CA `name` with subject `/O=Outpost Test/CN=cn`; returns its certificate.
    pub fn ca(&self, name: &str, cn: &str, key: KeyType) -> PathBuf {
        run(Command::new("openssl")
            .current_dir(&self.dir)
            .args([
                "req",
                "-x509",
                "-nodes",
                "-days",
                "3650",
                "-config",
                "openssl.cnf",
            ])
            .args(key.newkey_args())
            .args(["-extensions", "v3_ca", "-keyout"])
            .arg(self.key(name))
            .arg("-out")
            .arg(self.cert(name))
            .args(["-subj", &format!("/O=Outpost Test/CN={cn}")]));
        self.cert(name)
    }

    /// A signing certificate `name` (subject `/O=Outpost Test/CN=cn`) issued by CA `ca`:
    /// digitalSignature, not a CA, plus `extendedKeyUsage = eku` unless `eku` is empty.
    pub fn signer(&self, ca: &str, name: &str, cn: &str, key: KeyType, eku: &str) -> PathBuf {
        let csr = self.dir.join(format!("{name}.csr"));
        run(Command::new("openssl")
            .current_dir(&self.dir)
            .args(["req", "-nodes", "-config", "openssl.cnf"])
            .args(key.newkey_args())
            .arg("-keyout")
            .arg(self.key(name))
            .arg("-out")
            .arg(&csr)
            .args(["-subj", &format!("/O=Outpost Test/CN={cn}")]));
        let ext = self.dir.join(format!("{name}.ext"));
        let mut text = "[x]\nbasicConstraints = critical, CA:false\n\
                        keyUsage = critical, digitalSignature\n\
                        subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n"
            .to_string();
        if !eku.is_empty() {
            text.push_str(&format!("extendedKeyUsage = {eku}\n"));
        }
        std::fs::write(&ext, text).unwrap();
        run(Command::new("openssl")
            .current_dir(&self.dir)
            .args(["x509", "-req", "-days", "3650", "-in"])
            .arg(&csr)
            .arg("-CA")
            .arg(self.cert(ca))
            .arg("-CAkey")
            .arg(self.key(ca))
            .args(["-CAcreateserial", "-extensions", "x", "-extfile"])
            .arg(&ext)
            .arg("-out")
            .arg(self.cert(name)));
        self.cert(name)
    }
}
