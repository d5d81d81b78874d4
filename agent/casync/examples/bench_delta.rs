//! `scripts/bench delta [SIZE_MIB]`: a delta update of an ext4 image pair (v2 = v1 with about
//! 5% of its files changed), same run, same files:
//! - bytes our seeded extraction fetches (compressed chunks) vs the minimum for this chunking
//!   (the compressed chunks of v2 missing from v1) vs a full download (all of v2's chunks, and
//!   the raw image);
//! - wall time of our seeded extraction (chunking the seed included) vs the real
//!   `casync extract --seed` with the same seed and store.
//!
//! Fairness: both read the same page-cached seed and store and write a new file in the same
//! folder. `casync extract` does not fsync its output (it writes a temporary file and renames
//! it); ours is fsynced, as an install must be. So casync's time is taken twice: as casync
//! returns, and after an fsync of its output (the same end state as ours: data durable); the
//! ratio uses the durable figures. Each is run RUNS times (default 3), interleaved, after a
//! `sync`, and the best time counts (a shared machine: the best run is the least disturbed).
//! The row "seed index known" is the same extraction when the seed's own index is at hand
//! (e.g. kept from the install that wrote it): the seed is then not chunked, only read and
//! verified chunk by chunk.
//!
//!     [RUNS=N] [KEEP=DIR] bench_delta [SIZE_MIB]   (KEEP: make or reuse the fixtures there)

use std::collections::HashSet;
use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use outpost_casync::{extract, extract_scan, plan, ExtractStats, Index, SeedMap};

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

/// Makes the image pair, v2's store and index (and v1's index) in `d`, unless already there.
fn fixtures(d: &Path, size: usize) -> u64 {
    let changed_file = d.join("changed");
    if let Ok(s) = std::fs::read_to_string(&changed_file) {
        return s.trim().parse().unwrap();
    }
    let payload = size * 1024 * 1024 * 7 / 10;
    fill(&d.join("v1"), payload, 1);
    let changed = fill(&d.join("v2"), payload, 2);
    outpost_testkit::ext4::image(&d.join("v1"), &d.join("v1.img"), size);
    outpost_testkit::ext4::image(&d.join("v2"), &d.join("v2.img"), size);
    run(Command::new("casync")
        .args(["make", "--store=store", "v2.caibx", "v2.img"])
        .current_dir(d));
    // v1's own index, as the install that wrote v1 would have kept it (chunks not stored).
    run(Command::new("casync")
        .args(["make", "--store=v1-store", "v1.caibx", "v1.img"])
        .current_dir(d));
    std::fs::remove_dir_all(d.join("v1-store")).unwrap();
    std::fs::write(changed_file, changed.to_string()).unwrap();
    changed as u64
}

/// CPU seconds (user + system) so far of this process (`self`) or of its waited-for children,
/// from /proc/self/stat (clock ticks of 10 ms).
fn cpu(children: bool) -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // Fields after the command name: state is field 3; utime 14, stime 15, cutime 16, cstime 17.
    let f: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    let at = |i: usize| f[i - 3].parse::<f64>().unwrap();
    let ticks = if children {
        at(16) + at(17)
    } else {
        at(14) + at(15)
    };
    ticks / 100.0
}

struct Ours {
    total: Duration,
    /// CPU seconds of the whole extraction (all threads), fsync included.
    cpu: f64,
    seed: Duration,
    extract: Duration,
    fsync: Duration,
    stats: ExtractStats,
}

/// Our seeded extraction of `index` into `d/ours.img`, from the seed `d/v1.img` (chunked, or
/// by its index when `seed_index` is given) and the store; ends with an fsync.
fn ours(d: &Path, index: &Index, seed_index: Option<&Index>) -> Ours {
    let store = d.join("store");
    let cpu0 = cpu(false);
    let t = Instant::now();
    let mut seeds = SeedMap::new();
    match seed_index {
        Some(i) => {
            seeds.add_indexed_seed(i);
        }
        None => {
            seeds
                .add_seed(
                    BufReader::with_capacity(1 << 20, File::open(d.join("v1.img")).unwrap()),
                    index.sizes,
                    index.digest(),
                    |_| {},
                )
                .unwrap();
        }
    }
    let seed = t.elapsed();
    let p = plan(index, &seeds);
    let mut out = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(d.join("ours.img"))
        .unwrap();
    let stats = extract(
        index,
        &p,
        &mut [File::open(d.join("v1.img")).unwrap()],
        |id| std::fs::read(store.join(id.store_path())),
        &mut out,
        |_| {},
    )
    .unwrap();
    let extracted = t.elapsed();
    out.sync_all().unwrap();
    let total = t.elapsed();
    Ours {
        total,
        cpu: cpu(false) - cpu0,
        seed,
        extract: extracted - seed,
        fsync: total - extracted,
        stats,
    }
}

