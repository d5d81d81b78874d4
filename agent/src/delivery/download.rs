//! Resumable bundle downloads: bytes go to `<dir>/<release>.part` as they arrive (fsynced every
//! few MiB); a restart, a reboot or a new address continues from the part's length with
//! `Range: bytes=N-`. The answer must be exactly the bytes asked for (`206` with a matching
//! `Content-Range`, or `200` with the whole file); anything else is discarded. The finished
//! file must have the offer's size and SHA-256 before it is renamed to `<release>.raucb`; only
//! then does the installer see it (which verifies the signature).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::StatusCode;
use outpost_proto::updates::UpdateOffer;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::uploader::client::{HubClient, UploadError};

/// fsync the part file after this many new bytes (what a power cut can cost at most).
const SYNC_EVERY: u64 = 4 << 20;

#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    /// Worth retrying later (network, hub busy, stalled transfer).
    #[error("{0}")]
    Transient(String),
    /// The hub's answer cannot be used (wrong range, size, digest): retried from scratch a few
    /// times, then the release is given up.
    #[error("{0}")]
    Bad(String),
    /// Not retryable: gone from the hub, or the local disk refuses.
    #[error("{0}")]
    Fatal(String),
}

/// What one attempt achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fetched {
    /// Bytes received from the hub in this attempt.
    pub received: u64,
    /// The part's length afterwards.
    pub have: u64,
}

pub fn part_path(dir: &Path, offer: &UpdateOffer) -> PathBuf {
    dir.join(format!("{}.part", offer.release))
}

pub fn final_path(dir: &Path, offer: &UpdateOffer) -> PathBuf {
    dir.join(format!("{}.raucb", offer.release))
}

/// The finished, checked download of `offer`, if one is on disk (a restart or a power cut
/// between the download and the install must not fetch it again: the data partition may not
/// hold two copies).
pub fn finished(dir: &Path, offer: &UpdateOffer) -> Option<PathBuf> {
    let done = final_path(dir, offer);
    std::fs::metadata(&done)
        .is_ok_and(|m| m.len() == offer.bundle_size)
        .then_some(done)
}

/// Bytes already downloaded for `offer` (the part, or the whole finished file).
pub fn have(dir: &Path, offer: &UpdateOffer) -> u64 {
    if std::fs::metadata(final_path(dir, offer)).is_ok() {
        return offer.bundle_size;
    }
    std::fs::metadata(part_path(dir, offer))
        .map(|m| m.len())
        .unwrap_or(0)
}

/// One attempt: continue the part from its length to the end (or until the connection
/// fails). `progress(have)` after each frame; `max_rate` in bytes/s. An error comes with the
/// bytes received (and kept) before it.
pub async fn attempt(
    client: &mut HubClient,
    dir: &Path,
    offer: &UpdateOffer,
    frame_timeout: Duration,
    max_rate: Option<u64>,
    progress: impl FnMut(u64),
) -> Result<Fetched, (DownloadError, u64)> {
    let mut received = 0u64;
    attempt_counted(
        client,
        dir,
        offer,
        frame_timeout,
        max_rate,
        progress,
        &mut received,
    )
    .await
    .map_err(|e| (e, received))
}

