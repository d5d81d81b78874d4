//! The daemon's side of device identity (`[identity]`): open the key backend once, keep the
//! enrolled certificate, enroll with the hub (automatically at start when a token is
//! configured, or on demand through `POST /v1/enroll` of the local API), and give the uploader
//! a rustls client configuration whose handshake signature comes from the backend.
//!
//! Once enrolled, the certificate is renewed at 2/3 of its lifetime over mTLS (`POST
//! /v1/renew`: same key, new CSR, new certificate), retried with the uploader's backoff while
//! the hub is unreachable; the current certificate stays in use until it expires. Validity is
//! judged against [`floor::TimeFloor`] when the system clock is behind it.
//!
//! Seam for a later slice: EK/AK attestation (more fields in the enrollment request).

pub mod cert;
pub mod floor;
pub mod view;

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use hyper::StatusCode;
use outpost_identity::KeyBackend;
use outpost_proto::enroll::{
    device_id_from_spki, Challenge, ChallengeRequest, EnrollError, EnrollErrorCode, EnrollRequest,
    EnrollResponse, RenewRequest, TpmActivation, TpmEvidence, ENROLL_CHALLENGE_PATH, ENROLL_PATH,
    RENEW_PATH,
};
use rand::SeedableRng;
use rustls::ClientConfig;
use tokio::sync::{watch, Notify};

use crate::config::{HubConfig, IdentityConfig, TokenSource};
use crate::shutdown::Shutdown;
use crate::uploader::backoff::Backoff;
use crate::uploader::client::{HubClient, UploadError};
use crate::uploader::tls;
use crate::{now_ms, oneline};
use cert::CertInfo;
use floor::TimeFloor;
pub use view::{EnrolledView, IdentityView};

/// How often a device without a token looks again (a token file may appear later).
const NO_TOKEN_RECHECK: Duration = Duration::from_secs(30);
/// Longest sleep before the renewal time is computed again (the wall clock may jump).
const RENEW_RECHECK: Duration = Duration::from_secs(3600);

/// When a certificate valid `not_before_ms..not_after_ms` is due for renewal: 2/3 of the way.
pub fn renew_at_ms(not_before_ms: i64, not_after_ms: i64) -> i64 {
    let lifetime = not_after_ms.saturating_sub(not_before_ms).max(0);
    not_before_ms.saturating_add(lifetime / 3 * 2)
}

/// How far ahead of the device's clock a certificate's notBefore may be and still be used.
const FUTURE_SKEW_MS: i64 = 5 * 60 * 1000;

/// Where enrollment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The key backend is being opened (TPM: CreatePrimary + Load).
    OpeningKey,
    /// Opening the key failed; retried with backoff.
    KeyError,
    /// No valid certificate and no token to enroll with.
    NotEnrolled,
    Enrolling,
    Enrolled,
    /// The last enrollment attempt failed; retried with backoff while a token is configured.
    Failed,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::OpeningKey => "opening_key",
            Phase::KeyError => "key_error",
            Phase::NotEnrolled => "not_enrolled",
            Phase::Enrolling => "enrolling",
            Phase::Enrolled => "enrolled",
            Phase::Failed => "failed",
        }
    }
}

/// Why an enrollment did not happen.
#[derive(Debug, thiserror::Error)]
pub enum EnrollFailure {
    #[error("the device key is not open yet ({0})")]
    KeyNotReady(String),
    #[error("no enrollment token (set identity.token or identity.token_file, or run `outpostctl enroll --token T`)")]
    NoToken,
    #[error("cannot read the token file {path}: {message}")]
    TokenFile { path: String, message: String },
    #[error("cannot make the CSR: {0}")]
    Csr(String),
    #[error("hub unreachable: {0}")]
    Unreachable(String),
    /// The hub said no; `code` tells why (token, CSR, revoked, policy).
    #[error("the hub refused {what}: {message} (hub status {status})")]
    Refused {
        what: &'static str,
        status: u16,
        code: Option<EnrollErrorCode>,
        message: String,
    },
    #[error("hub sent an unusable certificate: {0}")]
    BadCertificate(String),
    #[error("cannot renew: {0}")]
    CannotRenew(String),
    #[error("cannot store the certificate {path}: {message}")]
    Store { path: String, message: String },
    #[error("TPM attestation failed: {0}")]
    Attestation(String),
}

