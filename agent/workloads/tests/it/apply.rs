//! Applying revisions: exact content, tombstones, replacement, images, no-ops.

use std::fs;
use std::os::unix::fs::MetadataExt;

use outpost_workloads::apply::{MARKER, TOMBSTONE_PREFIX};
use outpost_workloads::{applied, apply, remove_tombstone, Error, Target, WorkloadKind};

use crate::common::{cm, deployment, files, import, names, set_tar, Device};

#[test]
fn first_apply_writes_exactly_the_set() {
    let dev = Device::new();
    let store = dev.store();
    let web = deployment("web");
    let db = cm("db", "1");
    let set = import(
        &store,
        "r1",
        &[
            ("manifests/web.yaml", &web),
            ("manifests/db.yml", &db),
            ("images/app.tar.zst", b"layers"),
        ],
    );
    assert_eq!(set.workloads().len(), 1);
    assert_eq!(set.workloads()[0].kind, WorkloadKind::Deployment);
    let target = dev.target();
    let report = apply(&store, "r1", &target).unwrap();
    assert!(!report.unchanged);
    assert_eq!(report.previous, None);
    assert!(report.images_changed);
    assert_eq!(report.images_added, ["app.tar.zst"]);
    let live = files(&target.live_dir());
    assert_eq!(
        live.keys().collect::<Vec<_>>(),
        [MARKER, "db.yml", "web.yaml"]
    );
    assert_eq!(live["web.yaml"], web);
    assert_eq!(live["db.yml"], db);
    assert_eq!(files(&dev.images_dir())["outpost-app.tar.zst"], b"layers");
    assert!(names(&target.staging_dir).is_empty());
    let state = applied(&target).unwrap().unwrap();
    assert_eq!(state.revision, "r1");
    assert!(state.tombstones.is_empty());
    assert_eq!(store.applied().unwrap().as_deref(), Some("r1"));
}

#[test]
fn dropped_files_become_tombstones_and_carry_forward() {
    let dev = Device::new();
    let store = dev.store();
    let target = dev.target();
    let web = cm("web", "1");
    let import =
        |rev: &str, files: &[(&str, &[u8])]| store.import(rev, &set_tar(files)[..]).unwrap();
    import(
        "r1",
        &[
            ("manifests/web.yaml", &web),
            ("manifests/db.yaml", &cm("db", "1")),
            (
                "manifests/cache.json",
                br#"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"c"}}"#,
            ),
        ],
    );
    import("r2", &[("manifests/web.yaml", &web)]);
    import(
        "r3",
        &[
            ("manifests/web.yaml", &web),
            ("manifests/new.yaml", &cm("n", "1")),
        ],
    );
    import("r4", &[("manifests/web.yaml", &web)]);

    apply(&store, "r1", &target).unwrap();
    let report = apply(&store, "r2", &target).unwrap();
    assert_eq!(report.previous.as_deref(), Some("r1"));
    let addons: Vec<_> = report.tombstones.iter().map(|t| t.addon.as_str()).collect();
    assert_eq!(addons, ["cache", "db"]);
    let live = files(&target.live_dir());
    for t in &report.tombstones {
        let content = &live[&t.file];
        assert!(content.starts_with(TOMBSTONE_PREFIX.as_bytes()));
        assert!(String::from_utf8_lossy(content).contains("revision r2"));
        assert_eq!(t.sha256, sha256_hex(content));
    }
    let r2_tombstones = report.tombstones.clone();

    // r3 adds a file; the tombstones not yet removed are carried with the same content.
    let report = apply(&store, "r3", &target).unwrap();
    assert_eq!(report.tombstones, r2_tombstones);
    assert_eq!(
        names(&target.live_dir()),
        [MARKER, "cache.json", "db.yaml", "new.yaml", "web.yaml"]
    );

    // The daemon saw K3s apply the db tombstone.
    remove_tombstone(&target, "db").unwrap();
    remove_tombstone(&target, "db").unwrap();
    assert!(matches!(
        remove_tombstone(&target, "web"),
        Err(Error::NotATombstone(_))
    ));
    let state = applied(&target).unwrap().unwrap();
    assert_eq!(state.revision, "r3");
    assert_eq!(state.tombstones.len(), 1);
    assert_eq!(state.tombstones[0].addon, "cache");

    // r4 drops new.yaml: a fresh tombstone; cache carried; db stays gone.
    let report = apply(&store, "r4", &target).unwrap();
    let addons: Vec<_> = report.tombstones.iter().map(|t| t.addon.as_str()).collect();
    assert_eq!(addons, ["cache", "new"]);
    assert_eq!(report.tombstones[0], r2_tombstones[0]);
    assert_eq!(
        names(&target.live_dir()),
        [MARKER, "cache.json", "new.yaml", "web.yaml"]
    );
}

