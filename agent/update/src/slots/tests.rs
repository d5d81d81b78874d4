use super::*;

/// A raw slot on `/dev/NAME` (also used by the planner's tests).
pub(crate) fn slot(name: &str, bootname: Option<&str>, parent: Option<&str>) -> Slot {
    Slot {
        id: SlotId::parse(name).unwrap(),
        device: PathBuf::from(format!("/dev/{name}")),
        slot_type: SlotType::Raw,
        bootname: bootname.map(|b| SlotName::new(b).unwrap()),
        parent: parent.map(|p| SlotId::parse(p).unwrap()),
        readonly: false,
    }
}

pub(crate) fn ab_table() -> SlotTable {
    SlotTable::new(vec![
        slot("rootfs.0", Some("A"), None),
        slot("rootfs.1", Some("B"), None),
        slot("appfs.0", None, Some("rootfs.0")),
        slot("appfs.1", None, Some("rootfs.1")),
    ])
    .unwrap()
}

fn booted(name: &str) -> Booted {
    Booted::Slot(SlotId::parse(name).unwrap())
}

fn targets(t: &SlotTable, b: &Booted) -> Vec<(String, String)> {
    t.target_group(b)
        .into_iter()
        .map(|(c, s)| (c, s.id.to_string()))
        .collect()
}

#[test]
fn the_other_group_is_the_target() {
    let t = ab_table();
    assert_eq!(
        targets(&t, &booted("rootfs.0")),
        [
            ("appfs".into(), "appfs.1".into()),
            ("rootfs".into(), "rootfs.1".into())
        ]
    );
    assert_eq!(
        targets(&t, &booted("rootfs.1")),
        [
            ("appfs".into(), "appfs.0".into()),
            ("rootfs".into(), "rootfs.0".into())
        ]
    );
}

#[test]
fn booted_group_is_never_a_target_whatever_is_booted() {
    let t = ab_table();
    for b in ["rootfs.0", "rootfs.1", "appfs.0", "appfs.1"] {
        let b = booted(b);
        for (_, s) in t.target_group(&b) {
            assert!(!t.in_booted_group(s, &b), "{} targeted while {b:?}", s.id);
            assert_eq!(t.activity(s, &b), SlotActivity::Inactive);
        }
    }
}

#[test]
fn booting_a_child_keeps_its_parent_out_of_the_targets() {
    let t = ab_table();
    let g = targets(&t, &booted("appfs.0"));
    assert_eq!(
        g,
        [
            ("appfs".into(), "appfs.1".into()),
            ("rootfs".into(), "rootfs.1".into())
        ]
    );
}

#[test]
fn external_boot_targets_the_first_group() {
    let t = ab_table();
    assert_eq!(
        targets(&t, &Booted::External),
        [
            ("appfs".into(), "appfs.0".into()),
            ("rootfs".into(), "rootfs.0".into())
        ]
    );
}

#[test]
fn activity_matches_rauc() {
    let t = ab_table();
    let b = booted("rootfs.0");
    let act: Vec<_> = t.iter().map(|s| t.activity(s, &b).as_str()).collect();
    assert_eq!(act, ["booted", "inactive", "active", "inactive"]);
}

#[test]
fn find_booted_by_bootname_name_or_device() {
    let t = ab_table();
    assert_eq!(t.find_booted("B").unwrap().id.to_string(), "rootfs.1");
    assert_eq!(
        t.find_booted("rootfs.0").unwrap().id.to_string(),
        "rootfs.0"
    );
    assert_eq!(
        t.find_booted("/dev/appfs.1").unwrap().id.to_string(),
        "appfs.1"
    );
    assert!(t.find_booted("C").is_none());
}

#[test]
fn rejects_inconsistent_tables() {
    let dup = SlotTable::new(vec![slot("a.0", Some("A"), None), slot("a.0", None, None)]);
    assert!(matches!(dup, Err(SlotConfigError::DuplicateSlot(_))));
    let dupb = SlotTable::new(vec![
        slot("a.0", Some("A"), None),
        slot("a.1", Some("A"), None),
    ]);
    assert!(matches!(dupb, Err(SlotConfigError::DuplicateBootname(_))));
    let orphan = SlotTable::new(vec![slot("a.0", None, Some("b.0"))]);
    assert!(matches!(orphan, Err(SlotConfigError::UnknownParent { .. })));
    let looped = SlotTable::new(vec![
        slot("a.0", None, Some("b.0")),
        slot("b.0", None, Some("a.0")),
    ]);
    assert!(matches!(looped, Err(SlotConfigError::ParentLoop(_))));
    for bad in ["rootfs", "rootfs.", ".0", "a.b.c", "a .0"] {
        assert!(SlotId::parse(bad).is_err(), "{bad}");
    }
}
