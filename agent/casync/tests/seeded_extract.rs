//! Delta extraction: image v2 is v1 (an ext4 image made with `mkfs.ext4 -d`) with about 5% of
//! its files changed. With v1 as the seed, our extraction of v2 from a store made by the real
//! `casync make` fetches only the chunks missing from the seed, verifies every chunk, and
//! writes the same bytes as `casync extract --seed`.

use std::io::Cursor;
use std::path::Path;
use std::process::Command;

use outpost_casync::{
    extract, extract_scan, make_index, plan, ChunkId, ChunkSizes, Index, SeedMap,
    BLOB_DEFAULT_FLAGS,
};

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn fill(dir: &Path, files: usize, version: u64) {
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..files {
        // Every 20th file changes between versions: ~5% of the files.
        let v = if i % 20 == 7 { version } else { 1 };
        let mut x = (i as u64 + 1) * 0x9e37_79b9 + v * 0x1234_5678_9abc;
        let body: Vec<u8> = (0..(16 << 10) + i * 97)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        std::fs::write(dir.join(format!("file-{i:04}.bin")), body).unwrap();
    }
}

#[test]
fn v1_seeds_most_of_v2_and_only_missing_chunks_are_fetched_and_verified() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    fill(&d.join("v1"), 400, 1);
    fill(&d.join("v2"), 400, 2);
    outpost_testkit::ext4::image(&d.join("v1"), &d.join("v1.img"), 48);
    outpost_testkit::ext4::image(&d.join("v2"), &d.join("v2.img"), 48);
    run(Command::new("casync")
        .args(["make", "--store=store.castr", "v2.caibx", "v2.img"])
        .current_dir(d));
    let index = Index::parse(&std::fs::read(d.join("v2.caibx")).unwrap()).unwrap();
    let v1 = std::fs::read(d.join("v1.img")).unwrap();
    let v2 = std::fs::read(d.join("v2.img")).unwrap();

    let mut seeds = SeedMap::new();
    seeds
        .add_seed(v1.as_slice(), index.sizes, index.digest(), |_| {})
        .unwrap();
    let plan = plan(&index, &seeds);
    // Everything not seeded is fetched once per distinct chunk (repeats are copied locally).
    let not_seeded = v2.len() as u64 - plan.seeded_bytes;
    assert!(plan.fetch_bytes <= not_seeded && not_seeded - plan.fetch_bytes <= repeated(&index));
    assert!(
        plan.fetch_bytes * 4 < v2.len() as u64,
        "fetch {} of {}",
        plan.fetch_bytes,
        v2.len()
    );

    eprintln!(
        "v2: {} bytes in {} chunks; from the v1 seed {} bytes; to fetch {} bytes in {} chunks",
        v2.len(),
        index.len(),
        plan.seeded_bytes,
        plan.fetch_bytes,
        plan.fetch.len()
    );
    let mut fetched: Vec<ChunkId> = Vec::new();
    let mut out = Cursor::new(Vec::new());
    let stats = extract(
        &index,
        &plan,
        &mut [Cursor::new(&v1)],
        |id| {
            fetched.push(*id);
            std::fs::read(d.join("store.castr").join(id.store_path()))
        },
        &mut out,
        |_| {},
    )
    .unwrap();
    assert_eq!(out.into_inner(), v2);
    assert_eq!(
        fetched, plan.fetch,
        "fetched exactly the planned chunks, once each"
    );
    assert_eq!(stats.seeded_bytes, plan.seeded_bytes);
    assert_eq!(stats.stale_seed_chunks, 0);

    // The one-pass extraction (seed chunked and written in the same pass) fetches the same
    // chunks and writes the same image.
    let mut fetched: Vec<ChunkId> = Vec::new();
    let out = std::sync::Mutex::new(Vec::new());
    let mut progressed = 0;
    let scanned = extract_scan(
        &index,
        Some(v1.as_slice()),
        |id| {
            fetched.push(*id);
            std::fs::read(d.join("store.castr").join(id.store_path()))
        },
        &out,
        |n| progressed = n,
    )
    .unwrap();
    assert_eq!(out.into_inner().unwrap(), v2);
    assert_eq!(fetched, plan.fetch, "the same chunks, once each");
    assert_eq!(scanned.seeded_bytes, plan.seeded_bytes);
    assert_eq!(scanned.fetched_bytes, stats.fetched_bytes);
    assert_eq!(progressed, v2.len() as u64);

    // casync extract with the same seed and store writes the same image.
    run(Command::new("casync")
        .args([
            "extract",
            "--store=store.castr",
            "--seed=v1.img",
            "v2.caibx",
            "by-casync.img",
        ])
        .current_dir(d));
    assert_eq!(std::fs::read(d.join("by-casync.img")).unwrap(), v2);
}

