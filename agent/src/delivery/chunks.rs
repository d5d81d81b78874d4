//! Chunks of a casync store on the hub (`/v1/releases/<id>/store/`), fetched ahead of an
//! extraction: `parallel` workers, each on its own kept-alive mTLS connection, every chunk
//! decompressed and checked against its id before it is kept in the local cache
//! (`<cache>/<4 hex>/<id>.cacnk`, written to a temporary name and renamed). Chunks already in
//! the cache are not fetched again, so an interrupted update resumes where it stopped.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use outpost_casync::{decompress_verified, ChunkId, Digest};

use crate::uploader::client::HubClient;

/// Largest chunk file accepted from the hub (casync's maximum chunk size, compressed or not).
const MAX_CHUNK_FILE: usize = 128 << 20;
/// Attempts per chunk before the update fails on transient errors.
const ATTEMPTS: u32 = 8;
/// Bad (unverifiable) answers tolerated per chunk: one retry, in case the hub was mid-publish;
/// a store that keeps serving wrong bytes fails the update instead of looping.
const BAD_ANSWERS: u32 = 2;

/// What a prefetch did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PrefetchStats {
    /// Chunks found in the cache already (an earlier, interrupted run).
    pub cached: u64,
    pub fetched: u64,
    /// Compressed bytes received.
    pub bytes: u64,
    /// Answers that failed verification (refetched).
    pub corrupt: u64,
}

pub fn cache_path(cache: &Path, id: &ChunkId) -> PathBuf {
    cache.join(id.store_path())
}

/// Fetches `wanted` (distinct ids with their uncompressed lengths) into `cache`.
pub async fn prefetch(
    make_client: impl Fn() -> Result<HubClient, String> + Send + Sync + 'static,
    store_path: &str,
    wanted: Vec<(ChunkId, u64)>,
    digest: Digest,
    cache: &Path,
    parallel: usize,
    received: Arc<AtomicU64>,
) -> Result<PrefetchStats, String> {
    let queue = Arc::new(Mutex::new(wanted));
    let stats = Arc::new(Mutex::new(PrefetchStats::default()));
    let make_client = Arc::new(make_client);
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..parallel.max(1) {
        let (queue, stats, make_client) = (queue.clone(), stats.clone(), make_client.clone());
        let (cache, store_path, received) =
            (cache.to_path_buf(), store_path.to_owned(), received.clone());
        workers.spawn(async move {
            let mut client = make_client()?;
            loop {
                let next = queue.lock().unwrap_or_else(|p| p.into_inner()).pop();
                let Some((id, len)) = next else {
                    return Ok::<(), String>(());
                };
                let path = cache_path(&cache, &id);
                if tokio::fs::metadata(&path).await.is_ok() {
                    stats.lock().unwrap_or_else(|p| p.into_inner()).cached += 1;
                    continue;
                }
                one(
                    &mut client,
                    &store_path,
                    &id,
                    len,
                    digest,
                    &path,
                    &stats,
                    &received,
                )
                .await?;
            }
        });
    }
    while let Some(done) = workers.join_next().await {
        match done {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                workers.abort_all();
                return Err(e);
            }
            Err(e) => return Err(format!("chunk worker failed: {e}")),
        }
    }
    let stats = *stats.lock().unwrap_or_else(|p| p.into_inner());
    Ok(stats)
}

#[allow(clippy::too_many_arguments)]
async fn one(
    client: &mut HubClient,
    store_path: &str,
    id: &ChunkId,
    len: u64,
    digest: Digest,
    path: &Path,
    stats: &Mutex<PrefetchStats>,
    received: &AtomicU64,
) -> Result<(), String> {
    let url = format!("{store_path}{}", id.store_path());
    let mut delay = Duration::from_millis(200);
    let mut last = String::new();
    let mut bad = 0;
    for _ in 0..ATTEMPTS {
        match client.get_keepalive(&url, MAX_CHUNK_FILE).await {
            Ok((status, body)) if status.as_u16() == 200 => {
                received.fetch_add(body.len() as u64, Ordering::Relaxed);
                let checked = tokio::task::block_in_place(|| {
                    decompress_verified(&body, id, len, digest).map(|_| ())
                });
                match checked {
                    Ok(()) => {
                        store(path, &body).await.map_err(|e| {
                            format!("cannot keep chunk {id} in {}: {e}", path.display())
                        })?;
                        let mut s = stats.lock().unwrap_or_else(|p| p.into_inner());
                        s.fetched += 1;
                        s.bytes += body.len() as u64;
                        return Ok(());
                    }
                    Err(e) => {
                        stats.lock().unwrap_or_else(|p| p.into_inner()).corrupt += 1;
                        last = format!("the hub sent a bad chunk: {e}");
                        bad += 1;
                        if bad >= BAD_ANSWERS {
                            break;
                        }
                    }
                }
            }
            Ok((status, _)) if status.as_u16() == 404 => {
                return Err(format!("chunk {id} is not in the hub's store"));
            }
            Ok((status, _)) => last = format!("the hub answered HTTP {status} for chunk {id}"),
            Err(e) => last = crate::oneline(&e.to_string()),
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(30));
    }
    Err(format!("chunk {id}: {last}"))
}

async fn store(path: &Path, body: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        tokio::fs::create_dir_all(dir).await?;
    }
    let tmp = path.with_extension("tmp");
    tokio::fs::write(&tmp, body).await?;
    tokio::fs::rename(&tmp, path).await
}
