//! Delta delivery: a casync bundle (`rauc convert` output) is small (its images are `.caibx`
//! indexes); its chunks stay on the hub. After the bundle is downloaded and verified, the
//! chunks the booted slot lacks are fetched into `<release>.castr` beside the downloaded bundle
//! — exactly where the installer looks for the store — and the install then copies everything
//! else from the booted slot.

use std::path::{Path, PathBuf};

use outpost_bundle::Bundle;
use outpost_casync::{plan, ChunkId, Digest, Index, SeedMap};
use outpost_update::Booted;

use crate::config::UpdateConfig;
use crate::update::context;

/// Chunks to fetch (id, uncompressed length) and how their ids are computed.
pub type Missing = (Vec<(ChunkId, u64)>, Digest);

/// The chunks to fetch for every casync image of `bundle`, and their digest (one per bundle
/// in practice); `None` when the bundle has no casync image. Blocking: verifies the bundle and
/// reads the seed slots.
pub fn missing_chunks(cfg: &UpdateConfig, bundle: &Path) -> Result<Option<Missing>, String> {
    let keyring = context::keyring(cfg).map_err(|e| e.to_string())?;
    let verified = Bundle::open(bundle, &keyring, &context::verify_options(cfg))
        .map_err(|e| format!("the downloaded bundle does not verify: {e}"))?;
    let booted = context::booted(cfg).map_err(|e| e.to_string())?;
    let mut wanted = Vec::new();
    let mut digest = None;
    for image in &verified.info().images {
        let Some(name) = image.filename.as_deref().filter(|n| n.ends_with(".caibx")) else {
            continue;
        };
        let bytes = verified
            .read_file(name, 1 << 30)
            .map_err(|e| format!("{name}: {e}"))?;
        let index = Index::parse(&bytes).map_err(|e| format!("{name}: {e}"))?;
        let mut seeds = SeedMap::new();
        if let Some(seed) = seed_of(cfg, &booted, &image.class) {
            if let Ok(f) = std::fs::File::open(&seed) {
                seeds
                    .add_seed(
                        std::io::BufReader::with_capacity(1 << 20, f),
                        index.sizes,
                        index.digest(),
                        |_| {},
                    )
                    .map_err(|e| format!("reading the seed {}: {e}", seed.display()))?;
            }
        }
        let lengths: std::collections::HashMap<ChunkId, u64> =
            index.chunks().map(|c| (c.id, c.len)).collect();
        let planned = plan(&index, &seeds);
        wanted.extend(planned.fetch.iter().map(|id| (*id, lengths[id])));
        digest = Some(index.digest());
    }
    Ok(digest.map(|d| (wanted, d)))
}

/// The booted group's slot of `class` (the seed), as the installer picks it.
fn seed_of(cfg: &UpdateConfig, booted: &Booted, class: &str) -> Option<PathBuf> {
    cfg.system
        .slots
        .iter()
        .find(|s| s.id.class() == class && cfg.system.slots.in_booted_group(s, booted))
        .map(|s| s.device.clone())
}

/// Where the chunk store of a downloaded bundle goes (the installer's convention).
pub fn store_beside(bundle: &Path) -> PathBuf {
    bundle.with_extension("castr")
}