/// Runs a (blocking) TPM attestation step off the async threads: an RSA EK is re-created in
/// each step, which takes seconds on some discrete TPMs.
async fn tpm_job<T: Send + 'static>(
    key: &Arc<dyn KeyBackend>,
    f: impl FnOnce(&dyn outpost_identity::Attestor) -> Result<T, outpost_identity::IdentityError>
        + Send
        + 'static,
) -> Result<T, EnrollFailure> {
    let key = key.clone();
    tokio::task::spawn_blocking(move || match key.attestor() {
        Some(a) => f(a).map_err(|e| EnrollFailure::Attestation(e.to_string())),
        None => Err(EnrollFailure::Attestation(
            "this key backend cannot attest".into(),
        )),
    })
    .await
    .map_err(|e| EnrollFailure::Attestation(format!("attestation task failed: {e}")))?
}

#[derive(Debug, Default)]
struct Status {
    phase: Option<Phase>,
    last_error: Option<String>,
}

/// Shared by the identity task, the uploader and the local API.
pub struct Identity {
    config: IdentityConfig,
    hub: HubConfig,
    request_timeout: Duration,
    key: OnceLock<Arc<dyn KeyBackend>>,
    status: Mutex<Status>,
    /// Bumped whenever the key was opened or the certificate replaced: the uploader rebuilds
    /// its TLS client and retries at once.
    generation: watch::Sender<u64>,
    /// One enrollment at a time (automatic or on demand).
    enrolling: tokio::sync::Mutex<()>,
    /// Wakes the identity task (after an on-demand enrollment).
    wake: Notify,
    floor: Arc<TimeFloor>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("backend", &self.config.backend_name())
            .field("cert", &self.config.cert)
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// Reads the time floor; the key is opened by [`Identity::run`].
    pub fn new(config: IdentityConfig, hub: HubConfig, request_timeout: Duration) -> Arc<Self> {
        let floor = TimeFloor::load(config.time_floor.clone(), floor::build_time_ms());
        Arc::new(Self {
            floor: Arc::new(floor),
            config,
            hub,
            request_timeout,
            key: OnceLock::new(),
            status: Mutex::new(Status::default()),
            generation: watch::Sender::new(0),
            enrolling: tokio::sync::Mutex::new(()),
            wake: Notify::new(),
        })
    }

    /// The time certificates are judged at (shared with the uploader's hub client).
    pub fn time_floor(&self) -> Arc<TimeFloor> {
        self.floor.clone()
    }

    pub fn config(&self) -> &IdentityConfig {
        &self.config
    }

    /// The backend key, once opened.
    pub fn key(&self) -> Option<Arc<dyn KeyBackend>> {
        self.key.get().cloned()
    }

    /// Changes whenever the key opened or the certificate changed.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }

    pub fn generation(&self) -> u64 {
        *self.generation.borrow()
    }

    fn set(&self, phase: Phase, error: Option<String>) {
        if let Ok(mut s) = self.status.lock() {
            s.phase = Some(phase);
            s.last_error = error;
        }
    }

    fn status(&self) -> (Phase, Option<String>) {
        self.status
            .lock()
            .map(|s| (s.phase.unwrap_or(Phase::OpeningKey), s.last_error.clone()))
            .unwrap_or((Phase::OpeningKey, None))
    }

