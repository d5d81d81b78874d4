//! Behaviour of the outbox through its public API.

mod common;

use std::sync::Arc;
use std::thread;

use common::*;
use outpost_outbox::{EnqueueError, NewRecord, Outbox, OutboxError, CORRUPT_CHECKSUM};
use outpost_proto::{sha256_hex, Priority, StreamName};
use Priority::{BestEffort, Critical, Normal};

/// Streams and ids of two characters and a 32-byte payload make every record exactly
/// 32 + 2 + 2 + 64 = 100 accounted bytes.
const P32: &[u8; 32] = b"{\"v\":\"aaaaaaaaaaaaaaaaaaaaaaaa\"}";

#[test]
fn record_size_is_payload_id_stream_plus_overhead() {
    assert_eq!(outpost_outbox::record_size(P32.len(), 2, 2), 100);
}

#[test]
fn reopen_keeps_records_order_and_counters() {
    let dir = tempfile::tempdir().unwrap();
    let clock = TestClock::new(1_000);
    let outbox = clock.open(&db(&dir), 1 << 20);
    for i in 0..5 {
        outbox
            .enqueue(rec("temp", Normal, &format!("t{i}"), b"{\"x\":1}"))
            .unwrap();
    }
    clock.set(2_000);
    assert_eq!(
        outbox
            .ack(vec![sent("t0", b"{\"x\":1}"), sent("t1", b"{\"x\":1}")])
            .wait()
            .unwrap(),
        2
    );
    assert_eq!(
        outbox
            .reject(vec![(sent("t2", b"{\"x\":1}"), "schema".into())])
            .wait()
            .unwrap(),
        1
    );
    let err = outbox
        .enqueue(rec("temp", Normal, "huge", &vec![b'1'; 2 << 20]))
        .unwrap_err();
    assert!(matches!(err, EnqueueError::TooLarge { .. }));
    let before = outbox.stats().unwrap();
    outbox.close();

    let outbox = clock.open(&db(&dir), 1 << 20);
    let after = outbox.stats().unwrap();
    assert_eq!(before.streams, after.streams);
    let s = stream(&after.streams, "temp");
    assert_eq!(
        (s.pending, s.delivered, s.rejected, s.refused),
        (2, 2, 1, 1)
    );
    assert_eq!(s.last_delivered_ms, Some(2_000));
    assert_eq!(s.oldest_pending_ms, Some(1_000));
    assert_eq!(after.totals.pending, 2);
    assert_eq!(after.totals.dead_letter, 1);
    assert_eq!(after.totals.used_bytes, before.totals.used_bytes);
    assert_eq!(pending_ids(&outbox), ["t3", "t4"]);
    // New records get later sequence numbers than the ones already stored.
    outbox.enqueue(rec("temp", Normal, "t5", b"1")).unwrap();
    let batch = outbox.next_batch(10, usize::MAX).unwrap();
    assert!(batch.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(batch.last().unwrap().id.as_str(), "t5");
}

#[test]
fn next_batch_keeps_creation_order_and_limits() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::open(cfg(&db(&dir), 1 << 20)).unwrap();
    let streams = ["aa", "bb", "cc"];
    for i in 0..30 {
        let s = streams[i % 3];
        outbox
            .enqueue(rec(s, Normal, &format!("{s}-{i:02}"), P32))
            .unwrap();
    }
    let all = outbox.next_batch(1000, usize::MAX).unwrap();
    assert_eq!(all.len(), 30);
    for (i, r) in all.iter().enumerate() {
        assert_eq!(r.id.as_str(), format!("{}-{i:02}", streams[i % 3]));
        assert_eq!(r.sha256, sha256_hex(P32));
        assert_eq!(r.payload, P32);
    }
    // Limits: by count, by bytes (each record accounts 32+5+2+64 = 103 bytes).
    assert_eq!(outbox.next_batch(7, usize::MAX).unwrap().len(), 7);
    assert_eq!(outbox.next_batch(100, 103 * 4).unwrap().len(), 4);
    assert_eq!(outbox.next_batch(100, 103 * 4 - 1).unwrap().len(), 3);
    // A single record larger than max_bytes is still returned, alone.
    assert_eq!(outbox.next_batch(100, 1).unwrap().len(), 1);
    assert!(outbox.next_batch(0, usize::MAX).unwrap().is_empty());
    // Reading does not remove anything.
    assert_eq!(outbox.stats().unwrap().totals.pending, 30);
}

