//! Writing a casync image (`.caibx` in the bundle, chunks in a store folder) into its slot,
//! seeded from the booted group's slot of the same class, as RAUC does with `casync extract
//! --seed`. Every chunk is verified against its id before it is written (outpost-casync's
//! one-pass [`extract_scan`]), and the whole slot content, read back, must then match the
//! manifest's size and sha256, like a plain image.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;

use outpost_bundle::VerifiedBundle;
use outpost_casync::{extract_scan, Index};
use sha2::{Digest, Sha256};

use super::plan::{CasyncSource, ImageTarget};

/// Largest `.caibx` read from a bundle (2^24 chunks of 40 bytes, plus headers).
const MAX_INDEX: usize = (1 << 24) * 40 + 4096;

/// Writes the image; returns the bytes written. Errors are one line for the install error.
pub fn write(
    bundle: &VerifiedBundle,
    t: &ImageTarget,
    src: &CasyncSource,
    on_bytes: &mut dyn FnMut(u64),
) -> Result<u64, String> {
    let bytes = bundle
        .read_file(&t.filename, MAX_INDEX)
        .map_err(|e| format!("reading {}: {e}", t.filename))?;
    let index = Index::parse(&bytes).map_err(|e| format!("{}: {e}", t.filename))?;
    if index.blob_size() != t.size {
        return Err(format!(
            "{} describes {} bytes, the manifest says {}",
            t.filename,
            index.blob_size(),
            t.size
        ));
    }
    // A seed that cannot be opened only costs bandwidth: every chunk then comes from the store.
    let seed = src.seed.as_ref().and_then(|p| File::open(p).ok());
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&t.device)
        .map_err(|e| format!("opening {}: {e}", t.device.display()))?;
    let store = src.store.clone();
    // One pass over the seed: each seed chunk is hashed once and, if the image has it, written
    // from those same bytes; the rest comes from the store, verified before it is written.
    let mut reported = 0u64;
    extract_scan(
        &index,
        seed,
        |id| std::fs::read(store.join(id.store_path())),
        &file,
        |done| {
            on_bytes(done - reported);
            reported = done;
        },
    )
    .map_err(|e| format!("casync image {}: {e}", t.filename))?;
    // Chunks landed in seed order: the slot's digest is taken by reading it back.
    let (hashed, digest) = sha256_of(&file, t.size)
        .map_err(|e| format!("reading back {}: {e}", t.device.display()))?;
    if hashed != t.size || digest != t.sha256 {
        return Err(format!(
            "the slot content ({hashed} bytes) does not match the manifest's size and sha256"
        ));
    }
    file.sync_all()
        .map_err(|e| format!("syncing {}: {e}", t.device.display()))?;
    Ok(t.size)
}

/// The sha256 of the first `size` bytes of `file` (fewer if it ends early), and their count.
fn sha256_of(file: &File, size: u64) -> std::io::Result<(u64, [u8; 32])> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut at = 0u64;
    while at < size {
        let want = (size - at).min(buf.len() as u64) as usize;
        let n = match file.read_at(&mut buf[..want], at) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        at += n as u64;
    }
    Ok((at, hasher.finalize().into()))
}