    /// The certificate on disk if it is for our key and valid now.
    pub fn usable_cert(&self, key: &dyn KeyBackend) -> Result<(Vec<u8>, CertInfo), String> {
        let Some((pem, info)) = cert::read(&self.config.cert)? else {
            return Err("no certificate yet".into());
        };
        if info.spki != key.public_key_spki_der() {
            return Err(format!(
                "{} certifies another key (the device key changed): enroll again",
                self.config.cert.display()
            ));
        }
        let now = self.floor.now_ms(now_ms());
        if now >= info.not_after_ms {
            return Err(format!(
                "{} expired at {}: an expired certificate cannot be renewed, enroll again with a \
                 new token (identity.token, identity.token_file or `outpostctl enroll --token T`)",
                self.config.cert.display(),
                outpost_proto::time::rfc3339_millis(info.not_after_ms)
            ));
        }
        // A certificate that starts at most a few minutes from now is not refused: the hub's
        // clock may be ahead of ours, and a device re-enrolled right after an operator lifted
        // its revocation gets one that starts just after the revocation (docs/hub.md).
        let now = if info.not_before_ms > now && info.not_before_ms - now <= FUTURE_SKEW_MS {
            info.not_before_ms
        } else {
            now
        };
        if !info.is_valid_at(now) {
            return Err(format!(
                "{} is not valid now (valid {} to {})",
                self.config.cert.display(),
                outpost_proto::time::rfc3339_millis(info.not_before_ms),
                outpost_proto::time::rfc3339_millis(info.not_after_ms)
            ));
        }
        self.floor
            .raise(info.not_before_ms, "certificate notBefore", false);
        Ok((pem, info))
    }

    /// The uploader's TLS client: the enrolled certificate, signed for by the backend key.
    pub fn client_config(&self) -> Result<Arc<ClientConfig>, String> {
        let key = self.key().ok_or_else(|| {
            let (phase, error) = self.status();
            match error {
                Some(e) => format!("device key not open ({}): {e}", phase.as_str()),
                None => "device key not open yet".to_owned(),
            }
        })?;
        let (pem, _) = self.usable_cert(key.as_ref()).map_err(|e| {
            let (phase, error) = self.status();
            let detail = error
                .map(|e| format!("; last enrollment error: {e}"))
                .unwrap_or_default();
            oneline(&format!(
                "device not enrolled ({}: {e}){detail}",
                phase.as_str()
            ))
        })?;
        let roots = tls::hub_roots(&self.hub).map_err(|e| oneline(&e.to_string()))?;
        let mut config = outpost_identity::client_config(key, &pem, roots)
            .map_err(|e| oneline(&e.to_string()))?;
        tls::use_time_floor(&mut config, &self.hub, self.floor.clone())
            .map_err(|e| oneline(&e.to_string()))?;
        Ok(Arc::new(config))
    }

    fn token(&self) -> Result<String, EnrollFailure> {
        match &self.config.token {
            None => Err(EnrollFailure::NoToken),
            Some(TokenSource::Inline(t)) => Ok(t.clone()),
            Some(TokenSource::File(path)) => match std::fs::read_to_string(path) {
                Ok(t) if !t.trim().is_empty() => Ok(t.trim().to_owned()),
                Ok(_) => Err(EnrollFailure::NoToken),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(EnrollFailure::NoToken),
                Err(e) => Err(EnrollFailure::TokenFile {
                    path: path.display().to_string(),
                    message: e.to_string(),
                }),
            },
        }
    }

    /// Enrolls with `token` (on demand: `outpostctl enroll`). Replaces a current certificate.
    pub async fn enroll_with(&self, token: &str) -> Result<EnrolledView, EnrollFailure> {
        let _one = self.enrolling.lock().await;
        let key = self.key().ok_or_else(|| {
            EnrollFailure::KeyNotReady(self.status().1.unwrap_or_else(|| "opening".into()))
        })?;
        let previous = self.status();
        self.set(Phase::Enrolling, None);
        let result = self.exchange(key, token).await;
        match &result {
            Ok(v) => {
                tracing::info!(device_id = %v.device_id, not_after = %v.certificate_not_after, "enrolled with the hub");
                self.set(Phase::Enrolled, None);
                self.generation.send_modify(|g| *g += 1);
                self.wake.notify_one();
            }
            Err(e) => {
                // A failed on-demand attempt does not make a working certificate unusable.
                if previous.0 == Phase::Enrolled {
                    self.set(Phase::Enrolled, Some(e.to_string()));
                } else {
                    self.set(Phase::Failed, Some(e.to_string()));
                }
            }
        }
        result
    }

