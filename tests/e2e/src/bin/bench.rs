//! `outpost-bench outbox`: the sync outbox benchmark (run through `scripts/bench outbox`).
//!
//! Every figure is printed beside a baseline measured in the same run on the same disk:
//! - durable enqueue through the real agent's local API (1 KiB JSON, 1/8/64 concurrent clients)
//!   vs. one SQLite transaction with fsync per record (WAL, synchronous=FULL) — what an outbox
//!   without group commit costs;
//! - drain of a backlog to a real hub over loopback mTLS;
//! - the agent's resident memory idle and under the 64-client load.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use clap::{Parser, Subcommand};
use outpost_e2e::metrics::Metrics;
use outpost_e2e::{process::cpu_time, process::rss_kib, wait_for, Agent, Fleet, Hub, UnixHttp};

#[derive(Parser)]
#[command(about = "Outpost benchmarks; each figure is printed beside its same-run baseline")]
struct Cli {
    #[command(subcommand)]
    what: What,
}

#[derive(Subcommand)]
enum What {
    /// Durable enqueue throughput/latency, drain rate and agent memory.
    Outbox {
        /// Records per client-count run (the 1-client run uses a tenth).
        #[arg(long, default_value_t = 60_000)]
        records: usize,
        /// Backlog size for the drain measurement.
        #[arg(long, default_value_t = 100_000)]
        drain: usize,
        /// Records for the fsync-per-record baseline.
        #[arg(long, default_value_t = 2_000)]
        baseline: usize,
    },
}

fn main() -> Result<()> {
    match Cli::parse().what {
        What::Outbox {
            records,
            drain,
            baseline,
        } => outbox(records, drain, baseline),
    }
}

