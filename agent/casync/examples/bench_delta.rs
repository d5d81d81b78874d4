//! `scripts/bench delta [SIZE_MIB]`: a delta update of an ext4 image pair (v2 = v1 with about
//! 5% of its files changed), same run, same files:
//! - bytes our seeded extraction fetches (compressed chunks) vs the minimum for this chunking
//!   (the compressed chunks of v2 missing from v1) vs a full download (all of v2's chunks, and
//!   the raw image);
//! - wall time of our seeded extraction (indexing the seed included) vs the real
//!   `casync extract --seed` with the same seed and store.

use std::collections::HashSet;
use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use outpost_casync::{extract, plan, Index, SeedMap};

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn fill(dir: &Path, total: usize, version: u64) -> usize {
    std::fs::create_dir_all(dir).unwrap();
    let (mut written, mut i, mut changed) = (0usize, 0u64, 0usize);
    while written < total {
        let len = 64 * 1024 + (i as usize * 7919) % (512 * 1024);
        let v = if i % 20 == 3 { version } else { 1 };
        if v != 1 {
            changed += len;
        }
        let mut x = (i + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ v.wrapping_mul(0x1234_5678);
        let body: Vec<u8> = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        std::fs::write(dir.join(format!("f{i:05}.bin")), body).unwrap();
        written += len;
        i += 1;
    }
    changed
}

fn mib(b: u64) -> String {
    format!("{:.2} MiB", b as f64 / 1048576.0)
}

fn main() {
    let size: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(256);
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let payload = size * 1024 * 1024 * 7 / 10;
    fill(&d.join("v1"), payload, 1);
    let changed = fill(&d.join("v2"), payload, 2);
    outpost_testkit::ext4::image(&d.join("v1"), &d.join("v1.img"), size);
    outpost_testkit::ext4::image(&d.join("v2"), &d.join("v2.img"), size);
    run(Command::new("casync")
        .args(["make", "--store=store", "v2.caibx", "v2.img"])
        .current_dir(d));
    let index = Index::parse(&std::fs::read(d.join("v2.caibx")).unwrap()).unwrap();
    let v2 = std::fs::read(d.join("v2.img")).unwrap();
    let store = d.join("store");
    let chunk_file = |id: &outpost_casync::ChunkId| store.join(id.store_path());
    let file_len = |id: &outpost_casync::ChunkId| std::fs::metadata(chunk_file(id)).unwrap().len();

    // Ours: index the seed, plan, extract (chunks from the local store, as if fetched).
    let t = Instant::now();
    let mut seeds = SeedMap::new();
    seeds
        .add_seed(
            BufReader::with_capacity(1 << 20, File::open(d.join("v1.img")).unwrap()),
            index.sizes,
            index.digest(),
            |_| {},
        )
        .unwrap();
    let indexed = t.elapsed();
    let p = plan(&index, &seeds);
    let mut out = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(d.join("ours.img"))
        .unwrap();
    let stats = extract(
        &index,
        &p,
        &mut [File::open(d.join("v1.img")).unwrap()],
        |id| std::fs::read(chunk_file(id)),
        &mut out,
        |_| {},
    )
    .unwrap();
    out.sync_all().unwrap();
    let ours = t.elapsed();
    assert!(
        std::fs::read(d.join("ours.img")).unwrap() == v2,
        "our output differs from v2"
    );

    // casync extract with the same seed and store.
    let t = Instant::now();
    run(Command::new("casync")
        .args([
            "extract",
            "--store=store",
            "--seed=v1.img",
            "v2.caibx",
            "theirs.img",
        ])
        .current_dir(d));
    let theirs = t.elapsed();
    assert!(
        std::fs::read(d.join("theirs.img")).unwrap() == v2,
        "casync's output differs"
    );

    // The minimum: compressed chunks of v2 not in v1 (each once).
    let mut missing = HashSet::new();
    let minimum: u64 = index
        .chunks()
        .filter(|c| seeds.get(&c.id).is_none() && missing.insert(c.id))
        .map(|c| file_len(&c.id))
        .sum();
    let mut all = HashSet::new();
    let full_chunks: u64 = index
        .chunks()
        .filter(|c| all.insert(c.id))
        .map(|c| file_len(&c.id))
        .sum();
    println!(
        "delta update of a {size} MiB ext4 image, {} of files changed ({} chunks, {} distinct)",
        mib(changed as u64),
        index.len(),
        all.len()
    );
    println!(
        "  fetched by ours:            {} in {} chunks",
        mib(stats.fetched_bytes),
        stats.fetched_chunks
    );
    println!(
        "  minimum for this chunking:  {} ({} chunks)   ratio {:.3}",
        mib(minimum),
        missing.len(),
        stats.fetched_bytes as f64 / minimum.max(1) as f64
    );
    println!("  full casync download:       {}", mib(full_chunks));
    println!("  raw image:                  {}", mib(v2.len() as u64));
    println!("  from the seed:              {}", mib(stats.seeded_bytes));
    println!(
        "  seeded extraction, ours:    {:.2} s (indexing the seed {:.2} s)",
        ours.as_secs_f64(),
        indexed.as_secs_f64()
    );
    println!(
        "  casync extract --seed:      {:.2} s   (ours {:.2}x faster)",
        theirs.as_secs_f64(),
        theirs.as_secs_f64() / ours.as_secs_f64()
    );
}
