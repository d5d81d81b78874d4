//! Enqueue throughput with many concurrent publishers (one fsync per group commit).
//!
//! `cargo run --release -p outpost-outbox --example bench -- [publishers] [records] [payload_bytes] [dir]`
//! Defaults: 64 publishers, 200000 records of 1024 bytes, in a temporary directory.

use std::sync::Arc;
use std::time::Instant;

use outpost_outbox::{NewRecord, Outbox, OutboxConfig};
use outpost_proto::{Priority, StreamName};

fn arg(n: usize, default: usize) -> usize {
    std::env::args()
        .nth(n)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (publishers, records, payload_len) = (arg(1, 64), arg(2, 200_000), arg(3, 1024));
    let dir = match std::env::args().nth(4) {
        Some(d) => tempfile::tempdir_in(d)?,
        None => tempfile::tempdir()?,
    };
    let outbox = Outbox::open(OutboxConfig {
        path: dir.path().join("bench.db"),
        max_bytes: 1 << 40,
    })?;
    let stream = StreamName::parse("bench")?;
    let payload: Arc<Vec<u8>> = Arc::new(std::iter::repeat_n(b'7', payload_len).collect());
    let per = records / publishers;
    let started = Instant::now();
    let workers: Vec<_> = (0..publishers)
        .map(|_| {
            let (outbox, stream, payload) = (outbox.clone(), stream.clone(), Arc::clone(&payload));
            std::thread::spawn(move || {
                for _ in 0..per {
                    let record = NewRecord {
                        id: None,
                        stream: stream.clone(),
                        priority: Priority::Normal,
                        payload: payload.to_vec(),
                    };
                    if let Err(e) = outbox.enqueue(record) {
                        eprintln!("enqueue failed: {e}");
                        return;
                    }
                }
            })
        })
        .collect();
    for w in workers {
        let _ = w.join();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let total = (per * publishers) as f64;
    let commits = outbox.commits();
    println!(
        "{publishers} publishers, {} records of {payload_len} B: {:.0} records/s, {commits} commits ({:.1} records/commit), {:.2}s",
        per * publishers,
        total / elapsed,
        total / commits.max(1) as f64,
        elapsed
    );
    outbox.close();
    Ok(())
}