    async fn exchange(
        &self,
        key: Arc<dyn KeyBackend>,
        token: &str,
    ) -> Result<EnrolledView, EnrollFailure> {
        // The CSR's subject is only a hint: the hub names the device (by its EK for a TPM).
        let hint = device_id_from_spki(key.public_key_spki_der());
        let protection = key.protection();
        let mut request = EnrollRequest {
            token: token.to_owned(),
            csr: make_csr(&key, &hint).await?,
            key_protection: protection,
            attestation: None,
        };
        let tls_config = tls::anonymous_config(&self.hub, self.floor.clone())
            .map_err(|e| unreachable(e.to_string()))?;
        let resp = if key.attestor().is_some() {
            self.attested_exchange(&key, &tls_config, &mut request)
                .await?
        } else {
            let body =
                serde_json::to_vec(&request).map_err(|e| EnrollFailure::Csr(e.to_string()))?;
            self.post(tls_config, ENROLL_PATH, "enrollment", body)
                .await?
        };
        let info = self.accept(&key, &resp)?;
        Ok(EnrolledView {
            device_id: resp.device_id,
            key_protection: protection.as_str().to_owned(),
            certificate: self.config.cert.display().to_string(),
            certificate_not_after: outpost_proto::time::rfc3339_millis(info.not_after_ms),
        })
    }

    /// The two TPM rounds: evidence → challenge, answer → certificate. A challenge that
    /// expired meanwhile (hub restart, slow TPM) is started again once.
    async fn attested_exchange(
        &self,
        key: &Arc<dyn KeyBackend>,
        tls_config: &Arc<ClientConfig>,
        request: &mut EnrollRequest,
    ) -> Result<EnrollResponse, EnrollFailure> {
        let mut again = true;
        loop {
            let evidence = tpm_job(key, |a| a.evidence()).await?;
            let challenge_request = ChallengeRequest {
                token: request.token.clone(),
                csr: request.csr.clone(),
                tpm: TpmEvidence {
                    ek_certificate: evidence.ek_certificate.as_deref().map(hex::encode),
                    ek_public: hex::encode(&evidence.ek_public),
                    srk_public: hex::encode(&evidence.srk_public),
                    ak_public: hex::encode(&evidence.ak_public),
                    key_public: hex::encode(&evidence.key_public),
                },
            };
            let body = serde_json::to_vec(&challenge_request)
                .map_err(|e| EnrollFailure::Csr(e.to_string()))?;
            let challenge: Challenge = self
                .post(
                    tls_config.clone(),
                    ENROLL_CHALLENGE_PATH,
                    "the TPM evidence",
                    body,
                )
                .await?;
            let unhex = |field: &str, v: &str| {
                hex::decode(v).map_err(|e| {
                    EnrollFailure::Attestation(format!("the hub's {field} is not hex: {e}"))
                })
            };
            let (blob, secret, nonce) = (
                unhex("credential_blob", &challenge.credential_blob)?,
                unhex("encrypted_secret", &challenge.encrypted_secret)?,
                unhex("nonce", &challenge.nonce)?,
            );
            let answer = tpm_job(key, move |a| a.answer(&evidence, &blob, &secret, &nonce)).await?;
            request.attestation = Some(TpmActivation {
                challenge_id: challenge.challenge_id,
                secret: hex::encode(&answer.secret),
                certify_info: hex::encode(&answer.certify_info),
                certify_signature: hex::encode(&answer.certify_signature),
            });
            let body =
                serde_json::to_vec(&request).map_err(|e| EnrollFailure::Csr(e.to_string()))?;
            match self
                .post(tls_config.clone(), ENROLL_PATH, "enrollment", body)
                .await
            {
                Err(EnrollFailure::Refused {
                    code: Some(EnrollErrorCode::ChallengeExpired),
                    ..
                }) if again => {
                    tracing::info!("the hub's challenge expired; attesting again");
                    again = false;
                }
                other => return other,
            }
        }
    }