#[test]
fn generated_ids_are_uuid_v7() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::open(cfg(&db(&dir), 1 << 20)).unwrap();
    let new = || NewRecord {
        id: None,
        stream: StreamName::parse("s").unwrap(),
        priority: Normal,
        payload: b"{}".to_vec(),
    };
    let a = outbox.enqueue(new()).unwrap();
    let b = outbox.enqueue(new()).unwrap();
    assert_ne!(a.id, b.id);
    let uuid = uuid::Uuid::parse_str(a.id.as_str()).unwrap();
    assert_eq!(uuid.get_version_num(), 7);
    assert!(!a.duplicate);
}

#[test]
fn duplicate_is_accepted_once_and_conflict_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::open(cfg(&db(&dir), 1 << 20)).unwrap();
    let first = outbox
        .enqueue(rec("s", Normal, "k1", b"{\"a\":1}"))
        .unwrap();
    assert!(!first.duplicate);
    let again = outbox
        .enqueue(rec("s", Normal, "k1", b"{\"a\":1}"))
        .unwrap();
    assert!(again.duplicate);
    assert_eq!(again.id.as_str(), "k1");
    let conflict = outbox
        .enqueue(rec("s", Normal, "k1", b"{\"a\":2}"))
        .unwrap_err();
    assert!(matches!(conflict, EnqueueError::Conflict { ref id } if id == "k1"));
    let stats = outbox.stats().unwrap();
    assert_eq!(stats.totals.pending, 1);
    assert_eq!(stream(&stats.streams, "s").refused, 0);
    // Once delivered, the id is no longer pending: the same id is stored again.
    outbox.ack(vec![sent("k1", b"{\"a\":1}")]).wait().unwrap();
    assert!(
        !outbox
            .enqueue(rec("s", Normal, "k1", b"{\"a\":1}"))
            .unwrap()
            .duplicate
    );
}

#[test]
fn duplicate_in_a_full_store_evicts_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::open(cfg(&db(&dir), 200)).unwrap();
    outbox.enqueue(rec("be", BestEffort, "b1", P32)).unwrap();
    outbox.enqueue(rec("no", Normal, "n1", P32)).unwrap();
    assert!(
        outbox
            .enqueue(rec("no", Normal, "n1", P32))
            .unwrap()
            .duplicate
    );
    assert!(matches!(
        outbox.enqueue(rec("no", Normal, "n1", b"other")),
        Err(EnqueueError::Conflict { .. })
    ));
    assert_eq!(pending_ids(&outbox), ["b1", "n1"]);
    assert_eq!(stream(&outbox.stats().unwrap().streams, "be").evicted, 0);
}

