//! The systemd-boot backend against the real `bootctl` (systemd 252): after every call, the
//! entry bootctl marks `(default)` must be our primary slot's entry, and its `tries:` must be
//! our `attempts_left`.
//!
//! bootctl works offline on a directory ESP (see `outpost_testkit::esp`): it lists Type #1
//! entries and UKIs with their counters and picks the default as systemd-boot does, from
//! loader.conf only (`--no-variables`: no EFI variables here). What bootctl cannot do offline:
//! boot, decrement counters (systemd-boot does that in the firmware; we rename as it does,
//! `EntryName::after_boot_attempt`) or bless (`systemd-bless-boot` needs the
//! `LoaderBootCountPath` EFI variable).

use outpost_boot::systemd_boot::{
    rename_entry, EntryKind, EntryName, SystemdBootBackend, SystemdBootConfig,
};
use outpost_boot::{BootError, Bootloader, SlotState};
use outpost_testkit::esp::{bootctl_list, Esp};

use crate::{ab, slot};

fn backend(esp: &Esp, kind: EntryKind) -> SystemdBootBackend {
    let mut cfg = SystemdBootConfig::new(&esp.root);
    cfg.kind = kind;
    SystemdBootBackend::new(cfg, ab())
}

/// The file holding `slot`'s entry.
fn entry_file(esp: &Esp, kind: EntryKind, s: &str) -> String {
    esp.files(kind.dir())
        .into_iter()
        .find(|f| EntryName::parse(f).is_some_and(|n| n.stem.ends_with(&format!("-{s}"))))
        .unwrap_or_else(|| panic!("no entry for {s}"))
}

/// Asserts bootctl and the backend agree on the default and on every slot's counter; returns
/// the primary slot.
fn agree(esp: &Esp, kind: EntryKind, b: &SystemdBootBackend) -> Option<String> {
    let listed = bootctl_list(&esp.root);
    let default = listed
        .iter()
        .find(|e| e.is_default)
        .map(|e| e.file_name.clone());
    assert_eq!(
        default,
        b.default_entry().unwrap(),
        "default entry: {listed:?}"
    );
    let primary = b.primary().unwrap().map(|s| s.to_string());
    assert_eq!(
        default
            .as_ref()
            .map(|f| f.contains(&format!("-{}", primary.as_deref().unwrap_or("?")))),
        Some(true),
        "bootctl default {default:?} is not the primary slot {primary:?}"
    );
    for s in ["A", "B"] {
        let file = entry_file(esp, kind, s);
        let seen = listed.iter().find(|e| e.file_name == file);
        let left = b.attempts_left(&slot(s)).unwrap();
        let state = b.state(&slot(s)).unwrap();
        match seen {
            Some(e) => {
                assert_eq!(e.tries_left, left, "{s}: bootctl tries vs attempts_left");
                let bad = e.tries_left == Some(0);
                assert_eq!(state == SlotState::Bad, bad, "{s}: {e:?} vs {state:?}");
            }
            // Not listed by bootctl: not bootable, so Bad.
            None => assert_eq!(state, SlotState::Bad, "{s} is not listed: {listed:?}"),
        }
    }
    primary
}

/// What systemd-boot does to the entry it boots (we cannot run the firmware).
fn firmware_boots(esp: &Esp, kind: EntryKind) -> String {
    let default = bootctl_list(&esp.root)
        .into_iter()
        .find(|e| e.is_default)
        .expect("bootctl has a default");
    let path = esp.root.join(kind.dir()).join(&default.file_name);
    let name = EntryName::parse(&default.file_name).unwrap();
    rename_entry(&path, &name.after_boot_attempt()).unwrap();
    default.file_name
}

