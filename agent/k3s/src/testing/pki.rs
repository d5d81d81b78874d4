//! A K3s-like TLS dir, generated with rcgen: the files K3s writes under
//! `/var/lib/rancher/k3s/server/tls` that the client and [`super::ApiServer`] use.
//!
//! | file | what |
//! |---|---|
//! | `server-ca.crt`, `.key` | CA of the serving certificate |
//! | `serving-kube-apiserver.crt`, `.key` | the API server's certificate (`127.0.0.1`, `localhost`, `kubernetes`) |
//! | `client-ca.crt`, `.key` | CA of client certificates |
//! | `client-admin.crt`, `.key` | `system:admin` in `system:masters`, followed by `client-ca.crt` as K3s writes it |

use std::path::Path;
use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};

use super::TestingError;

/// How long the leaf certificates are valid from now (K3s: one year); CAs get ten years.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TlsDirOptions {
    pub leaf_valid_for: Duration,
}

impl Default for TlsDirOptions {
    fn default() -> Self {
        Self {
            leaf_valid_for: Duration::from_secs(365 * 24 * 3600),
        }
    }
}

/// Writes a fresh K3s-like TLS dir (creating `dir`), replacing any files of the same names.
pub fn write_tls_dir(dir: &Path, options: TlsDirOptions) -> Result<(), TestingError> {
    std::fs::create_dir_all(dir)?;
    let ten_years = Duration::from_secs(10 * 365 * 24 * 3600);
    let server_ca = ca("k3s-server-ca", ten_years)?;
    let client_ca = ca("k3s-client-ca", ten_years)?;
    write(
        dir,
        "server-ca",
        &server_ca.pem(),
        &server_ca.key().serialize_pem(),
    )?;
    write(
        dir,
        "client-ca",
        &client_ca.pem(),
        &client_ca.key().serialize_pem(),
    )?;

    let mut serving = leaf_params(
        vec!["kubernetes".into(), "localhost".into(), "127.0.0.1".into()],
        options.leaf_valid_for,
    )?;
    serving
        .distinguished_name
        .push(DnType::CommonName, "kube-apiserver");
    serving.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate()?;
    let cert = serving.signed_by(&key, &server_ca)?;
    write(
        dir,
        "serving-kube-apiserver",
        &cert.pem(),
        &key.serialize_pem(),
    )?;

    let mut admin = leaf_params(Vec::new(), options.leaf_valid_for)?;
    admin
        .distinguished_name
        .push(DnType::CommonName, "system:admin");
    admin
        .distinguished_name
        .push(DnType::OrganizationName, "system:masters");
    admin.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let key = KeyPair::generate()?;
    let cert = admin.signed_by(&key, &client_ca)?;
    let chain = format!("{}{}", cert.pem(), client_ca.pem());
    write(dir, "client-admin", &chain, &key.serialize_pem())?;
    Ok(())
}

fn ca(name: &str, valid_for: Duration) -> Result<CertifiedIssuer<'static, KeyPair>, TestingError> {
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, name);
    set_validity(&mut p, valid_for);
    Ok(CertifiedIssuer::self_signed(p, KeyPair::generate()?)?)
}

fn leaf_params(sans: Vec<String>, valid_for: Duration) -> Result<CertificateParams, TestingError> {
    let mut p = CertificateParams::new(sans)?;
    set_validity(&mut p, valid_for);
    Ok(p)
}

/// From an hour ago (clock skew) to `valid_for` from now.
fn set_validity(p: &mut CertificateParams, valid_for: Duration) {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let epoch = rcgen::date_time_ymd(1970, 1, 1);
    p.not_before = epoch + now.saturating_sub(Duration::from_secs(3600));
    p.not_after = epoch + now + valid_for;
}

fn write(dir: &Path, name: &str, cert: &str, key: &str) -> Result<(), TestingError> {
    std::fs::write(dir.join(format!("{name}.crt")), cert)?;
    std::fs::write(dir.join(format!("{name}.key")), key)?;
    Ok(())
}