#[test]
fn eviction_is_lowest_priority_oldest_first_and_never_critical() {
    let dir = tempfile::tempdir().unwrap();
    let clock = TestClock::new(5_000);
    let outbox = clock.open(&db(&dir), 500); // room for exactly five 100-byte records
    for (s, p, i) in [
        ("be", BestEffort, "b1"),
        ("no", Normal, "n1"),
        ("be", BestEffort, "b2"),
        ("cr", Critical, "c1"),
        ("no", Normal, "n2"),
    ] {
        outbox.enqueue(rec(s, p, i, P32)).unwrap();
    }
    assert_eq!(outbox.stats().unwrap().totals.used_bytes, 500);
    clock.set(6_000);

    // Best effort goes first, oldest first, one record per write.
    outbox.enqueue(rec("no", Normal, "n3", P32)).unwrap();
    assert_eq!(pending_ids(&outbox), ["n1", "b2", "c1", "n2", "n3"]);
    outbox.enqueue(rec("cr", Critical, "c2", P32)).unwrap();
    assert_eq!(pending_ids(&outbox), ["n1", "c1", "n2", "n3", "c2"]);

    // A best-effort write cannot evict normal records.
    let full = outbox
        .enqueue(rec("be", BestEffort, "b3", P32))
        .unwrap_err();
    assert!(
        matches!(full, EnqueueError::Full { ref stream, priority: BestEffort, needed: 100 } if stream == "be")
    );
    assert_eq!(pending_ids(&outbox), ["n1", "c1", "n2", "n3", "c2"]);

    // Then normal, oldest first; critical records are never evicted.
    for i in ["c3", "c4", "c5"] {
        outbox.enqueue(rec("cr", Critical, i, P32)).unwrap();
    }
    assert_eq!(pending_ids(&outbox), ["c1", "c2", "c3", "c4", "c5"]);
    assert!(matches!(
        outbox.enqueue(rec("cr", Critical, "c6", P32)),
        Err(EnqueueError::Full { .. })
    ));
    assert!(matches!(
        outbox.enqueue(rec("no", Normal, "n4", P32)),
        Err(EnqueueError::Full { .. })
    ));

    let stats = outbox.stats().unwrap();
    let (be, no, cr) = (
        stream(&stats.streams, "be"),
        stream(&stats.streams, "no"),
        stream(&stats.streams, "cr"),
    );
    assert_eq!((be.evicted, be.refused, be.pending), (2, 1, 0));
    assert_eq!((no.evicted, no.refused, no.pending), (3, 1, 0));
    assert_eq!((cr.evicted, cr.refused, cr.pending), (0, 1, 5));
    assert_eq!(be.last_evicted_ms, Some(6_000));
    assert_eq!(cr.last_evicted_ms, None);
    assert_eq!(stats.totals.used_bytes, 500);
    assert_eq!(stats.totals.pending, 5);
}

#[test]
fn eviction_frees_only_what_is_needed() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::open(cfg(&db(&dir), 500)).unwrap();
    for i in 1..=5 {
        outbox
            .enqueue(rec("be", BestEffort, &format!("b{i}"), P32))
            .unwrap();
    }
    // 232 + 2 + 2 + 64 = 300 bytes: exactly three records must go.
    outbox
        .enqueue(rec("no", Normal, "n1", &[b'7'; 232]))
        .unwrap();
    assert_eq!(pending_ids(&outbox), ["b4", "b5", "n1"]);
    assert_eq!(stream(&outbox.stats().unwrap().streams, "be").evicted, 3);
}

#[test]
fn full_refuses_without_evicting_and_counts_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    let outbox = Outbox::open(cfg(&path, 500)).unwrap();
    for (s, p, i) in [
        ("be", BestEffort, "b1"),
        ("be", BestEffort, "b2"),
        ("cr", Critical, "c1"),
        ("cr", Critical, "c2"),
        ("cr", Critical, "c3"),
    ] {
        outbox.enqueue(rec(s, p, i, P32)).unwrap();
    }
    // Needs 300 bytes; only 200 are evictable: nothing may be evicted.
    let err = outbox
        .enqueue(rec("cr", Critical, "c4", &[b'7'; 232]))
        .unwrap_err();
    assert!(
        matches!(err, EnqueueError::Full { needed: 300, .. }),
        "{err}"
    );
    assert_eq!(pending_ids(&outbox), ["b1", "b2", "c1", "c2", "c3"]);
    let too_large = outbox
        .enqueue(rec("be", BestEffort, "b9", &[b'7'; 500]))
        .unwrap_err();
    assert!(
        matches!(
            too_large,
            EnqueueError::TooLarge {
                size: 568,
                max_bytes: 500
            }
        ),
        "{too_large}"
    );
    outbox.close();

    let outbox = Outbox::open(cfg(&path, 500)).unwrap();
    let stats = outbox.stats().unwrap();
    assert_eq!(stream(&stats.streams, "cr").refused, 1);
    assert_eq!(stream(&stats.streams, "be").refused, 1);
    assert_eq!(stream(&stats.streams, "be").evicted, 0);
    assert_eq!(stats.totals.pending, 5);
}