async fn attempt_counted(
    client: &mut HubClient,
    dir: &Path,
    offer: &UpdateOffer,
    frame_timeout: Duration,
    max_rate: Option<u64>,
    mut progress: impl FnMut(u64),
    received: &mut u64,
) -> Result<Fetched, DownloadError> {
    let fatal = |what: &str, e: std::io::Error| DownloadError::Fatal(format!("{what}: {e}"));
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|e| fatal("download folder", e))?;
    let part = part_path(dir, offer);
    let mut have = tokio::fs::metadata(&part)
        .await
        .map(|m| m.len())
        .unwrap_or(0);
    if have > offer.bundle_size {
        have = 0;
    }
    if have == offer.bundle_size {
        return Ok(Fetched { received: 0, have });
    }
    let response = client
        .get_streaming(&offer.bundle_path, (have > 0).then_some(have))
        .await
        .map_err(transient)?;
    let status = response.status();
    let start = match status {
        StatusCode::PARTIAL_CONTENT => {
            let range = response
                .headers()
                .get(hyper::header::CONTENT_RANGE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let expected = format!(
                "bytes {have}-{}/{}",
                offer.bundle_size - 1,
                offer.bundle_size
            );
            if range != expected {
                return Err(DownloadError::Bad(format!(
                    "the hub answered Content-Range {range:?} to a request for {expected:?}"
                )));
            }
            have
        }
        // The whole file: the hub ignored the range (allowed); start over.
        StatusCode::OK => 0,
        StatusCode::NOT_FOUND | StatusCode::GONE => {
            return Err(DownloadError::Fatal(format!(
                "release {} is no longer on the hub (HTTP {status})",
                offer.release
            )))
        }
        StatusCode::RANGE_NOT_SATISFIABLE => {
            // Our part is longer than the hub's file: it cannot be this release's.
            return Err(DownloadError::Bad(
                "the hub's file is shorter than what was already downloaded".into(),
            ));
        }
        other => {
            return Err(DownloadError::Transient(format!(
                "the hub answered HTTP {other} to the download"
            )))
        }
    };
    let file = tokio::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(false)
        .open(&part)
        .await
        .map_err(|e| fatal("part file", e))?;
    file.set_len(start)
        .await
        .map_err(|e| fatal("part file", e))?;
    let mut file = tokio::io::BufWriter::with_capacity(1 << 20, {
        use tokio::io::AsyncSeekExt;
        let mut f = file;
        f.seek(std::io::SeekFrom::Start(start))
            .await
            .map_err(|e| fatal("part file", e))?;
        f
    });
    let mut at = start;
    let mut since_sync = 0u64;
    let began = Instant::now();
    let mut body = response.into_body();
    let outcome = loop {
        let frame = match tokio::time::timeout(frame_timeout, body.frame()).await {
            Err(_) => {
                break Err(DownloadError::Transient(format!(
                    "the download stalled for {} s",
                    frame_timeout.as_secs()
                )))
            }
            Ok(None) => break Ok(()),
            Ok(Some(Err(e))) => {
                break Err(DownloadError::Transient(format!(
                    "the download broke off: {}",
                    crate::oneline(&e.to_string())
                )))
            }
            Ok(Some(Ok(frame))) => frame,
        };
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        let data: Bytes = data;
        if at + data.len() as u64 > offer.bundle_size {
            break Err(DownloadError::Bad(
                "the hub sent more bytes than the release has".into(),
            ));
        }
        if let Err(e) = file.write_all(&data).await {
            break Err(fatal("writing the part file", e));
        }
        at += data.len() as u64;
        *received += data.len() as u64;
        since_sync += data.len() as u64;
        if since_sync >= SYNC_EVERY {
            since_sync = 0;
            if let Err(e) = sync(&mut file).await {
                break Err(fatal("syncing the part file", e));
            }
        }
        progress(at);
        if let Some(rate) = max_rate {
            // Sleep until the average since the start of this attempt is back under the cap.
            let due = Duration::from_secs_f64(*received as f64 / rate as f64);
            let elapsed = began.elapsed();
            if due > elapsed {
                tokio::time::sleep(due - elapsed).await;
            }
        }
    };
    // Keep what arrived, whatever ended the attempt.
    sync(&mut file)
        .await
        .map_err(|e| fatal("syncing the part file", e))?;
    outcome?;
    Ok(Fetched {
        received: *received,
        have: at,
    })
}

async fn sync(file: &mut tokio::io::BufWriter<tokio::fs::File>) -> std::io::Result<()> {
    file.flush().await?;
    file.get_mut().sync_data().await
}

/// Checks a complete part against the offer and renames it to the final path. A wrong digest
/// deletes the part (its bytes cannot be trusted anywhere).
pub async fn finish(dir: &Path, offer: &UpdateOffer) -> Result<PathBuf, DownloadError> {
    let done = final_path(dir, offer);
    if tokio::fs::metadata(&done).await.is_ok() {
        return Ok(done);
    }
    let part = part_path(dir, offer);
    let (path, expected) = (part.clone(), offer.bundle_sha256.clone());
    let digest = tokio::task::spawn_blocking(move || -> std::io::Result<(u64, String)> {
        let mut f = std::fs::File::open(&path)?;
        let mut h = Sha256::new();
        let n = std::io::copy(&mut f, &mut h)?;
        Ok((n, hex::encode(h.finalize())))
    })
    .await
    .map_err(|e| DownloadError::Fatal(format!("digest task: {e}")))?
    .map_err(|e| DownloadError::Fatal(format!("reading the download: {e}")))?;
    if digest != (offer.bundle_size, expected) {
        let _ = tokio::fs::remove_file(&part).await;
        return Err(DownloadError::Bad(format!(
            "the downloaded bundle ({} bytes, sha256 {}) is not release {} ({} bytes, sha256 {})",
            digest.0, digest.1, offer.release, offer.bundle_size, offer.bundle_sha256
        )));
    }
    tokio::fs::rename(&part, &done)
        .await
        .map_err(|e| DownloadError::Fatal(format!("renaming the download: {e}")))?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(done)
}

fn transient(e: UploadError) -> DownloadError {
    DownloadError::Transient(crate::oneline(&e.to_string()))
}
