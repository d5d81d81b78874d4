//! Crash safety: a child process applies revisions A and B in a loop and is killed with
//! SIGKILL at random instants; the live directory must always be exactly one of the two.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use outpost_workloads::apply::{MARKER, TOMBSTONE_PREFIX};
use outpost_workloads::{applied, apply, Store, Target};

use crate::common::{cm, files, names, set_tar};

/// Set in the child: the directory to work in.
const CHILD_ENV: &str = "OUTPOST_WORKLOADS_CRASH_CHILD";

fn layout(root: &Path) -> (std::path::PathBuf, Target) {
    let target = Target::new(root.join("k3s/server/manifests")).with_images(root.join("images"));
    (root.join("store"), target)
}

fn revision_files(rev: &str) -> Vec<(String, Vec<u8>)> {
    // Both revisions share `common.yaml` (different content) and each has its own files.
    let mut v = vec![("common.yaml".to_owned(), cm("common", rev))];
    for i in 0..8 {
        v.push((format!("{rev}-{i}.yaml"), cm(&format!("{rev}{i}"), rev)));
    }
    v
}

/// The child role: only active when the parent set [`CHILD_ENV`]; a plain test run passes.
#[test]
fn child_apply_loop() {
    let Ok(root) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (store_dir, target) = layout(Path::new(&root));
    let store = Store::open(&store_dir).unwrap();
    loop {
        for rev in ["a", "b"] {
            apply(&store, rev, &target).unwrap();
        }
    }
}

#[test]
fn kill_during_apply_leaves_one_complete_set() {
    let dir = tempfile::tempdir().unwrap();
    let (store_dir, target) = layout(dir.path());
    let store = Store::open(&store_dir).unwrap();
    let mut expected = BTreeMap::new();
    for rev in ["a", "b"] {
        let files = revision_files(rev);
        let entries: Vec<(String, &[u8])> = files
            .iter()
            .map(|(n, c)| (format!("manifests/{n}"), &c[..]))
            .collect();
        let mut refs: Vec<(&str, &[u8])> = entries.iter().map(|(n, c)| (n.as_str(), *c)).collect();
        let image = format!("images/{rev}.tar");
        refs.push((&image, b"image"));
        store.import(rev, &set_tar(&refs)[..]).unwrap();
        expected.insert(
            rev.to_owned(),
            files.into_iter().collect::<BTreeMap<_, _>>(),
        );
    }

    let exe = std::env::current_exe().unwrap();
    let mut rng = seed();
    let started = Instant::now();
    let mut rounds = 0;
    let mut seen_live = false;
    while rounds < 20 && started.elapsed() < Duration::from_millis(4500) {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "crash::child_apply_loop",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // 5..300 ms: past process start, into the loop at a random point (one apply takes
        // tens of milliseconds, mostly fsyncs).
        std::thread::sleep(Duration::from_millis(5 + next(&mut rng) % 295));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        // Absent only before the first swap: once there, it must never disappear.
        seen_live |= check_one_complete_set(&target, &expected);
        assert!(
            !seen_live || target.live_dir().exists(),
            "live dir vanished"
        );
        rounds += 1;
    }
    assert!(rounds >= 5, "only {rounds} rounds");

    // The next apply succeeds and leaves the staging dir empty.
    let report = apply(&store, "a", &target).unwrap();
    assert_eq!(report.revision, "a");
    assert!(names(&target.staging_dir).is_empty());
    assert!(check_one_complete_set(&target, &expected));
    assert_eq!(applied(&target).unwrap().unwrap().revision, "a");
}

/// The live dir is absent (killed before the first swap) or is exactly one revision: its
/// manifests with their content, tombstones for the other's files, and its marker. Returns
/// whether it was present.
fn check_one_complete_set(
    target: &Target,
    expected: &BTreeMap<String, BTreeMap<String, Vec<u8>>>,
) -> bool {
    let live = files(&target.live_dir());
    if live.is_empty() {
        assert!(!target.live_dir().exists(), "live dir exists but is empty");
        return false;
    }
    let state = applied(target).unwrap().expect("live dir without marker");
    let want = &expected[&state.revision];
    for (name, content) in want {
        assert_eq!(
            live.get(name),
            Some(content),
            "{name} of {}",
            state.revision
        );
    }
    for (name, content) in &live {
        if name == MARKER || want.contains_key(name) {
            continue;
        }
        assert!(
            content.starts_with(TOMBSTONE_PREFIX.as_bytes()),
            "{name} in revision {} is neither its manifest nor a tombstone",
            state.revision
        );
        assert!(state.tombstones.iter().any(|t| &t.file == name));
    }
    true
}

fn seed() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1);
    nanos | 1
}

/// xorshift64: enough randomness for kill delays without a dependency.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}