#[test]
fn ack_and_reject() {
    let dir = tempfile::tempdir().unwrap();
    let clock = TestClock::new(10);
    let outbox = clock.open(&db(&dir), 1 << 20);
    for i in ["a", "b", "c"] {
        outbox
            .enqueue(rec("s1", Normal, i, b"{\"k\":true}"))
            .unwrap();
    }
    outbox.enqueue(rec("s2", Critical, "d", b"[1,2]")).unwrap();
    clock.set(20);
    // Unknown ids are fine (evicted meanwhile); acking twice counts once.
    assert_eq!(
        outbox
            .ack(vec![
                sent("a", b"{\"k\":true}"),
                sent("nope", b"{}"),
                sent("d", b"[1,2]")
            ])
            .wait()
            .unwrap(),
        2
    );
    assert_eq!(
        outbox.ack(vec![sent("a", b"{\"k\":true}")]).wait().unwrap(),
        0
    );
    clock.set(30);
    assert_eq!(
        outbox
            .reject(vec![
                (sent("b", b"{\"k\":true}"), "payload too deep".into()),
                (sent("zz", b"{}"), "x".into())
            ])
            .wait()
            .unwrap(),
        1
    );
    assert_eq!(pending_ids(&outbox), ["c"]);

    let stats = outbox.stats().unwrap();
    let s1 = stream(&stats.streams, "s1");
    assert_eq!((s1.pending, s1.delivered, s1.rejected), (1, 1, 1));
    assert_eq!(s1.last_delivered_ms, Some(20));
    // A stream with nothing pending still appears, with its counters.
    let s2 = stream(&stats.streams, "s2");
    assert_eq!((s2.pending, s2.delivered, s2.priority), (0, 1, Critical));
    assert_eq!(s2.oldest_pending_ms, None);
    assert_eq!(stats.totals.dead_letter, 1);

    let dead = outbox.dead_letters(10).unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(
        (
            dead[0].id.as_str(),
            dead[0].stream.as_str(),
            dead[0].reason.as_str()
        ),
        ("b", "s1", "payload too deep")
    );
    assert_eq!(dead[0].dead_at_ms, 30);
    assert_eq!(dead[0].sha256, sha256_hex(b"{\"k\":true}"));
    // Stats serialize (the CLI prints them as JSON).
    let json = serde_json::to_string(&stats).unwrap();
    assert!(json.contains("\"dead_letter\":1"), "{json}");
}

#[test]
fn corrupt_payload_is_quarantined_not_sent() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    let outbox = Outbox::open(cfg(&path, 1 << 20)).unwrap();
    for i in ["r1", "r2", "r3"] {
        outbox.enqueue(rec("s", Normal, i, b"{\"ok\":1}")).unwrap();
    }
    let tamper = rusqlite::Connection::open(&path).unwrap();
    tamper
        .busy_timeout(std::time::Duration::from_secs(5))
        .unwrap();
    assert_eq!(
        tamper
            .execute(
                "UPDATE records SET payload = X'7B226F6B223A327D' WHERE id = 'r2'",
                []
            )
            .unwrap(),
        1
    );
    drop(tamper);

    let batch = outbox.next_batch(10, usize::MAX).unwrap();
    let ids: Vec<_> = batch.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["r1", "r3"]);
    // Already moved: the next read neither returns it nor finds it again.
    assert_eq!(outbox.next_batch(10, usize::MAX).unwrap().len(), 2);
    let dead = outbox.dead_letters(10).unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(
        (dead[0].id.as_str(), dead[0].reason.as_str()),
        ("r2", CORRUPT_CHECKSUM)
    );
    let stats = outbox.stats().unwrap();
    let s = stream(&stats.streams, "s");
    assert_eq!((s.pending, s.quarantined, s.rejected), (2, 1, 0));
    assert_eq!(stats.totals.pending, 2);
}

