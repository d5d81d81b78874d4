//! A workload artifact from the hub to the store: download (resumable, like a release bundle),
//! verify (keyring, compatible, revision), import its `manifests` image.

use std::io::{Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;

use outpost_bundle::{Bundle, VerifiedBundle};
use outpost_proto::updates::UpdateOffer;
use outpost_proto::workloads::WorkloadOffer;
use outpost_update::install::WORKLOADS_CLASS;
use outpost_workloads::{ManifestSet, Store};

use crate::config::UpdateConfig;
use crate::delivery::download::{self, DownloadError};
use crate::update::context;
use crate::uploader::client::HubClient;

/// Attempts before a download that keeps failing on the network is left to the next cycle.
const ATTEMPTS: u32 = 5;

/// The artifact as the release downloader sees it (same files route, same checks).
fn as_download(o: &WorkloadOffer) -> UpdateOffer {
    UpdateOffer {
        release: o.id.clone(),
        channel: o.channel.clone(),
        compatible: o.compatible.clone(),
        version: o.revision.clone(),
        bundle_path: o.artifact_path.clone(),
        bundle_size: o.artifact_size,
        bundle_sha256: o.artifact_sha256.clone(),
        store_path: None,
    }
}

/// Downloads the artifact into `dir` (continuing a part on disk); the path of the checked file.
pub async fn download(
    client: impl Fn() -> Result<HubClient, String>,
    dir: &Path,
    offer: &WorkloadOffer,
    request_timeout: Duration,
) -> Result<PathBuf, String> {
    let offer = as_download(offer);
    if let Some(done) = download::finished(dir, &offer) {
        return Ok(done);
    }
    let mut delay = Duration::from_millis(500);
    for attempt in 1..=ATTEMPTS {
        let mut c = client()?;
        let frame_timeout = request_timeout.max(Duration::from_secs(5));
        match download::attempt(&mut c, dir, &offer, frame_timeout, None, |_| {}).await {
            Ok(f) if f.have == offer.bundle_size => {
                return download::finish(dir, &offer)
                    .await
                    .map_err(|e| e.to_string())
            }
            Ok(_) => {}
            Err((DownloadError::Transient(e), _)) if attempt < ATTEMPTS => {
                tracing::info!(error = %e, retry_in = ?delay, "workload artifact download interrupted");
            }
            Err((e, _)) => return Err(format!("downloading the artifact failed: {e}")),
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(30));
    }
    Err("downloading the artifact did not finish; the next cycle continues it".into())
}

/// Verifies `path` as the offered set and imports it into `store`.
pub fn import_artifact(
    update: &UpdateConfig,
    store: &Store,
    path: &Path,
    offer: &WorkloadOffer,
) -> Result<ManifestSet, String> {
    let keyring = context::keyring(update).map_err(|e| e.to_string())?;
    let verified = Bundle::open(path, &keyring, &context::verify_options(update))
        .map_err(|e| format!("the artifact is refused: {e}"))?;
    let info = verified.info();
    if info.compatible != update.system.compatible {
        return Err(format!(
            "the artifact is for '{}', this device is '{}'",
            info.compatible, update.system.compatible
        ));
    }
    if info.version.as_deref() != Some(offer.revision.as_str()) {
        return Err(format!(
            "the artifact is revision {:?}, the hub offered {:?}",
            info.version, offer.revision
        ));
    }
    import_from_bundle(store, &verified, &offer.revision)
}

/// Imports the `manifests` image of a verified bundle as `revision`.
pub fn import_from_bundle(
    store: &Store,
    bundle: &VerifiedBundle,
    revision: &str,
) -> Result<ManifestSet, String> {
    // The image is copied out of the bundle (only authenticated bytes reach it) and read
    // back by the importer, which checks every entry before anything becomes a revision.
    let scratch = store.root().join("tmp");
    std::fs::create_dir_all(&scratch).map_err(|e| format!("{}: {e}", scratch.display()))?;
    let mut file =
        tempfile::tempfile_in(&scratch).map_err(|e| format!("{}: {e}", scratch.display()))?;
    bundle
        .extract_image(WORKLOADS_CLASS, &mut file)
        .map_err(|e| format!("the artifact's '{WORKLOADS_CLASS}' image: {e}"))?;
    file.seek(SeekFrom::Start(0))
        .map_err(|e| format!("rewinding the set: {e}"))?;
    store
        .import(revision, file)
        .map_err(|e| format!("the set is refused: {e}"))
}