fn full_cycle(kind: EntryKind) {
    let esp = Esp::new();
    let add = |name: &str, v: &str| match kind {
        EntryKind::Uki => esp.add_uki(&format!("{name}.efi"), v),
        EntryKind::Type1 => esp.add_type1(&format!("{name}.conf"), name),
    };
    // Factory: A is primary (higher generation), both good, same os-release version.
    add("outpost_1-A", "1.0");
    add("outpost_0-B", "1.0");
    let b = backend(&esp, kind);
    assert_eq!(agree(&esp, kind, &b).as_deref(), Some("A"));

    // Install into B: bad first, then primary with a fresh counter.
    b.set_state(&slot("B"), SlotState::Bad).unwrap();
    assert_eq!(
        entry_file(&esp, kind, "B"),
        format!("outpost_0-B+0-0.{}", kind.ext())
    );
    assert_eq!(agree(&esp, kind, &b).as_deref(), Some("A"));
    b.set_primary(&slot("B")).unwrap();
    assert_eq!(
        entry_file(&esp, kind, "B"),
        format!("outpost_2-B+3.{}", kind.ext())
    );
    assert_eq!(agree(&esp, kind, &b).as_deref(), Some("B"));
    assert_eq!(b.attempts_left(&slot("B")).unwrap(), Some(3));

    // Reboot into the trial; the gate passes and blesses it.
    firmware_boots(&esp, kind);
    assert_eq!(b.attempts_left(&slot("B")).unwrap(), Some(2));
    assert_eq!(agree(&esp, kind, &b).as_deref(), Some("B"));
    b.set_state(&slot("B"), SlotState::Good).unwrap();
    assert_eq!(
        entry_file(&esp, kind, "B"),
        format!("outpost_2-B.{}", kind.ext())
    );
    assert_eq!(b.attempts_left(&slot("B")).unwrap(), None);
    assert_eq!(agree(&esp, kind, &b).as_deref(), Some("B"));

    // Next update into A never gets a verdict: three boots use up its tries, then B boots.
    b.set_state(&slot("A"), SlotState::Bad).unwrap();
    b.set_primary(&slot("A")).unwrap();
    assert_eq!(
        entry_file(&esp, kind, "A"),
        format!("outpost_3-A+3.{}", kind.ext())
    );
    for left in [2, 1, 0] {
        assert!(firmware_boots(&esp, kind).contains("-A"));
        assert_eq!(b.attempts_left(&slot("A")).unwrap(), Some(left));
    }
    assert_eq!(
        entry_file(&esp, kind, "A"),
        format!("outpost_3-A+0-3.{}", kind.ext())
    );
    assert_eq!(b.state(&slot("A")).unwrap(), SlotState::Bad);
    assert_eq!(agree(&esp, kind, &b).as_deref(), Some("B"));

    // mark-active A again (an operator retry), then the gate marks it bad: fallback to B.
    b.set_primary(&slot("A")).unwrap();
    assert_eq!(agree(&esp, kind, &b).as_deref(), Some("A"));
    b.set_state(&slot("A"), SlotState::Bad).unwrap();
    assert_eq!(agree(&esp, kind, &b).as_deref(), Some("B"));
    // Marking B bad too leaves nothing good: systemd-boot still boots the first entry.
    b.set_state(&slot("B"), SlotState::Bad).unwrap();
    assert!(agree(&esp, kind, &b).is_some());
}

#[test]
fn bootctl_agrees_through_install_commit_and_rollback_with_ukis() {
    full_cycle(EntryKind::Uki);
}

#[test]
fn bootctl_agrees_through_install_commit_and_rollback_with_type1_entries() {
    full_cycle(EntryKind::Type1);
}

#[test]
fn a_newer_os_release_version_keeps_winning_and_set_primary_says_so() {
    let esp = Esp::new();
    esp.add_uki("outpost_1-A.efi", "2.0");
    esp.add_uki("outpost_0-B.efi", "1.0");
    let b = backend(&esp, EntryKind::Uki);
    let err = b.set_primary(&slot("B")).unwrap_err();
    assert!(
        matches!(&err, BootError::NotPrimary { slot, chosen } if slot == "B" && chosen == "outpost_1-A.efi"),
        "{err}"
    );
    // The rename happened (B is armed, a known state); bootctl still boots A, as we report.
    assert_eq!(entry_file(&esp, EntryKind::Uki, "B"), "outpost_2-B+3.efi");
    assert_eq!(agree(&esp, EntryKind::Uki, &b).as_deref(), Some("A"));
    // Rolling back to the older version works the way systemd-boot allows: A marked bad.
    b.set_state(&slot("A"), SlotState::Bad).unwrap();
    assert_eq!(agree(&esp, EntryKind::Uki, &b).as_deref(), Some("B"));
}

#[test]
fn a_default_pattern_boots_even_an_exhausted_entry() {
    let esp = Esp::new();
    esp.add_uki("outpost_1-A.efi", "1.0");
    esp.add_uki("outpost_2-B+0-3.efi", "1.0");
    std::fs::write(
        esp.root.join("loader/loader.conf"),
        "default outpost_*-b*\n",
    )
    .unwrap();
    let b = backend(&esp, EntryKind::Uki);
    // bootctl picks the +0 entry the pattern names: exactly why we never write a pattern.
    assert_eq!(agree(&esp, EntryKind::Uki, &b).as_deref(), Some("B"));
    assert!(matches!(
        b.set_primary(&slot("A")),
        Err(BootError::NotPrimary { .. })
    ));
    // A glob over every slot keeps the sort order in charge.
    std::fs::write(esp.root.join("loader/loader.conf"), "default outpost_*\n").unwrap();
    assert_eq!(agree(&esp, EntryKind::Uki, &b).as_deref(), Some("A"));
}

#[test]
fn missing_duplicate_and_unlisted_entries_are_reported() {
    let esp = Esp::new();
    esp.add_uki("outpost_1-A.efi", "1.0");
    let b = backend(&esp, EntryKind::Uki);
    assert!(matches!(
        b.state(&slot("B")),
        Err(BootError::NoEntry { slot, .. }) if slot == "B"
    ));
    assert!(matches!(
        b.state(&slot("C")),
        Err(BootError::UnknownSlot { .. })
    ));
    // A UKI systemd-boot would skip (no .osrel) is not bootable.
    std::fs::write(esp.root.join("EFI/Linux/outpost_0-B.efi"), b"MZ truncated").unwrap();
    assert_eq!(b.state(&slot("B")).unwrap(), SlotState::Bad);
    assert_eq!(agree(&esp, EntryKind::Uki, &b).as_deref(), Some("A"));
    esp.add_uki("outpost_5-B+3.efi", "1.0");
    assert!(matches!(
        b.state(&slot("B")),
        Err(BootError::DuplicateEntry { .. })
    ));
}