/// Our one-pass seeded extraction (what an install does): the seed is chunked and each
/// chunk hashed once and written where the target wants it; then the rest is fetched.
fn ours_scan(d: &Path, index: &Index) -> Ours {
    let store = d.join("store");
    let cpu0 = cpu(false);
    let t = Instant::now();
    let out = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(d.join("ours.img"))
        .unwrap();
    let stats = extract_scan(
        index,
        Some(File::open(d.join("v1.img")).unwrap()),
        |id| std::fs::read(store.join(id.store_path())),
        &out,
        |_| {},
    )
    .unwrap();
    let extracted = t.elapsed();
    out.sync_all().unwrap();
    let total = t.elapsed();
    Ours {
        total,
        cpu: cpu(false) - cpu0,
        seed: Duration::ZERO,
        extract: extracted,
        fsync: total - extracted,
        stats,
    }
}

/// `casync extract --seed` into `d/theirs.img`: (as casync returns, after fsync of its output).
fn theirs(d: &Path) -> (Duration, Duration, f64) {
    let cpu0 = cpu(true);
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
    let returned = t.elapsed();
    File::open(d.join("theirs.img"))
        .unwrap()
        .sync_all()
        .unwrap();
    (returned, t.elapsed(), cpu(true) - cpu0)
}

fn same(a: &Path, b: &[u8]) -> bool {
    std::fs::read(a).unwrap() == b
}

fn main() {
    let size: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(256);
    let runs: usize = std::env::var("RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let tmp = tempfile::tempdir().unwrap();
    let d = match std::env::var_os("KEEP") {
        Some(k) => {
            std::fs::create_dir_all(&k).unwrap();
            std::path::PathBuf::from(k)
        }
        None => tmp.path().to_path_buf(),
    };
    let d = d.as_path();
    let changed = fixtures(d, size);
    let index = Index::parse(&std::fs::read(d.join("v2.caibx")).unwrap()).unwrap();
    let v1_index = Index::parse(&std::fs::read(d.join("v1.caibx")).unwrap()).unwrap();
    let v2 = std::fs::read(d.join("v2.img")).unwrap();
    let store = d.join("store");
    let file_len = |id: &outpost_casync::ChunkId| {
        std::fs::metadata(store.join(id.store_path()))
            .unwrap()
            .len()
    };
    // Everyone reads a cached seed and store.
    for p in ["v1.img", "v2.caibx"] {
        std::fs::read(d.join(p)).unwrap();
    }
    for c in index.chunks() {
        file_len(&c.id);
        std::fs::read(store.join(c.id.store_path())).unwrap();
    }

    let best = |a: &mut Option<Ours>, b: Ours| {
        if a.as_ref().is_none_or(|a| b.total < a.total) {
            *a = Some(b);
        }
    };
    let (mut scan, mut chunked, mut indexed) = (None, None, None);
    let (mut casync, mut casync_durable) = (Duration::MAX, Duration::MAX);
    let mut casync_cpu = f64::MAX;
    for run in 1..=runs {
        eprintln!("== run {run}/{runs}");
        let sync = || run_sync(d);
        sync();
        best(&mut scan, ours_scan(d, &index));
        assert!(same(&d.join("ours.img"), &v2), "our output differs from v2");
        sync();
        best(&mut chunked, ours(d, &index, None));
        assert!(same(&d.join("ours.img"), &v2), "our output differs from v2");
        sync();
        let (c, cd, cc) = theirs(d);
        casync = casync.min(c);
        casync_cpu = casync_cpu.min(cc);
        casync_durable = casync_durable.min(cd);
        assert!(same(&d.join("theirs.img"), &v2), "casync's output differs");
        sync();
        best(&mut indexed, ours(d, &index, Some(&v1_index)));
        assert!(same(&d.join("ours.img"), &v2), "our output differs from v2");
    }
    let (scan, chunked, indexed) = (scan.unwrap(), chunked.unwrap(), indexed.unwrap());
    let stats = scan.stats;
    assert_eq!(stats.fetched_bytes, chunked.stats.fetched_bytes);

    // The minimum: compressed chunks of v2 not in v1 (each once).
    let mut seeds = SeedMap::new();
    seeds.add_indexed_seed(&v1_index);
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
        mib(changed),
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
    let s = |d: Duration| d.as_secs_f64();
    println!("  wall time, best of {runs} interleaved runs, output fsynced unless said:");
    for (name, o) in [
        ("ours, one pass (install)", &scan),
        ("ours, index seed + extract", &chunked),
        ("ours, seed index known", &indexed),
    ] {
        println!(
            "  {name:<28}{:.3} s (seed {:.3} + extract {:.3} + fsync {:.3})   {:.2}x casync   CPU {:.2} s",
            s(o.total),
            s(o.seed),
            s(o.extract),
            s(o.fsync),
            s(casync_durable) / s(o.total),
            o.cpu
        );
    }
    println!(
        "  casync extract --seed:      {:.3} s (returns at {:.3} s, unsynced)   CPU {:.2} s (without the fsync)",
        s(casync_durable),
        s(casync),
        casync_cpu
    );
    println!(
        "  ours (one pass) vs casync: {:.2}x durable-vs-durable, {:.2}x vs casync unsynced (target >= 2x)",
        s(casync_durable) / s(scan.total),
        s(casync) / s(scan.total)
    );
}

/// `sync`, and the previous outputs removed: every run starts without others' dirty pages.
fn run_sync(d: &Path) {
    for p in ["ours.img", "theirs.img"] {
        let _ = std::fs::remove_file(d.join(p));
    }
    run(&mut Command::new("sync"));
}