fn payload(client: usize, seq: usize) -> Vec<u8> {
    let head = format!(r#"{{"client":{client},"seq":{seq},"pad":""#);
    let mut p = head.into_bytes();
    p.resize(1024 - 2, b'x');
    p.extend_from_slice(b"\"}");
    p
}

struct Run {
    per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
}

fn percentile(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

/// One SQLite transaction with fsync per record: the cost group commit exists to avoid.
fn baseline_fsync_per_record(dir: &Path, n: usize) -> Result<Run> {
    let db = rusqlite::Connection::open(dir.join("baseline.sqlite"))?;
    db.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;
         CREATE TABLE records(seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE, stream TEXT, created_at_ms INTEGER, payload BLOB, sha256 TEXT);",
    )?;
    let mut lat = Vec::with_capacity(n);
    let start = Instant::now();
    for i in 0..n {
        let t = Instant::now();
        let p = payload(0, i);
        let sha = outpost_proto::sha256_hex(&p);
        db.execute(
            "INSERT INTO records(id, stream, created_at_ms, payload, sha256) VALUES (?1, 'bench', 0, ?2, ?3)",
            rusqlite::params![format!("b-{i}"), p, sha],
        )?;
        lat.push(t.elapsed());
    }
    let secs = start.elapsed().as_secs_f64();
    lat.sort();
    Ok(Run {
        per_sec: n as f64 / secs,
        p50_ms: percentile(&lat, 0.5),
        p99_ms: percentile(&lat, 0.99),
    })
}

/// Mean latency of one 4 KiB write + fdatasync on the disk under test: with N closed-loop
/// clients each waiting for its own durable commit, N / this latency bounds any outbox.
fn fsync_latency(dir: &Path) -> Result<Duration> {
    use std::io::Write;
    let path = dir.join("fsync.probe");
    let mut f = std::fs::File::create(&path)?;
    let block = [0u8; 4096];
    let n = 200;
    let start = Instant::now();
    for _ in 0..n {
        f.write_all(&block)?;
        f.sync_data()?;
    }
    let mean = start.elapsed() / n;
    std::fs::remove_file(&path)?;
    Ok(mean)
}

fn api_run(socket: &Path, clients: usize, total: usize, tag: usize) -> Result<Run> {
    let per = total / clients;
    let barrier = Arc::new(Barrier::new(clients + 1));
    let handles: Vec<_> = (0..clients)
        .map(|c| {
            let socket: PathBuf = socket.to_owned();
            let barrier = barrier.clone();
            std::thread::spawn(move || -> Result<Vec<Duration>> {
                let mut api = UnixHttp::new(&socket);
                api.get("/v1/status")?; // connect before the clock starts
                let bodies: Vec<Vec<u8>> = (0..per).map(|s| payload(tag * 1000 + c, s)).collect();
                let mut lat = Vec::with_capacity(per);
                barrier.wait();
                for body in &bodies {
                    let t = Instant::now();
                    let r = api.post("/v1/outbox/bench", &[], body)?;
                    if r.status != 202 {
                        bail!(
                            "publish answered {}: {}",
                            r.status,
                            String::from_utf8_lossy(&r.body)
                        );
                    }
                    lat.push(t.elapsed());
                }
                Ok(lat)
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    let mut lat = Vec::with_capacity(total);
    for h in handles {
        match h.join() {
            Ok(r) => lat.extend(r?),
            Err(_) => bail!("client thread panicked"),
        }
    }
    let secs = start.elapsed().as_secs_f64();
    lat.sort();
    Ok(Run {
        per_sec: lat.len() as f64 / secs,
        p50_ms: percentile(&lat, 0.5),
        p99_ms: percentile(&lat, 0.99),
    })
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "meets target"
    } else {
        "MISSES target"
    }
}

fn outbox(records: usize, drain: usize, baseline_n: usize) -> Result<()> {
    let fleet = Fleet::init(1)?;
    let dev = fleet.device(1);
    dev.append_config(
        "[log]\nlevel = \"warn\"\n[uploader]\nbackoff_base_ms = 50\nbackoff_cap_ms = 200",
    )?;

    println!(
        "outbox benchmark: 1 KiB JSON records, {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let base = baseline_fsync_per_record(&fleet.dir, baseline_n)?;
    println!(
        "baseline  fsync per record (SQLite WAL, synchronous=FULL, 1 tx/record): {:>9.0} rec/s  p50 {:.2} ms  p99 {:.2} ms",
        base.per_sec, base.p50_ms, base.p99_ms
    );

    let sync = fsync_latency(&fleet.dir)?;
    println!(
        "disk      one 4 KiB write + fdatasync: {:.2} ms => ceiling for 64 closed-loop clients on this disk: {:.0} rec/s",
        sync.as_secs_f64() * 1000.0,
        64.0 / sync.as_secs_f64()
    );

    let agent = Agent::start(&dev.config)?;
    std::thread::sleep(Duration::from_secs(2));
    let (idle_rss, _) = agent.rss_kib()?;

    let mut at64 = None;
    for (i, clients) in [1usize, 8, 64].into_iter().enumerate() {
        let n = if clients == 1 {
            (records / 10).max(100)
        } else {
            records
        };
        let cpu_before = cpu_time(agent.pid())?;
        let r = api_run(&dev.socket(), clients, n, i)?;
        let cpu_us = (cpu_time(agent.pid())? - cpu_before).as_secs_f64() * 1e6 / n as f64;
        println!(
            "agent API {clients:>2} client(s), {n} records:                          {:>9.0} rec/s  p50 {:.2} ms  p99 {:.2} ms  ({:.1}x baseline; agent CPU {cpu_us:.0} us/record)",
            r.per_sec, r.p50_ms, r.p99_ms, r.per_sec / base.per_sec
        );
        if clients == 64 {
            at64 = Some(r);
        }
    }
    let (_, load_peak) = agent.rss_kib()?;
    let r = at64.expect("64-client run happened");
    println!(
        "target    64 clients >= 50,000 rec/s: {}; >= 10x baseline: {}; p99 <= 20 ms: {}",
        verdict(r.per_sec >= 50_000.0),
        verdict(r.per_sec >= 10.0 * base.per_sec),
        verdict(r.p99_ms <= 20.0)
    );
    println!(
        "memory    agent RSS idle {:.1} MiB (target <= 10: {}), peak under 64-client load {:.1} MiB (target <= 64: {})",
        idle_rss as f64 / 1024.0,
        verdict(idle_rss <= 10 * 1024),
        load_peak as f64 / 1024.0,
        verdict(load_peak <= 64 * 1024)
    );

    // Drain: deliver everything queued so far plus a fresh backlog up to `drain` records.
    let mut api = dev.api();
    let queued = Metrics::fetch(&mut api)?.pending() as usize;
    if queued < drain {
        api_run(&dev.socket(), 64, drain - queued, 9)?;
    }
    let backlog = Metrics::fetch(&mut api)?.pending();
    let start = Instant::now();
    let hub = Hub::start(&fleet.hub_config())?;
    wait_for(Duration::from_secs(600), "backlog drained", || {
        Ok((Metrics::fetch(&mut api)?.pending() == 0).then_some(()))
    })?;
    let secs = start.elapsed().as_secs_f64();
    let rate = backlog as f64 / secs;
    let stored = fleet.hub_records(Some(&dev.name), None)?.len();
    println!(
        "drain     {backlog} records to the hub over loopback mTLS (hub start included): {rate:>9.0} rec/s in {secs:.1} s; hub holds {stored} (target >= 20,000 rec/s: {})",
        verdict(rate >= 20_000.0)
    );
    let (_, hwm) = rss_kib(agent.pid())?;
    println!(
        "memory    agent peak RSS after drain {:.1} MiB",
        hwm as f64 / 1024.0
    );
    drop(agent);
    drop(hub); // the tmpfs run, like the disk runs, measures publishing with the hub away
    tmpfs_run(&fleet, records)
}

/// The same 64-client run with the outbox on tmpfs, where a durable commit costs almost
/// nothing: the software's own ceiling on this CPU, apart from the disk.
fn tmpfs_run(fleet: &Fleet, records: usize) -> Result<()> {
    let shm = Path::new("/dev/shm");
    if !shm.is_dir() {
        println!("tmpfs     /dev/shm missing; skipped");
        return Ok(());
    }
    let state = tempfile::Builder::new()
        .prefix("outpost-bench")
        .tempdir_in(shm)?;
    let dev = fleet.device(1);
    let config = dev.dir.join("agent-tmpfs.toml");
    let text = std::fs::read_to_string(&dev.config)?
        .replace(
            "state_dir = \"state\"",
            &format!("state_dir = \"{}\"", state.path().display()),
        )
        .replace("socket = \"agent.sock\"", "socket = \"agent-tmpfs.sock\"");
    std::fs::write(&config, text)?;
    let agent = Agent::start(&config)?;
    let cpu_before = cpu_time(agent.pid())?;
    let r = api_run(&dev.dir.join("agent-tmpfs.sock"), 64, records, 7)?;
    let cpu_us = (cpu_time(agent.pid())? - cpu_before).as_secs_f64() * 1e6 / records as f64;
    println!(
        "tmpfs     agent API 64 clients, outbox on tmpfs (CPU ceiling, not durable): {:>9.0} rec/s  p50 {:.2} ms  p99 {:.2} ms  (agent CPU {cpu_us:.0} us/record)",
        r.per_sec, r.p50_ms, r.p99_ms
    );
    Ok(())
}
