use std::fs;
use std::path::{Path, PathBuf};

use outpost_boot::atomic_file;
use outpost_boot::grub::GrubBackend;
use outpost_boot::grubenv::{GrubEnv, GrubEnvError};
use outpost_boot::{BootError, Bootloader, SlotState};

use crate::{ab, p, run, slot, stdout};

fn editenv(file: &Path, args: &[&str]) {
    let mut all = vec![p(file)];
    all.extend_from_slice(args);
    run("grub-editenv", &all);
}

fn list(file: &Path) -> String {
    stdout("grub-editenv", &[p(file), "list"])
}

/// What `grub-editenv list` prints for our parse of the file.
fn our_list(file: &Path) -> String {
    let env = GrubEnv::parse(&fs::read(file).unwrap()).unwrap();
    env.vars()
        .map(|(k, v)| {
            format!(
                "{}={}\n",
                String::from_utf8_lossy(k),
                String::from_utf8_lossy(&v)
            )
        })
        .collect()
}

fn created(dir: &Path, name: &str) -> PathBuf {
    let f = dir.join(name);
    editenv(&f, &["create"]);
    f
}

/// A grubenv as RAUC's docs set it up before the first install.
fn rauc_initial(dir: &Path) -> PathBuf {
    let f = created(dir, "grubenv");
    editenv(
        &f,
        &["set", "ORDER=A B", "A_OK=1", "A_TRY=0", "B_OK=1", "B_TRY=0"],
    );
    f
}

#[test]
fn new_block_equals_grub_editenv_create() {
    let dir = tempfile::tempdir().unwrap();
    let f = created(dir.path(), "env");
    assert_eq!(GrubEnv::new().serialize().unwrap(), fs::read(&f).unwrap());
}

#[test]
fn we_read_what_grub_editenv_wrote_and_reserialize_it_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let f = created(dir.path(), "env");
    editenv(
        &f,
        &[
            "set",
            "A=x\\y",
            "B=line1\nline2",
            "C=",
            "ORDER=A B",
            "D=a=b",
        ],
    );
    editenv(&f, &["unset", "C"]);
    editenv(&f, &["set", "A=short"]);
    let bytes = fs::read(&f).unwrap();
    let env = GrubEnv::parse(&bytes).unwrap();
    assert_eq!(env.get("B").unwrap(), b"line1\nline2");
    assert_eq!(env.get("D").unwrap(), b"a=b");
    assert_eq!(env.get("C"), None);
    assert_eq!(env.serialize().unwrap(), bytes);
    assert_eq!(our_list(&f), list(&f));
}

#[test]
fn our_edits_are_byte_identical_to_grub_editenv() {
    let dir = tempfile::tempdir().unwrap();
    let theirs = created(dir.path(), "theirs");
    let mut ours = GrubEnv::new();
    let steps: &[&[(&str, Option<&str>)]] = &[
        &[
            ("ORDER", Some("A B")),
            ("A_OK", Some("1")),
            ("A_TRY", Some("0")),
        ],
        &[("A_OK", Some("0")), ("note", Some("back\\slash\nnew line"))],
        &[("ORDER", Some("B A")), ("A_TRY", Some("1"))],
        &[("note", None)],
        &[
            ("A_OK", Some("a much longer value than before")),
            ("z", Some("")),
        ],
        &[("A_OK", Some("1"))],
    ];
    for step in steps {
        for (k, v) in *step {
            match v {
                Some(v) => ours.set(k, v).unwrap(),
                None => {
                    ours.unset(k);
                }
            }
        }
        let sets: Vec<String> = step
            .iter()
            .filter_map(|(k, v)| v.map(|v| format!("{k}={v}")))
            .collect();
        if !sets.is_empty() {
            let mut args = vec!["set"];
            args.extend(sets.iter().map(String::as_str));
            editenv(&theirs, &args);
        }
        for (k, _) in step.iter().filter(|(_, v)| v.is_none()) {
            editenv(&theirs, &["unset", k]);
        }
        assert_eq!(
            ours.serialize().unwrap(),
            fs::read(&theirs).unwrap(),
            "after {step:?}"
        );
    }
}

#[test]
fn full_block_is_refused_by_both() {
    let dir = tempfile::tempdir().unwrap();
    let f = created(dir.path(), "env");
    let big = format!("X={}", "v".repeat(1000));
    let out = std::process::Command::new("grub-editenv")
        .args([p(&f), "set", &big])
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "grub-editenv accepted an oversize value"
    );
    let mut env = GrubEnv::parse(&fs::read(&f).unwrap()).unwrap();
    assert!(matches!(
        env.set("X", &"v".repeat(1000)),
        Err(GrubEnvError::NoSpace { .. })
    ));
}

/// RAUC 1.8 runs these grub-editenv commands; our backend must leave the same bytes.
#[test]
fn backend_writes_what_raucs_grub_editenv_calls_write() {
    let dir = tempfile::tempdir().unwrap();
    let ours = rauc_initial(dir.path());
    let theirs = dir.path().join("theirs");
    fs::copy(&ours, &theirs).unwrap();
    let grub = GrubBackend::new(&ours, ab());

    // Install into B: mark it bad, write it, then activate.
    grub.set_state(&slot("B"), SlotState::Bad).unwrap();
    editenv(&theirs, &["set", "B_OK=0", "B_TRY=0"]);
    assert_eq!(fs::read(&ours).unwrap(), fs::read(&theirs).unwrap());

    grub.set_primary(&slot("B")).unwrap();
    editenv(&theirs, &["set", "B_OK=1", "B_TRY=0", "ORDER=B A"]);
    assert_eq!(fs::read(&ours).unwrap(), fs::read(&theirs).unwrap());

    grub.set_state(&slot("A"), SlotState::Good).unwrap();
    editenv(&theirs, &["set", "A_OK=1", "A_TRY=0"]);
    assert_eq!(fs::read(&ours).unwrap(), fs::read(&theirs).unwrap());

    assert_eq!(list(&ours), "ORDER=B A\nA_OK=1\nA_TRY=0\nB_OK=1\nB_TRY=0\n");
}