/// Bytes of chunks that repeat an earlier chunk of the same index.
fn repeated(index: &Index) -> u64 {
    let mut seen = std::collections::HashSet::new();
    index
        .chunks()
        .filter(|c| !seen.insert(c.id))
        .map(|c| c.len)
        .sum()
}

/// 3 MiB of non-repeating data, chunked into a store (`<tmp>/store`) like `casync make`.
fn three_mib_in_a_store() -> (tempfile::TempDir, Vec<u8>, Index) {
    let data: Vec<u8> = (0..3u32 << 18)
        .flat_map(|i| (i.wrapping_mul(2_654_435_761)).to_le_bytes())
        .collect();
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let index = make_index::<_, std::io::Error>(
        data.as_slice(),
        BLOB_DEFAULT_FLAGS,
        ChunkSizes::default(),
        |id, chunk| {
            let p = store.join(id.store_path());
            std::fs::create_dir_all(p.parent().unwrap())?;
            std::fs::write(p, outpost_casync::compress(chunk))
        },
    )
    .unwrap();
    (tmp, data, index)
}

#[test]
fn a_corrupt_chunk_or_a_changed_seed_is_never_written() {
    let (tmp, data, index) = three_mib_in_a_store();
    let store = tmp.path().join("store");
    // The seed changed after it was indexed: its chunks are re-fetched, not trusted.
    let mut seeds = SeedMap::new();
    seeds
        .add_seed(data.as_slice(), index.sizes, index.digest(), |_| {})
        .unwrap();
    let plan = plan(&index, &seeds);
    assert!(plan.fetch.is_empty());
    let mut changed = data.clone();
    changed[100_000] ^= 1;
    let mut out = Cursor::new(Vec::new());
    let stats = extract(
        &index,
        &plan,
        &mut [Cursor::new(&changed)],
        |id| std::fs::read(store.join(id.store_path())),
        &mut out,
        |_| {},
    )
    .unwrap();
    assert_eq!(stats.stale_seed_chunks, 1);
    assert_eq!(out.into_inner(), data);

    // A store chunk with other content: extraction stops before writing it.
    let victim = index.chunks().nth(2).unwrap();
    let other = index.chunks().nth(3).unwrap();
    std::fs::copy(
        store.join(other.id.store_path()),
        store.join(victim.id.store_path()),
    )
    .unwrap();
    let nothing = SeedMap::new();
    let plan = outpost_casync::plan(&index, &nothing);
    let mut out = Cursor::new(Vec::new());
    let err = extract(
        &index,
        &plan,
        &mut [] as &mut [Cursor<Vec<u8>>],
        |id| std::fs::read(store.join(id.store_path())),
        &mut out,
        |_| {},
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains(&victim.id.to_hex())
            && (msg.contains("wrong content") || msg.contains("decompress")),
        "{msg}"
    );
    assert_eq!(
        out.into_inner().len() as u64,
        victim.start,
        "nothing of the bad chunk written"
    );
}

#[test]
fn one_pass_extraction_writes_only_verified_chunks() {
    let (tmp, data, index) = three_mib_in_a_store();
    let store = tmp.path().join("store");
    let read = |id: &ChunkId| std::fs::read(store.join(id.store_path()));
    // A seed with one byte changed: the chunk around it does not match and is fetched.
    let mut changed = data.clone();
    changed[100_000] ^= 1;
    let out = std::sync::Mutex::new(Vec::new());
    let stats = extract_scan(&index, Some(changed.as_slice()), read, &out, |_| {}).unwrap();
    assert_eq!(stats.fetched_chunks, 1);
    assert_eq!(out.into_inner().unwrap(), data);

    // A store chunk with other content (the one the seed lacks): it is never written, and
    // the extraction fails.
    let victim = index
        .chunks()
        .find(|c| c.start <= 100_000 && 100_000 < c.start + c.len)
        .unwrap();
    let other = index.chunks().find(|c| c.id != victim.id).unwrap();
    std::fs::copy(
        store.join(other.id.store_path()),
        store.join(victim.id.store_path()),
    )
    .unwrap();
    let marker = 0xa5u8;
    let out = std::sync::Mutex::new(vec![marker; data.len()]);
    let err = extract_scan(&index, Some(changed.as_slice()), read, &out, |_| {}).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains(&victim.id.to_hex())
            && ["wrong content", "decompress", "the index says"]
                .iter()
                .any(|why| msg.contains(why)),
        "{msg}"
    );
    let range = victim.start as usize..(victim.start + victim.len) as usize;
    let out = out.into_inner().unwrap();
    assert!(
        out[range.clone()].iter().all(|&b| b == marker),
        "nothing of the bad chunk written"
    );
    // Without a seed everything comes from the store; the bad chunk stops it the same way.
    let out = std::sync::Mutex::new(vec![marker; data.len()]);
    assert!(extract_scan(&index, None::<&[u8]>, read, &out, |_| {}).is_err());
    assert!(out.into_inner().unwrap()[range]
        .iter()
        .all(|&b| b == marker));
}
