//! Compatibility with the real `casync` (Debian's casync 2), both ways: our index of a file
//! equals `casync make`'s byte for byte; chunks from a store `casync make` wrote rebuild the
//! file through our index reader and chunk verification; `casync extract` rebuilds the file
//! from an index and a store that we wrote.

use std::path::Path;
use std::process::Command;

use outpost_casync::{
    compress, decompress_verified, make_index, ChunkSizes, Index, BLOB_DEFAULT_FLAGS,
};

/// Deterministic, incompressible-ish bytes with some repeated regions (so that chunks repeat).
fn sample(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    // A repeated 300 KiB region: content-defined chunking finds the same chunks twice.
    if len > 2 << 20 {
        let (a, b) = out.split_at_mut(1 << 20);
        b[..300 << 10].copy_from_slice(&a[..300 << 10]);
    }
    out
}

fn casync(args: &[&str], dir: &Path) {
    let out = Command::new("casync")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run casync (apt-get install casync)");
    assert!(
        out.status.success(),
        "casync {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn ours(data: &[u8], flags: u64, sizes: ChunkSizes, store: Option<&Path>) -> Index {
    make_index::<_, std::io::Error>(data, flags, sizes, |id, chunk| {
        if let Some(store) = store {
            let path = store.join(id.store_path());
            std::fs::create_dir_all(path.parent().unwrap())?;
            std::fs::write(path, compress(chunk))?;
        }
        Ok(())
    })
    .unwrap()
}

fn rebuild(index: &Index, store: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    for c in index.chunks() {
        let file = std::fs::read(store.join(c.id.store_path())).unwrap();
        out.extend(decompress_verified(&file, &c.id, c.len, index.digest()).unwrap());
    }
    out
}

#[test]
fn our_index_is_byte_identical_to_casync_make_and_reads_its_store() {
    let dir = tempfile::tempdir().unwrap();
    for (name, len) in [("big", 5 << 20), ("small", 10_000), ("odd", 777_777)] {
        let data = sample(len, len as u64);
        std::fs::write(dir.path().join(name), &data).unwrap();
        let idx = format!("{name}.caibx");
        casync(&["make", "--store=store", &idx, name], dir.path());
        let theirs = std::fs::read(dir.path().join(&idx)).unwrap();
        let mine = ours(&data, BLOB_DEFAULT_FLAGS, ChunkSizes::default(), None);
        assert_eq!(
            mine.to_bytes(),
            theirs,
            "{name}: index differs from casync make"
        );
        let parsed = Index::parse(&theirs).unwrap();
        assert_eq!(parsed, mine);
        assert_eq!(parsed.blob_size(), len as u64);
        assert_eq!(rebuild(&parsed, &dir.path().join("store")), data, "{name}");
    }
}

#[test]
fn other_chunk_sizes_and_sha256_ids_agree_with_casync() {
    let dir = tempfile::tempdir().unwrap();
    let data = sample(3 << 20, 7);
    std::fs::write(dir.path().join("blob"), &data).unwrap();
    for (spec, sizes, digest) in [
        (
            "4096:16384:65536",
            ChunkSizes::new(4096, 16384, 65536).unwrap(),
            "sha512-256",
        ),
        ("65536", ChunkSizes::default(), "sha256"),
        (
            "8192:8192:8192",
            ChunkSizes::new(8192, 8192, 8192).unwrap(),
            "sha512-256",
        ),
    ] {
        let idx = format!("{}-{digest}.caibx", spec.replace(':', "-"));
        casync(
            &[
                "make",
                &format!("--chunk-size={spec}"),
                &format!("--digest={digest}"),
                "--store=store",
                &idx,
                "blob",
            ],
            dir.path(),
        );
        let theirs = Index::parse(&std::fs::read(dir.path().join(&idx)).unwrap()).unwrap();
        assert_eq!(theirs.sizes, sizes, "{spec}");
        let mine = ours(&data, theirs.flags, sizes, None);
        assert_eq!(mine, theirs, "{spec} {digest}: boundaries or ids differ");
        assert_eq!(rebuild(&theirs, &dir.path().join("store")), data);
    }
}

#[test]
fn casync_extract_rebuilds_the_file_from_our_index_and_store() {
    let dir = tempfile::tempdir().unwrap();
    let data = sample(4 << 20, 99);
    let store = dir.path().join("our.castr");
    let index = ours(
        &data,
        BLOB_DEFAULT_FLAGS,
        ChunkSizes::default(),
        Some(&store),
    );
    assert!(index.len() > 20, "{} chunks", index.len());
    std::fs::write(dir.path().join("our.caibx"), index.to_bytes()).unwrap();
    casync(
        &["extract", "--store=our.castr", "our.caibx", "out"],
        dir.path(),
    );
    assert_eq!(std::fs::read(dir.path().join("out")).unwrap(), data);
}