    /// Renews the current (valid) certificate over mTLS: a new CSR by the same key, a new
    /// certificate for the same device id, stored atomically. Bumps the generation so the
    /// uploader rebuilds its TLS client.
    pub async fn renew(&self) -> Result<EnrolledView, EnrollFailure> {
        let _one = self.enrolling.lock().await;
        let key = self.key().ok_or_else(|| {
            EnrollFailure::KeyNotReady(self.status().1.unwrap_or_else(|| "opening".into()))
        })?;
        let (_, current) = self
            .usable_cert(key.as_ref())
            .map_err(EnrollFailure::CannotRenew)?;
        let id = current
            .common_name
            .clone()
            .ok_or_else(|| EnrollFailure::CannotRenew("the certificate has no CN".into()))?;
        let request = RenewRequest {
            csr: make_csr(&key, &id).await?,
        };
        let body = serde_json::to_vec(&request).map_err(|e| EnrollFailure::Csr(e.to_string()))?;
        let tls_config = self.client_config().map_err(EnrollFailure::CannotRenew)?;
        let resp: EnrollResponse = self.post(tls_config, RENEW_PATH, "renewal", body).await?;
        if resp.device_id != id {
            return Err(EnrollFailure::BadCertificate(format!(
                "the hub renewed {} instead of {id}",
                resp.device_id
            )));
        }
        let info = self.accept(&key, &resp)?;
        self.floor
            .raise(info.not_before_ms, "certificate notBefore", true);
        self.generation.send_modify(|g| *g += 1);
        Ok(EnrolledView {
            device_id: resp.device_id,
            key_protection: key.protection().as_str().to_owned(),
            certificate: self.config.cert.display().to_string(),
            certificate_not_after: outpost_proto::time::rfc3339_millis(info.not_after_ms),
        })
    }

    /// One JSON POST to the hub; a 200 is a `T`, anything else a failure.
    async fn post<T: serde::de::DeserializeOwned>(
        &self,
        tls_config: Arc<ClientConfig>,
        path: &str,
        what: &'static str,
        body: Vec<u8>,
    ) -> Result<T, EnrollFailure> {
        let mut client = HubClient::new(&self.hub, tls_config, self.request_timeout)
            .map_err(|e| unreachable(e.to_string()))?
            .with_time_floor(self.floor.clone());
        let (status, bytes) = client
            .post_json_once(path, Bytes::from(body))
            .await
            .map_err(|e: UploadError| unreachable(e.to_string()))?;
        if status != StatusCode::OK {
            let (code, message) = match serde_json::from_slice::<EnrollError>(&bytes) {
                Ok(e) => (Some(e.code), oneline(&e.error)),
                Err(_) => (
                    None,
                    oneline(&String::from_utf8_lossy(&bytes[..bytes.len().min(200)])),
                ),
            };
            if status.is_server_error() && code != Some(EnrollErrorCode::NotConfigured) {
                return Err(unreachable(format!("HTTP {status}: {message}")));
            }
            return Err(EnrollFailure::Refused {
                what,
                status: status.as_u16(),
                code,
                message,
            });
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| EnrollFailure::BadCertificate(format!("not an answer to {what}: {e}")))
    }

    /// Checks an issued chain against our key and the id the hub named, then replaces the
    /// certificate on disk (atomically, 0600).
    fn accept(
        &self,
        key: &Arc<dyn KeyBackend>,
        resp: &EnrollResponse,
    ) -> Result<CertInfo, EnrollFailure> {
        let info = cert::inspect_pem(resp.certificate_chain.as_bytes())
            .map_err(EnrollFailure::BadCertificate)?;
        if info.spki != key.public_key_spki_der() {
            return Err(EnrollFailure::BadCertificate(
                "the certificate is for another key".into(),
            ));
        }
        if info.common_name.as_deref() != Some(resp.device_id.as_str()) {
            return Err(EnrollFailure::BadCertificate(
                "the certificate does not name the device id the hub answered".into(),
            ));
        }
        // The chain must also be usable by rustls with our key, before it replaces anything.
        outpost_identity::client_config(
            key.clone(),
            resp.certificate_chain.as_bytes(),
            rustls::RootCertStore::empty(),
        )
        .map_err(|e| EnrollFailure::BadCertificate(e.to_string()))?;
        cert::write_atomically(&self.config.cert, resp.certificate_chain.as_bytes()).map_err(
            |e| EnrollFailure::Store {
                path: self.config.cert.display().to_string(),
                message: e.to_string(),
            },
        )?;
        Ok(info)
    }

