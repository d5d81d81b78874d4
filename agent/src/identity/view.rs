//! What `GET /v1/identity` and `POST /v1/enroll` of the local API answer (also parsed back by
//! `outpostctl`). Local API documents, not hub wire types.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::cert::CertInfo;
use crate::config::{Config, HubConfig};

/// `GET /v1/identity`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityView {
    /// Whether `[identity]` is configured (otherwise `[hub] cert/key` files, or no hub).
    pub configured: bool,
    /// `tpm`, `file`, or `hub-files` without `[identity]`.
    pub backend: Option<String>,
    pub tcti: Option<String>,
    /// `tpm` or `software`, once the key is open.
    pub key_protection: Option<String>,
    /// Hex SHA-256 of the key's SubjectPublicKeyInfo (the v1 device id), once the key is open.
    pub public_key_sha256: Option<String>,
    /// The certificate's CN once enrolled, else the id enrollment will give (the key hash).
    pub device_id: Option<String>,
    /// `opening_key`, `key_error`, `not_enrolled`, `enrolling`, `enrolled`, `failed`, or
    /// `not_configured`.
    pub enrollment: String,
    pub last_error: Option<String>,
    pub token_configured: bool,
    pub certificate: Option<CertView>,
    pub hub: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertView {
    pub path: String,
    pub common_name: Option<String>,
    pub subject: String,
    pub issuer: String,
    pub not_before: String,
    pub not_after: String,
}

impl CertView {
    pub fn from_info(path: &Path, info: &CertInfo) -> Self {
        Self {
            path: path.display().to_string(),
            common_name: info.common_name.clone(),
            subject: info.subject.clone(),
            issuer: info.issuer.clone(),
            not_before: outpost_proto::time::rfc3339_millis(info.not_before_ms),
            not_after: outpost_proto::time::rfc3339_millis(info.not_after_ms),
        }
    }
}

/// `POST /v1/enroll` (local API) on success.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrolledView {
    pub device_id: String,
    pub key_protection: String,
    pub certificate: String,
    pub certificate_not_after: String,
}

/// `POST /v1/enroll` (local API) body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollCommand {
    pub token: String,
}

pub fn hub_url(hub: &HubConfig) -> String {
    hub.url.to_string().trim_end_matches('/').to_owned()
}

/// Without `[identity]`: what the configured `[hub] cert` says (a file key, made by hand or
/// by `outpost-hub init`).
pub fn without_identity(config: &Config) -> IdentityView {
    let Some(hub) = &config.hub else {
        return IdentityView {
            configured: false,
            backend: None,
            tcti: None,
            key_protection: None,
            public_key_sha256: None,
            device_id: None,
            enrollment: "not_configured".into(),
            last_error: None,
            token_configured: false,
            certificate: None,
            hub: None,
        };
    };
    let (certificate, last_error) = match super::cert::read(&hub.cert) {
        Ok(Some((_, info))) => (Some(CertView::from_info(&hub.cert, &info)), None),
        Ok(None) => (None, Some(format!("{} does not exist", hub.cert.display()))),
        Err(e) => (None, Some(e)),
    };
    IdentityView {
        configured: false,
        backend: Some("hub-files".into()),
        tcti: None,
        key_protection: Some("software".into()),
        public_key_sha256: None,
        device_id: certificate.as_ref().and_then(|c| c.common_name.clone()),
        enrollment: "not_configured".into(),
        last_error,
        token_configured: false,
        certificate,
        hub: Some(hub_url(hub)),
    }
}
