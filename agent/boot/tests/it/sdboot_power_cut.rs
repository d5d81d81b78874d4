//! Power cuts on the systemd-boot ESP: the install and commit sequences are cut after every
//! step (each step is one rename, which the filesystem makes atomic: a cut *inside* it leaves
//! the state before or after it, both of which are checked). After each cut the real bootctl
//! must pick either the old good slot or the completely installed new one, and the backend
//! must agree with it; the gate's next call must also work from there.

use outpost_boot::systemd_boot::{EntryName, SystemdBootBackend, SystemdBootConfig};
use outpost_boot::{Bootloader, SlotState};
use outpost_testkit::esp::{bootctl_list, Esp};

use crate::{ab, slot};

type Step = fn(&Esp, &SystemdBootBackend);

/// A device committed on A with B installed before (both good, same os-release version).
fn device() -> (Esp, SystemdBootBackend) {
    let esp = Esp::new();
    esp.add_uki("outpost_3-A.efi", "1.0");
    esp.add_uki("outpost_2-B.efi", "1.0");
    let b = SystemdBootBackend::new(SystemdBootConfig::new(&esp.root), ab());
    (esp, b)
}

/// The install into B as outpost-update runs it, then the trial boot and the gate's commit.
const INSTALL_AND_COMMIT: &[(&str, Step)] = &[
    ("mark B bad", |_, b| {
        b.set_state(&slot("B"), SlotState::Bad).unwrap()
    }),
    // The slot write: the UKI of B is rewritten in place (the worst case: it is torn).
    ("write B (torn)", |esp, _| {
        let f = esp
            .files("EFI/Linux")
            .into_iter()
            .find(|f| f.contains("-B"))
            .unwrap();
        std::fs::write(esp.root.join("EFI/Linux").join(&f), b"MZ").unwrap();
    }),
    ("write B (complete)", |esp, _| {
        let f = esp
            .files("EFI/Linux")
            .into_iter()
            .find(|f| f.contains("-B"))
            .unwrap();
        let p = esp.root.join("EFI/Linux").join(&f);
        std::fs::write(
            p,
            outpost_testkit::esp::uki(&outpost_testkit::esp::osrel("1.0")),
        )
        .unwrap();
    }),
    ("set B primary", |_, b| b.set_primary(&slot("B")).unwrap()),
    ("firmware boots B", |esp, _| {
        let f = esp
            .files("EFI/Linux")
            .into_iter()
            .find(|f| f.contains("-B"))
            .unwrap();
        let name = EntryName::parse(&f).unwrap();
        outpost_boot::systemd_boot::rename_entry(
            &esp.root.join("EFI/Linux").join(&f),
            &name.after_boot_attempt(),
        )
        .unwrap();
    }),
    ("gate marks B good", |_, b| {
        b.set_state(&slot("B"), SlotState::Good).unwrap()
    }),
];

#[test]
fn a_cut_after_any_step_boots_the_old_slot_or_the_whole_new_one() {
    let steps = INSTALL_AND_COMMIT;
    for cut in 0..=steps.len() {
        let (esp, b) = device();
        for (_, step) in &steps[..cut] {
            step(&esp, &b);
        }
        let after = steps[..cut].last().map_or("nothing", |s| s.0);
        let listed = bootctl_list(&esp.root);
        let default = listed
            .iter()
            .find(|e| e.is_default)
            .unwrap_or_else(|| panic!("cut after {after}: bootctl has no default: {listed:?}"));
        let primary = b.primary().unwrap().map(|s| s.to_string());
        // Before "set B primary" the old good slot boots; from then on the new one.
        let expected = if cut >= 4 { "B" } else { "A" };
        assert_eq!(primary.as_deref(), Some(expected), "cut after {after}");
        assert!(
            default.file_name.contains(&format!("-{expected}")),
            "cut after {after}: bootctl boots {default:?}"
        );
        if expected == "A" {
            assert_eq!(default.file_name, "outpost_3-A.efi", "cut after {after}");
            assert_eq!(b.state(&slot("A")).unwrap(), SlotState::Good);
        }
        // Nothing on the ESP but the two entries: no temp files, no third name.
        assert_eq!(esp.files("EFI/Linux").len(), 2, "cut after {after}");
        // Whatever the cut left, the next RAUC call works from it (the agent retries the
        // interrupted operation or the gate goes on).
        b.set_state(&slot("B"), SlotState::Bad).unwrap();
        assert_eq!(b.primary().unwrap(), Some(slot("A")), "cut after {after}");
    }
}

#[test]
fn a_cut_during_a_rename_leaves_one_entry_per_slot() {
    // rename(2) is atomic; what a cut can leave is the name before or after. Both names of
    // each step are a state the sequence above already visits; here we check the backend
    // never needs two names at once: after every step each slot has exactly one entry.
    let (esp, b) = device();
    for (what, step) in INSTALL_AND_COMMIT {
        step(&esp, &b);
        for s in ["A", "B"] {
            let n = esp
                .files("EFI/Linux")
                .iter()
                .filter(|f| f.contains(&format!("-{s}")))
                .count();
            assert_eq!(n, 1, "after {what}: {:?}", esp.files("EFI/Linux"));
        }
    }
    assert_eq!(
        esp.files("EFI/Linux"),
        ["outpost_3-A.efi", "outpost_4-B.efi"]
    );
}