    /// Waits until the certificate is due (2/3 of its lifetime), renews it, and again; while
    /// renewal fails (hub down, refusal) retries with backoff, the current certificate still
    /// in use. Returns `true` when the certificate stopped being usable (expired, replaced by
    /// another key's), `false` at shutdown.
    async fn keep_renewed(
        &self,
        key: &Arc<dyn KeyBackend>,
        shutdown: &mut Shutdown,
        backoff: &Backoff,
        rng: &mut rand::rngs::StdRng,
    ) -> bool {
        let mut failures = 0u32;
        loop {
            let info = match self.usable_cert(key.as_ref()) {
                Ok((_, info)) => info,
                Err(_) => return true,
            };
            let now = self.floor.now_ms(now_ms());
            let due = renew_at_ms(info.not_before_ms, info.not_after_ms);
            if now < due && failures == 0 {
                let wait =
                    Duration::from_millis(u64::try_from(due - now).unwrap_or(0)).min(RENEW_RECHECK);
                tracing::debug!(renew_at = %outpost_proto::time::rfc3339_millis(due), "certificate renewal scheduled");
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = self.wake.notified() => {}
                    _ = shutdown.wait() => return false,
                }
                continue;
            }
            let attempt = tokio::select! {
                r = self.renew() => r,
                _ = shutdown.wait() => return false,
            };
            match attempt {
                Ok(v) => {
                    failures = 0;
                    tracing::info!(device_id = %v.device_id, not_after = %v.certificate_not_after, "device certificate renewed");
                    self.set(Phase::Enrolled, None);
                }
                Err(e) => {
                    failures += 1;
                    // Never sleep past the expiry: then enrollment takes over.
                    let left =
                        Duration::from_millis(u64::try_from(info.not_after_ms - now).unwrap_or(0));
                    let delay = backoff.delay(failures, rng).min(left);
                    let until = outpost_proto::time::rfc3339_millis(info.not_after_ms);
                    tracing::warn!(error = %e, consecutive_failures = failures, retry_in_ms = delay.as_millis() as u64, valid_until = %until, "certificate renewal failed; the current certificate stays in use");
                    self.set(
                        Phase::Enrolled,
                        Some(oneline(&format!(
                            "renewal failed (certificate valid until {until}): {e}"
                        ))),
                    );
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = self.wake.notified() => failures = 0,
                        _ = shutdown.wait() => return false,
                    }
                }
            }
        }
    }

    /// Opens the key (with backoff until it works), then enrolls if there is no usable
    /// certificate and a token is available (with backoff while the hub is unreachable or
    /// refuses). Returns once enrolled, or at shutdown.
    pub async fn run(self: Arc<Self>, mut shutdown: Shutdown, backoff: Backoff) {
        let mut rng = rand::rngs::StdRng::from_os_rng();
        let mut failures = 0u32;
        self.set(Phase::OpeningKey, None);
        let key = loop {
            let backend = self.config.backend.clone();
            let opened =
                tokio::task::spawn_blocking(move || outpost_identity::open_backend(&backend))
                    .await
                    .map_err(|e| e.to_string())
                    .and_then(|r| r.map_err(|e| e.to_string()));
            match opened {
                Ok(key) => break key,
                Err(e) => {
                    failures += 1;
                    let delay = backoff.delay(failures, &mut rng);
                    tracing::error!(error = %e, retry_in_ms = delay.as_millis() as u64, "cannot open the device key; records are queued meanwhile");
                    self.set(Phase::KeyError, Some(oneline(&e)));
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = shutdown.wait() => return,
                    }
                }
            }
        };
        let device_id = device_id_from_spki(key.public_key_spki_der());
        tracing::info!(backend = self.config.backend_name(), key_protection = %key.protection(), %device_id, "device key open");
        let _ = self.key.set(key.clone());
        self.generation.send_modify(|g| *g += 1);

        failures = 0;
        // Why the device is enrolling, when it is because its certificate expired.
        let mut expired: Option<String>;
        loop {
            match self.usable_cert(key.as_ref()) {
                Ok((_, info)) => {
                    if self.status().0 != Phase::Enrolled {
                        tracing::info!(device_id = ?info.common_name, not_after = %outpost_proto::time::rfc3339_millis(info.not_after_ms), "device certificate valid");
                        self.set(Phase::Enrolled, None);
                        self.generation.send_modify(|g| *g += 1);
                    }
                    if !self
                        .keep_renewed(&key, &mut shutdown, &backoff, &mut rng)
                        .await
                    {
                        return;
                    }
                    // Expired (or replaced): the uploader must stop using it.
                    self.generation.send_modify(|g| *g += 1);
                    continue;
                }
                Err(why) => {
                    tracing::info!(reason = %why, "device needs to enroll");
                    expired = why.contains(" expired at ").then_some(why);
                }
            }
            let token = match self.token() {
                Ok(t) => t,
                Err(e) => {
                    if !matches!(self.status().0, Phase::Failed)
                        || matches!(e, EnrollFailure::TokenFile { .. })
                    {
                        let error = match &expired {
                            Some(why) => format!("{why}; {e}"),
                            None => e.to_string(),
                        };
                        self.set(Phase::NotEnrolled, Some(error));
                    }
                    tokio::select! {
                        _ = self.wake.notified() => {}
                        _ = tokio::time::sleep(NO_TOKEN_RECHECK) => {}
                        _ = shutdown.wait() => return,
                    }
                    continue;
                }
            };
            let attempt = tokio::select! {
                r = self.enroll_with(&token) => r,
                _ = shutdown.wait() => return,
            };
            match attempt {
                Ok(_) => failures = 0,
                Err(e) => {
                    failures += 1;
                    let delay = backoff.delay(failures, &mut rng);
                    if let Some(why) = &expired {
                        self.set(Phase::Failed, Some(oneline(&format!("{why}; {e}"))));
                    }
                    tracing::warn!(error = %e, consecutive_failures = failures, retry_in_ms = delay.as_millis() as u64, "enrollment failed; records are queued meanwhile");
                    tokio::select! {
                        _ = self.wake.notified() => {}
                        _ = tokio::time::sleep(delay) => {}
                        _ = shutdown.wait() => return,
                    }
                }
            }
        }
    }

    /// `GET /v1/identity`.
    pub fn view(&self) -> IdentityView {
        let (phase, last_error) = self.status();
        let key = self.key();
        let cert = cert::read(&self.config.cert);
        let (certificate, cert_error) = match cert {
            Ok(Some((_, info))) => (
                Some(view::CertView::from_info(&self.config.cert, &info)),
                None,
            ),
            Ok(None) => (None, None),
            Err(e) => (None, Some(e)),
        };
        // The hub's name for us once enrolled; before that, what v1 enrollment will name us.
        let device_id = match (&certificate, &key) {
            (Some(c), _) if phase == Phase::Enrolled => c.common_name.clone(),
            (_, Some(k)) => Some(device_id_from_spki(k.public_key_spki_der())),
            _ => None,
        };
        IdentityView {
            configured: true,
            backend: Some(self.config.backend_name().to_owned()),
            tcti: match &self.config.backend {
                outpost_identity::BackendConfig::Tpm(t) => Some(t.tcti.clone()),
                _ => None,
            },
            key_protection: key.as_ref().map(|k| k.protection().as_str().to_owned()),
            public_key_sha256: key
                .as_ref()
                .map(|k| device_id_from_spki(k.public_key_spki_der())),
            device_id,
            enrollment: phase.as_str().to_owned(),
            last_error: last_error.or(cert_error),
            token_configured: self.config.token.is_some(),
            certificate,
            hub: Some(view::hub_url(&self.hub)),
        }
    }
}

fn unreachable(e: String) -> EnrollFailure {
    EnrollFailure::Unreachable(oneline(&e))
}

/// A CSR signed by the device key (TPM signing is blocking I/O).
async fn make_csr(key: &Arc<dyn KeyBackend>, subject: &str) -> Result<String, EnrollFailure> {
    let (key, subject) = (key.clone(), subject.to_owned());
    tokio::task::spawn_blocking(move || outpost_identity::make_csr(key.as_ref(), &subject))
        .await
        .map_err(|e| EnrollFailure::Csr(e.to_string()))?
        .map_err(|e| EnrollFailure::Csr(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewal_is_due_at_two_thirds_of_the_lifetime() {
        assert_eq!(renew_at_ms(0, 90_000), 60_000);
        assert_eq!(renew_at_ms(1_000, 100_000), 67_000);
        assert_eq!(renew_at_ms(5, 5), 5);
        assert_eq!(renew_at_ms(10, 0), 10);
    }
}