#[test]
fn group_commit_batches_concurrent_publishers() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::open(cfg(&db(&dir), 1 << 30)).unwrap();
    let (threads, per_thread) = (32, 40);
    let payload = Arc::new(vec![b'1'; 1024]);
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let (outbox, payload) = (outbox.clone(), Arc::clone(&payload));
            thread::spawn(move || {
                for i in 0..per_thread {
                    outbox
                        .enqueue(rec("load", Normal, &format!("t{t}-{i}"), &payload))
                        .unwrap();
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let records = (threads * per_thread) as u64;
    let stats = outbox.stats().unwrap();
    assert_eq!(stats.totals.pending, records);
    assert_eq!(stats.totals.commits, outbox.commits());
    assert!(
        outbox.commits() * 2 < records,
        "{} commits for {records} records",
        outbox.commits()
    );
}

#[test]
fn refusals_in_a_batch_do_not_abort_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::open(cfg(&db(&dir), 10_000)).unwrap();
    outbox.enqueue(rec("s", Normal, "x", b"1")).unwrap();
    let commits = outbox.commits();
    // Submitted without waiting, these are very likely drained into one transaction.
    let receipts = vec![
        outbox.submit(rec("s", Normal, "a", b"1")),
        outbox.submit(rec("s", Normal, "x", b"2")), // conflict
        outbox.submit(rec("s", Normal, "b", &[b'1'; 20_000])), // too large
        outbox.submit(rec("s", Normal, "x", b"1")), // duplicate
        outbox.submit(rec("s", Normal, "c", b"1")),
    ];
    let results: Vec<_> = receipts.into_iter().map(|r| r.wait()).collect();
    assert!(matches!(results[0], Ok(ref a) if !a.duplicate));
    assert!(matches!(results[1], Err(EnqueueError::Conflict { .. })));
    assert!(matches!(results[2], Err(EnqueueError::TooLarge { .. })));
    assert!(matches!(results[3], Ok(ref a) if a.duplicate));
    assert!(matches!(results[4], Ok(ref a) if !a.duplicate));
    assert!(outbox.commits() - commits <= 5);
    assert_eq!(pending_ids(&outbox), ["x", "a", "c"]);
}

#[test]
fn close_drains_queued_submits_then_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    let outbox = Outbox::open(cfg(&path, 1 << 30)).unwrap();
    let other = outbox.clone();
    let receipts: Vec<_> = (0..300)
        .map(|i| outbox.submit(rec("s", Normal, &format!("q{i}"), b"{}")))
        .collect();
    outbox.close();
    for r in receipts {
        assert!(r.wait().is_ok());
    }
    assert!(matches!(
        other.enqueue(rec("s", Normal, "late", b"{}")),
        Err(EnqueueError::Closed)
    ));
    assert!(matches!(
        other.ack(vec![sent("q0", b"{}")]).wait(),
        Err(OutboxError::Closed)
    ));
    // Reads still work after close.
    assert_eq!(other.stats().unwrap().totals.pending, 300);
    drop(other);
    let reopened = Outbox::open(cfg(&path, 1 << 30)).unwrap();
    assert_eq!(reopened.stats().unwrap().totals.pending, 300);
}

#[test]
fn receipts_are_futures_and_commits_notify_the_uploader() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::open(cfg(&db(&dir), 1 << 20)).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let notify = outbox.new_records();
    rt.block_on(async {
        let waiter = {
            let notify = Arc::clone(&notify);
            tokio::spawn(async move { notify.notified().await })
        };
        let accepted = outbox
            .submit(rec("s", Normal, "async-1", b"{}"))
            .await
            .unwrap();
        assert_eq!(accepted.id.as_str(), "async-1");
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(outbox.ack(vec![sent("async-1", b"{}")]).await.unwrap(), 1);
        // wait() inside a runtime blocks instead of panicking.
        assert!(outbox
            .submit(rec("s", Normal, "async-2", b"{}"))
            .wait()
            .is_ok());
    });
}

#[test]
fn open_fails_cleanly_on_a_bad_path() {
    let err =
        Outbox::open(cfg(std::path::Path::new("/nonexistent-dir/x/outbox.db"), 1)).unwrap_err();
    assert!(matches!(err, OutboxError::Open { .. }), "{err}");
}