#[test]
fn trial_boot_and_fallback_as_grub_conf_does_it() {
    let dir = tempfile::tempdir().unwrap();
    let f = rauc_initial(dir.path());
    let grub = GrubBackend::new(&f, ab());
    assert_eq!(grub.primary().unwrap(), Some(slot("A")));

    grub.set_state(&slot("B"), SlotState::Bad).unwrap();
    assert_eq!(grub.state(&slot("B")).unwrap(), SlotState::Bad);
    assert_eq!(grub.primary().unwrap(), Some(slot("A")));
    grub.set_primary(&slot("B")).unwrap();
    assert_eq!(grub.primary().unwrap(), Some(slot("B")));
    assert_eq!(grub.attempts_left(&slot("B")).unwrap(), Some(1));

    // GRUB picks B and, before booting it, does `set B_TRY=1; save_env ...`.
    editenv(&f, &["set", "B_TRY=1"]);
    // During the trial the health gate sees no attempts left on the booted slot...
    assert_eq!(grub.attempts_left(&slot("B")).unwrap(), Some(0));
    assert_eq!(grub.state(&slot("B")).unwrap(), SlotState::Bad);
    // ...and if it never commits, the next boot falls back to A.
    assert_eq!(grub.primary().unwrap(), Some(slot("A")));

    // Commit: mark-good on the booted slot.
    grub.set_state(&slot("B"), SlotState::Good).unwrap();
    assert_eq!(grub.primary().unwrap(), Some(slot("B")));
    assert_eq!(list(&f), our_list(&f));
}

#[test]
fn state_follows_raucs_reading_rules() {
    let dir = tempfile::tempdir().unwrap();
    let f = rauc_initial(dir.path());
    let grub = GrubBackend::new(&f, ab());
    // Not in ORDER: bad even with OK=1 TRY=0.
    editenv(&f, &["set", "ORDER=A"]);
    assert_eq!(grub.state(&slot("B")).unwrap(), SlotState::Bad);
    // g_ascii_strtoull base 0: "0x1" is 1.
    editenv(&f, &["set", "ORDER=B A", "B_OK=0x1"]);
    assert_eq!(grub.state(&slot("B")).unwrap(), SlotState::Good);
    // Nothing bootable: no primary.
    editenv(&f, &["set", "A_OK=0", "B_OK=0"]);
    assert_eq!(grub.primary().unwrap(), None);
    // A missing variable is an error, as in RAUC.
    editenv(&f, &["unset", "B_TRY"]);
    assert!(
        matches!(grub.state(&slot("B")), Err(BootError::MissingVar { name }) if name == "B_TRY")
    );
    // Unknown slots are refused before anything is written.
    let before = fs::read(&f).unwrap();
    assert!(matches!(
        grub.set_primary(&slot("C")),
        Err(BootError::UnknownSlot { .. })
    ));
    assert_eq!(fs::read(&f).unwrap(), before);
}

#[test]
fn power_cut_before_rename_keeps_the_old_env() {
    let dir = tempfile::tempdir().unwrap();
    let f = rauc_initial(dir.path());
    let old = fs::read(&f).unwrap();
    let grub = GrubBackend::new(&f, ab());

    // Cut after a partial temp write, before the rename.
    let mut new_env = GrubEnv::parse(&old).unwrap();
    new_env.set("ORDER", "B A").unwrap();
    let temp = atomic_file::write_temp(&f, &new_env.serialize().unwrap()).unwrap();
    let partial = fs::read(&temp).unwrap();
    fs::write(&temp, &partial[..300]).unwrap();

    assert_eq!(fs::read(&f).unwrap(), old);
    assert_eq!(list(&f), "ORDER=A B\nA_OK=1\nA_TRY=0\nB_OK=1\nB_TRY=0\n");
    assert_eq!(grub.primary().unwrap(), Some(slot("A")));

    // The next write replaces the stale temp and lands whole.
    grub.set_primary(&slot("B")).unwrap();
    assert!(!temp.exists());
    assert_eq!(list(&f), "ORDER=B A\nA_OK=1\nA_TRY=0\nB_OK=1\nB_TRY=0\n");
}

#[test]
fn refuses_a_truncated_or_oversize_file() {
    let dir = tempfile::tempdir().unwrap();
    let f = rauc_initial(dir.path());
    let grub = GrubBackend::new(&f, ab());
    let mut bytes = fs::read(&f).unwrap();
    fs::write(&f, &bytes[..512]).unwrap();
    assert!(matches!(
        grub.primary(),
        Err(BootError::GrubEnv {
            source: GrubEnvError::WrongSize { len: 512 },
            ..
        })
    ));
    bytes.extend_from_slice(b"####");
    fs::write(&f, &bytes).unwrap();
    assert!(matches!(grub.primary(), Err(BootError::TooLarge { .. })));
}
