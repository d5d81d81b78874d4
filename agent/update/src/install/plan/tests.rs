use super::*;
use crate::slots::tests::{ab_table as table, slot};

const SHA: &str = "a279994684225de8b805194dcdbc43bc5007a62e585faa9cc52d727a2032c904";

fn manifest(extra: &str) -> Manifest {
    let text = format!(
        "[update]\ncompatible=Test\nversion=2.0.0\n\n\
         [image.rootfs]\nsha256={SHA}\nsize=1000\nfilename=rootfs.img\n\n\
         [image.appfs]\nsha256={SHA}\nsize=10\nfilename=appfs.img\n{extra}"
    );
    Manifest::parse(text.as_bytes()).unwrap()
}

fn sizes(t: &SlotTable, size: u64) -> BTreeMap<SlotId, u64> {
    t.iter().map(|s| (s.id.clone(), size)).collect()
}

fn booted(n: &str) -> Booted {
    Booted::Slot(SlotId::parse(n).unwrap())
}

fn run(m: &Manifest, t: &SlotTable, b: &Booted, opts: &InstallOptions) -> Result<Plan, Refusal> {
    plan(PlanInput {
        manifest: m,
        compatible: "Test",
        slots: t,
        booted: b,
        slot_sizes: &sizes(t, 4096),
        options: opts,
    })
}

fn id(n: &str) -> SlotId {
    SlotId::parse(n).unwrap()
}

#[test]
fn steps_follow_rauc_order() {
    let t = table();
    let p = run(&manifest(""), &t, &booted("rootfs.0"), &Default::default()).unwrap();
    let b = SlotName::new("B").unwrap();
    assert_eq!(
        p.steps,
        vec![
            Step::MarkBad {
                slot: id("rootfs.1"),
                bootname: b.clone()
            },
            Step::MarkUpdating { image: 0 },
            Step::WriteImage { image: 0 },
            Step::RecordInstalled { image: 0 },
            Step::MarkUpdating { image: 1 },
            Step::WriteImage { image: 1 },
            Step::RecordInstalled { image: 1 },
            Step::Activate {
                slot: id("rootfs.1"),
                bootname: b
            },
        ]
    );
    assert_eq!(p.images[0].slot, id("rootfs.1"));
    assert_eq!(p.images[0].device, PathBuf::from("/dev/rootfs.1"));
    assert_eq!(p.images[1].slot, id("appfs.1"));
    assert_eq!(p.images[1].size, 10);
}

#[test]
fn no_activation_when_disabled() {
    let t = table();
    let opts = InstallOptions {
        activate: false,
        ..Default::default()
    };
    let p = run(&manifest(""), &t, &booted("rootfs.1"), &opts).unwrap();
    assert!(!p.steps.iter().any(|s| matches!(s, Step::Activate { .. })));
    assert_eq!(p.images[0].slot, id("rootfs.0"));
}

/// The booted slot (and its group) is never written, whatever is booted and whatever the
/// bundle contains: every write and every MarkBad targets the other group.
#[test]
fn booted_slot_is_never_written_by_construction() {
    let t = table();
    for b in ["rootfs.0", "rootfs.1", "appfs.0", "appfs.1"] {
        let b = booted(b);
        let p = run(&manifest(""), &t, &b, &Default::default()).unwrap();
        for img in &p.images {
            let s = t.get(&img.slot).unwrap();
            assert!(!t.in_booted_group(s, &b), "{b:?} -> {}", img.slot);
        }
        for step in &p.steps {
            if let Step::MarkBad { slot, .. } | Step::Activate { slot, .. } = step {
                assert!(!t.in_booted_group(t.get(slot).unwrap(), &b));
            }
        }
    }
    // A one-slot class has no inactive member while booted: refused, not written.
    let single = SlotTable::new(vec![slot("rootfs.0", Some("A"), None)]).unwrap();
    let m = Manifest::parse(
        format!("[update]\ncompatible=Test\n[image.rootfs]\nsha256={SHA}\nsize=1\nfilename=r\n")
            .as_bytes(),
    )
    .unwrap();
    assert_eq!(
        run(&m, &single, &booted("rootfs.0"), &Default::default()),
        Err(Refusal::NoTargetSlot {
            class: "rootfs".into()
        })
    );
}

