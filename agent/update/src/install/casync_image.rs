//! Writing a casync image (`.caibx` in the bundle, chunks in a store folder) into its slot,
//! seeded from the booted group's slot of the same class, as RAUC does with `casync extract
//! --seed`. Every chunk is verified against its id before it is written (outpost-casync), and
//! the whole slot content must then match the manifest's size and sha256, like a plain image.

use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read, Seek, SeekFrom, Write};

use outpost_bundle::VerifiedBundle;
use outpost_casync::{extract, plan, Index, SeedMap};
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
    let mut seeds = SeedMap::new();
    let mut seed_files = Vec::new();
    if let Some(seed) = &src.seed {
        // A seed that cannot be read only costs bandwidth: every chunk then comes from the store.
        if let Ok(f) = File::open(seed) {
            let reader = f
                .try_clone()
                .map_err(|e| format!("seed {}: {e}", seed.display()))?;
            seeds
                .add_seed(
                    BufReader::with_capacity(1 << 20, reader),
                    index.sizes,
                    index.digest(),
                    |_| {},
                )
                .map_err(|e| format!("reading the seed {}: {e}", seed.display()))?;
            seed_files.push(f);
        }
    }
    let planned = plan(&index, &seeds);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&t.device)
        .map_err(|e| format!("opening {}: {e}", t.device.display()))?;
    let mut out = Hashing {
        file,
        hasher: Sha256::new(),
        hashed: 0,
    };
    let store = src.store.clone();
    let stats = extract(
        &index,
        &planned,
        &mut seed_files,
        |id| std::fs::read(store.join(id.store_path())),
        &mut out,
        on_bytes,
    )
    .map_err(|e| format!("casync image {}: {e}", t.filename))?;
    let digest: [u8; 32] = out.hasher.finalize().into();
    if out.hashed != t.size || digest != t.sha256 {
        return Err(format!(
            "the slot content ({} bytes) does not match the manifest's size and sha256",
            out.hashed
        ));
    }
    out.file
        .sync_all()
        .map_err(|e| format!("syncing {}: {e}", t.device.display()))?;
    let _ = stats; // seeded/fetched figures: not part of the install report yet
    Ok(t.size)
}

/// The slot file, hashing every byte written in order (extraction writes sequentially from
/// offset 0; it only seeks back to re-read a repeated chunk and then returns).
struct Hashing {
    file: File,
    hasher: Sha256,
    hashed: u64,
}

impl Write for Hashing {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let pos = self.file.stream_position()?;
        if pos != self.hashed {
            return Err(std::io::Error::other(
                "casync extraction wrote out of order",
            ));
        }
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.hashed += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

impl Read for Hashing {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.file.read(buf)
    }
}

impl Seek for Hashing {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        self.file.seek(pos)
    }
}