#[test]
fn second_revision_replaces_first() {
    let dev = Device::new();
    let store = dev.store();
    let target = dev.target();
    fs::create_dir_all(dev.images_dir()).unwrap();
    fs::write(dev.images_dir().join("k3s-airgap-images.tar"), b"k3s").unwrap();
    import(
        &store,
        "1.0",
        &[
            ("manifests/a.yaml", &cm("a", "1")),
            ("images/app.tar", b"one"),
            ("images/keep.tar.gz", b"keep"),
        ],
    );
    import(
        &store,
        "2.0",
        &[
            ("manifests/a.yaml", &cm("a", "2")),
            ("manifests/b.yaml", &cm("b", "2")),
            ("images/other.tar.lz4", b"two"),
            ("images/keep.tar.gz", b"keep"),
        ],
    );
    apply(&store, "1.0", &target).unwrap();
    let report = apply(&store, "2.0", &target).unwrap();
    assert!(report.tombstones.is_empty());
    assert_eq!(report.images_added, ["other.tar.lz4"]);
    assert_eq!(report.images_removed, ["app.tar"]);
    let live = files(&target.live_dir());
    assert_eq!(live["a.yaml"], cm("a", "2"));
    assert_eq!(live["b.yaml"], cm("b", "2"));
    assert_eq!(live.len(), 3);
    assert_eq!(
        names(&dev.images_dir()),
        [
            "k3s-airgap-images.tar",
            "outpost-keep.tar.gz",
            "outpost-other.tar.lz4"
        ]
    );
    // Back to 1.0 (a slot rollback): b.yaml becomes a tombstone.
    let report = apply(&store, "1.0", &target).unwrap();
    assert_eq!(report.tombstones.len(), 1);
    assert_eq!(report.tombstones[0].file, "b.yaml");
    assert_eq!(files(&target.live_dir())["a.yaml"], cm("a", "1"));
}

#[test]
fn reapply_after_restart_is_noop() {
    let dev = Device::new();
    {
        let store = dev.store();
        import(
            &store,
            "r1",
            &[("manifests/a.yaml", &cm("a", "1")), ("images/i.tar", b"i")],
        );
        apply(&store, "r1", &dev.target()).unwrap();
    }
    let before = fs::metadata(dev.target().live_dir().join("a.yaml")).unwrap();
    // A "restart": new Store and Target values over the same directories.
    let store = dev.store();
    let target = dev.target();
    let report = apply(&store, "r1", &target).unwrap();
    assert!(report.unchanged);
    assert!(!report.images_changed);
    assert_eq!(report.previous.as_deref(), Some("r1"));
    let after = fs::metadata(target.live_dir().join("a.yaml")).unwrap();
    assert_eq!(before.ino(), after.ino());
    assert_eq!(before.mtime_nsec(), after.mtime_nsec());

    // A file changed behind our back is not "unchanged": the apply repairs it.
    fs::write(target.live_dir().join("a.yaml"), b"# edited\n").unwrap();
    let report = apply(&store, "r1", &target).unwrap();
    assert!(!report.unchanged);
    assert_eq!(files(&target.live_dir())["a.yaml"], cm("a", "1"));
}

#[test]
fn renamed_file_of_same_addon_needs_no_tombstone() {
    let dev = Device::new();
    let store = dev.store();
    let target = dev.target();
    import(&store, "r1", &[("manifests/web.yaml", &cm("w", "1"))]);
    import(&store, "r2", &[("manifests/web.v2.yaml", &cm("w", "2"))]);
    apply(&store, "r1", &target).unwrap();
    let report = apply(&store, "r2", &target).unwrap();
    assert!(report.tombstones.is_empty());
    assert_eq!(names(&target.live_dir()), [MARKER, "web.v2.yaml"]);
}

#[test]
fn empty_set_tombstones_everything() {
    let dev = Device::new();
    let store = dev.store();
    let target = dev.target();
    import(&store, "r1", &[("manifests/web.yaml", &cm("w", "1"))]);
    import(&store, "r2", &[]);
    apply(&store, "r1", &target).unwrap();
    let report = apply(&store, "r2", &target).unwrap();
    assert_eq!(report.tombstones.len(), 1);
    assert_eq!(applied(&target).unwrap().unwrap().revision, "r2");
}

