//! kill -9 in the middle of concurrent writes loses nothing that was acknowledged.
//!
//! The test re-executes its own binary, running only `crash_child`, with `OUTBOX_CRASH_DB`
//! set. The child enqueues from several threads and prints `ACK <id>` after each
//! acknowledgement; the parent SIGKILLs it mid-flight, then reopens the database and checks that
//! every printed id is there and that the counters agree with the rows.

mod common;

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use outpost_outbox::Outbox;
use outpost_proto::Priority;

const CHILD_ENV: &str = "OUTBOX_CRASH_DB";

/// Runs only in the re-executed child; a no-op in a normal test run.
#[test]
fn crash_child() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let outbox = Outbox::open(cfg(std::path::Path::new(&path), 1 << 30)).unwrap();
    let payload = vec![b'7'; 512];
    let workers: Vec<_> = (0..8)
        .map(|t| {
            let (outbox, payload) = (outbox.clone(), payload.clone());
            std::thread::spawn(move || {
                for i in 0.. {
                    let id = format!("w{t}-{i}");
                    let accepted = outbox
                        .enqueue(rec("crash", Priority::Normal, &id, &payload))
                        .unwrap();
                    assert!(!accepted.duplicate);
                    // One write per line so the parent never sees half a line as a whole one.
                    let line = format!("ACK {id}\n");
                    let mut out = std::io::stdout().lock();
                    out.write_all(line.as_bytes()).unwrap();
                    out.flush().unwrap();
                }
            })
        })
        .collect();
    for w in workers {
        let _ = w.join();
    }
}

#[test]
fn kill_9_loses_no_acknowledged_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut acked = HashSet::new();
    let mut line = String::new();
    let started = Instant::now();
    // Kill while writes are in full flow: after enough acknowledgements, or a time limit.
    while acked.len() < 2000 && started.elapsed() < Duration::from_secs(10) {
        line.clear();
        if stdout.read_line(&mut line).unwrap() == 0 {
            break;
        }
        if let Some(id) = line.strip_suffix('\n').and_then(|l| l.strip_prefix("ACK ")) {
            acked.insert(id.to_owned());
        }
    }
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
    // Lines already in the pipe were acknowledged before the kill too.
    loop {
        line.clear();
        if stdout.read_line(&mut line).unwrap() == 0 {
            break;
        }
        if let Some(id) = line.strip_suffix('\n').and_then(|l| l.strip_prefix("ACK ")) {
            acked.insert(id.to_owned());
        }
    }
    assert!(
        acked.len() > 100,
        "child acknowledged only {} records",
        acked.len()
    );

    let check = rusqlite::Connection::open(&path).unwrap();
    let integrity: String = check
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
    drop(check);

    let outbox = Outbox::open(cfg(&path, 1 << 30)).unwrap();
    let stored: HashSet<String> = pending_ids(&outbox).into_iter().collect();
    let missing: Vec<_> = acked
        .iter()
        .filter(|id| !stored.contains(*id))
        .take(5)
        .collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged records lost, e.g. {missing:?}",
        acked.difference(&stored).count()
    );
    // Counters were committed together with the rows they count.
    let stats = outbox.stats().unwrap();
    assert_eq!(stats.totals.pending, stored.len() as u64);
    assert_eq!(stream(&stats.streams, "crash").pending, stored.len() as u64);
    assert_eq!(
        stats.totals.used_bytes,
        stored
            .iter()
            .map(|id| (512 + id.len() + 5 + 64) as u64)
            .sum::<u64>()
    );
}