#[test]
fn refusals() {
    let t = table();
    let b = booted("rootfs.0");
    let d = InstallOptions::default();
    let m = manifest("");
    let other = Manifest {
        compatible: "Other".into(),
        ..m.clone()
    };
    assert!(matches!(
        run(&other, &t, &b, &d),
        Err(Refusal::Incompatible { .. })
    ));
    let ignore = InstallOptions {
        ignore_compatible: true,
        ..d.clone()
    };
    assert!(run(&other, &t, &b, &ignore).is_ok());

    let floor = InstallOptions {
        min_version: Some("2.1".into()),
        ..d.clone()
    };
    assert!(matches!(
        run(&m, &t, &b, &floor),
        Err(Refusal::Downgrade { .. })
    ));
    let same = InstallOptions {
        min_version: Some("2.0.0".into()),
        ..d.clone()
    };
    assert!(run(&m, &t, &b, &same).is_ok());
    let unversioned = Manifest {
        version: None,
        ..m.clone()
    };
    assert!(matches!(
        run(&unversioned, &t, &b, &same),
        Err(Refusal::Downgrade { .. })
    ));
    let skip = InstallOptions {
        ignore_version_limit: true,
        ..floor
    };
    assert!(run(&m, &t, &b, &skip).is_ok());

    let unknown = manifest(&format!(
        "\n[image.datafs]\nsha256={SHA}\nsize=1\nfilename=d.img\n"
    ));
    assert!(matches!(
        run(&unknown, &t, &b, &d),
        Err(Refusal::UnknownClass { class, .. }) if class == "datafs"
    ));

    let mut escaping = m.clone();
    escaping.images[1].filename = Some("../../etc/shadow".into());
    assert!(matches!(
        run(&escaping, &t, &b, &d),
        Err(Refusal::EscapingFilename(_))
    ));

    let big = plan(PlanInput {
        manifest: &m,
        compatible: "Test",
        slots: &t,
        booted: &b,
        slot_sizes: &sizes(&t, 999),
        options: &d,
    });
    assert!(matches!(
        big,
        Err(Refusal::ImageTooLarge {
            size: 1000,
            capacity: 999,
            ..
        })
    ));
    let no_device = plan(PlanInput {
        manifest: &m,
        compatible: "Test",
        slots: &t,
        booted: &b,
        slot_sizes: &BTreeMap::new(),
        options: &d,
    });
    assert!(matches!(no_device, Err(Refusal::MissingDevice { .. })));

    let mut tar = m.clone();
    tar.images[0].filename = Some("rootfs.tar.gz".into());
    assert!(matches!(
        run(&tar, &t, &b, &d),
        Err(Refusal::Unsupported { .. })
    ));
}

#[test]
fn variant_image_wins_over_default() {
    let t = table();
    let m = manifest(&format!(
        "\n[image.appfs.board-x]\nsha256={SHA}\nsize=20\nfilename=appfs-x.img\n"
    ));
    let opts = InstallOptions {
        variant: Some("board-x".into()),
        ..Default::default()
    };
    let p = run(&m, &t, &booted("rootfs.0"), &opts).unwrap();
    assert_eq!(p.images[1].filename, "appfs-x.img");
    let p = run(&m, &t, &booted("rootfs.0"), &Default::default()).unwrap();
    assert_eq!(p.images[1].filename, "appfs.img");
}

#[test]
fn a_workload_set_goes_to_no_slot_and_alone_is_not_an_install() {
    let t = table();
    let joint = manifest(&format!(
        "\n[image.manifests]\nsha256={SHA}\nsize=10\nfilename=manifests.tar\n"
    ));
    let p = run(&joint, &t, &booted("rootfs.0"), &Default::default()).unwrap();
    assert_eq!(p.images.len(), 2, "rootfs and appfs only: {:?}", p.images);
    assert!(p.images.iter().all(|i| i.class != WORKLOADS_CLASS));
    let alone = Manifest::parse(
        format!(
            "[update]\ncompatible=Test\nversion=7\n\n\
             [image.manifests]\nsha256={SHA}\nsize=10\nfilename=manifests.tar\n"
        )
        .as_bytes(),
    )
    .unwrap();
    assert_eq!(
        run(&alone, &t, &booted("rootfs.0"), &Default::default()),
        Err(Refusal::NoImages)
    );
}