#[test]
fn leftover_staging_is_cleaned() {
    let dev = Device::new();
    let store = dev.store();
    let target = dev.target();
    import(&store, "r1", &[("manifests/a.yaml", &cm("a", "1"))]);
    fs::create_dir_all(target.staging_dir.join("next/sub")).unwrap();
    fs::write(target.staging_dir.join("next/x.yaml"), b"half").unwrap();
    fs::create_dir_all(dev.images_dir()).unwrap();
    fs::write(
        dev.images_dir().join(".outpost-app.tar.outpost-tmp"),
        b"half",
    )
    .unwrap();
    apply(&store, "r1", &target).unwrap();
    assert!(names(&target.staging_dir).is_empty());
    assert!(names(&dev.images_dir()).is_empty());
}

#[test]
fn where_things_may_be() {
    let dev = Device::new();
    let store = dev.store();
    import(&store, "r1", &[("manifests/web.yaml", &cm("a", "1"))]);
    assert!(matches!(
        apply(&store, "r9", &dev.target()),
        Err(Error::UnknownRevision(_))
    ));

    let mut inside = dev.target();
    inside.staging_dir = dev.manifests_dir().join("staging");
    assert!(matches!(
        apply(&store, "r1", &inside),
        Err(Error::StagingOverlapsManifests { .. })
    ));
    let mut outside = dev.target();
    outside.staging_dir = dev.dir.path().join("k3s");
    assert!(matches!(
        apply(&store, "r1", &outside),
        Err(Error::StagingOverlapsManifests { .. })
    ));

    let mut bad_subdir = dev.target();
    bad_subdir.subdir = "../x".into();
    assert!(apply(&store, "r1", &bad_subdir).is_err());

    // Another file in the manifests dir (any depth) is already the AddOn "web".
    let other = dev.manifests_dir().join("vendor");
    fs::create_dir_all(&other).unwrap();
    fs::write(other.join("web.service.yaml"), b"").unwrap();
    let e = apply(&store, "r1", &dev.target()).unwrap_err();
    assert!(matches!(e, Error::AddonClash { .. }), "{e}");
    // ... unless K3s skips it.
    fs::write(other.join("web.service.yaml.skip"), b"").unwrap();
    apply(&store, "r1", &dev.target()).unwrap();
}

#[test]
fn staging_on_another_filesystem_is_refused() {
    let dev = Device::new();
    let shm = std::path::Path::new("/dev/shm");
    let same_fs = |a: &std::path::Path, b: &std::path::Path| {
        fs::metadata(a).unwrap().dev() == fs::metadata(b).unwrap().dev()
    };
    if !shm.is_dir() || same_fs(shm, dev.dir.path()) {
        eprintln!("skipped: no second filesystem at /dev/shm");
        return;
    }
    let staging = tempfile::tempdir_in(shm).unwrap();
    let store = dev.store();
    import(&store, "r1", &[("manifests/a.yaml", &cm("a", "1"))]);
    let target = Target {
        staging_dir: staging.path().to_owned(),
        ..dev.target()
    };
    let e = apply(&store, "r1", &target).unwrap_err();
    assert!(matches!(e, Error::CrossDevice { .. }), "{e}");
    assert!(!target.live_dir().exists());
}

#[test]
fn corrupted_store_file_is_not_applied() {
    let dev = Device::new();
    let store = dev.store();
    let target = dev.target();
    import(&store, "r1", &[("manifests/a.yaml", &cm("a", "1"))]);
    import(&store, "r2", &[("manifests/a.yaml", &cm("a", "2"))]);
    apply(&store, "r1", &target).unwrap();
    fs::write(
        store.revision_dir("r2").join("manifests/a.yaml"),
        b"# evil\n",
    )
    .unwrap();
    let e = apply(&store, "r2", &target).unwrap_err();
    assert!(matches!(e, Error::Corrupt { .. }), "{e}");
    assert_eq!(files(&target.live_dir())["a.yaml"], cm("a", "1"));
}

#[test]
fn set_json_round_trips() {
    let dev = Device::new();
    let store = dev.store();
    let set = import(&store, "r1", &[("manifests/a.yaml", &deployment("a"))]);
    let json = serde_json::to_value(&set).unwrap();
    assert_eq!(json["revision"], "r1");
    assert_eq!(json["manifests"][0]["objects"][0]["kind"], "Deployment");
    assert_eq!(json["manifests"][0]["objects"][0]["namespace"], "apps");
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}