#[test]
fn accounting_that_disagrees_with_the_rows_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    let outbox = Outbox::open(cfg(&path, 500)).unwrap();
    for (s, p, i) in [
        ("be", BestEffort, "b1"),
        ("be", BestEffort, "b2"),
        ("cr", Critical, "c1"),
        ("cr", Critical, "c2"),
        ("cr", Critical, "c3"),
    ] {
        outbox.enqueue(rec(s, p, i, P32)).unwrap();
    }
    // Someone deletes rows behind the outbox's back: its counters now overstate the usage.
    let tamper = rusqlite::Connection::open(&path).unwrap();
    tamper
        .busy_timeout(std::time::Duration::from_secs(5))
        .unwrap();
    assert_eq!(
        tamper
            .execute("DELETE FROM records WHERE stream = 'be'", [])
            .unwrap(),
        2
    );
    drop(tamper);
    // The write believes it must evict best-effort records, finds none, recounts and fits.
    assert!(
        !outbox
            .enqueue(rec("no", Normal, "n1", P32))
            .unwrap()
            .duplicate
    );
    let stats = outbox.stats().unwrap();
    assert_eq!((stats.totals.pending, stats.totals.used_bytes), (4, 400));
    assert_eq!(stream(&stats.streams, "be").pending, 0);
    assert_eq!(stream(&stats.streams, "be").evicted, 0);
    assert_eq!(pending_ids(&outbox), ["c1", "c2", "c3", "n1"]);
}

/// An ack names the record that was sent. If that record was evicted while its batch was in
/// flight and the id was published again with another payload, the hub's ack for the old one
/// must not delete the new one (it would be lost without ever reaching the hub).
#[test]
fn ack_of_an_evicted_record_does_not_delete_a_new_record_with_the_same_id() {
    let dir = tempfile::tempdir().unwrap();
    let clock = TestClock::new(1);
    // Room for two 100-byte records.
    let outbox = clock.open(&db(&dir), 200);
    outbox.enqueue(rec("bb", BestEffort, "k1", P32)).unwrap();
    let in_flight = outbox.next_batch(10, 1 << 20).unwrap();
    assert_eq!(in_flight.len(), 1);
    // The store fills up: k1 is evicted while its batch is on the way to the hub...
    outbox.enqueue(rec("bb", BestEffort, "x1", P32)).unwrap();
    outbox.enqueue(rec("bb", BestEffort, "x2", P32)).unwrap();
    assert!(!pending_ids(&outbox).contains(&"k1".to_string()));
    // ...and the app publishes k1 again, with a new payload.
    let p2: &[u8; 32] = b"{\"v\":\"bbbbbbbbbbbbbbbbbbbbbbbb\"}";
    outbox.enqueue(rec("bb", BestEffort, "k1", p2)).unwrap();
    // The hub acks the k1 it received (the old payload).
    assert_eq!(outbox.ack(vec![in_flight[0].sent()]).wait().unwrap(), 0);
    assert!(
        pending_ids(&outbox).contains(&"k1".to_string()),
        "the new k1 stays pending"
    );
    // A rejection of the old one leaves it alone too; the new one is acked by its own checksum.
    assert_eq!(
        outbox
            .reject(vec![(in_flight[0].sent(), "x".into())])
            .wait()
            .unwrap(),
        0
    );
    assert_eq!(outbox.ack(vec![sent("k1", p2)]).wait().unwrap(), 1);
}

#[test]
fn probe_commits_a_write_that_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::open(cfg(&db(&dir), 1 << 20)).unwrap();
    outbox
        .enqueue(rec("temp", Normal, "p1", b"{\"x\":1}"))
        .unwrap();
    let before = outbox.stats().unwrap();
    let commits = outbox.commits();
    assert_eq!(outbox.probe().wait().unwrap(), 1, "one row rewritten");
    assert_eq!(outbox.commits(), commits + 1, "the probe is a real commit");
    let after = outbox.stats().unwrap();
    assert_eq!(after.streams, before.streams, "and changes no data");
    assert_eq!(after.totals.used_bytes, before.totals.used_bytes);
    outbox.clone().close();
    assert!(
        outbox.probe().wait().is_err(),
        "a closed outbox fails the probe"
    );
}
