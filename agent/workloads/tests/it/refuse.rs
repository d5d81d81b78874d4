//! Archives the store must refuse, each with the right typed error; nothing is left behind.

use outpost_workloads::{ArchiveError, Error, NameError};
use tar::EntryType;

use crate::common::{cm, names, raw_tar, set_tar, Device};

fn import(tar: &[u8]) -> Error {
    let dev = Device::new();
    let store = dev.store();
    let e = store.import("r1", tar).unwrap_err();
    assert!(store.get("r1").unwrap().is_none());
    assert!(store.revisions().unwrap().is_empty());
    assert!(names(&dev.store_dir().join("tmp")).is_empty());
    e
}

#[test]
fn bad_names() {
    for name in [
        "manifests/Web.yaml",
        "manifests/web.txt",
        "manifests/.hidden.yaml",
        "manifests/under_score.yaml",
    ] {
        let e = import(&set_tar(&[(name, &cm("a", "1"))]));
        assert!(
            matches!(
                &e,
                Error::Archive(ArchiveError::Name { entry, source: NameError::Manifest { .. } }) if entry == name
            ),
            "{name}: {e}"
        );
    }
    let e = import(&set_tar(&[("images/app.zip", b"x")]));
    assert!(matches!(
        e,
        Error::Archive(ArchiveError::Name {
            source: NameError::Image { .. },
            ..
        })
    ));
}

#[test]
fn reserved_name() {
    let e = import(&set_tar(&[("manifests/traefik.yaml", &cm("a", "1"))]));
    assert!(matches!(
        e,
        Error::Archive(ArchiveError::Name {
            source: NameError::Reserved { .. },
            ..
        })
    ));
}

#[test]
fn dot_dot_and_absolute() {
    for name in [
        "manifests/../evil.yaml",
        "../manifests/a.yaml",
        "/manifests/a.yaml",
    ] {
        let e = import(&raw_tar(name, EntryType::Regular, &cm("a", "1"), None));
        assert!(
            matches!(&e, Error::Archive(ArchiveError::UnsafePath { entry }) if entry == name),
            "{name}: {e}"
        );
    }
}

#[test]
fn links_and_devices() {
    let cases = [
        (EntryType::Symlink, "symlink"),
        (EntryType::Link, "hardlink"),
        (EntryType::Char, "character device"),
        (EntryType::Block, "block device"),
    ];
    for (kind, what) in cases {
        let e = import(&raw_tar("manifests/a.yaml", kind, b"", Some("/etc/shadow")));
        assert!(
            matches!(&e, Error::Archive(ArchiveError::EntryType { kind, entry }) if kind == what && entry == "manifests/a.yaml"),
            "{what}: {e}"
        );
    }
}

#[test]
fn subdirectories() {
    let e = import(&set_tar(&[("manifests/sub/a.yaml", &cm("a", "1"))]));
    assert!(
        matches!(e, Error::Archive(ArchiveError::Layout { .. })),
        "{e}"
    );
    let e = import(&raw_tar("manifests/sub/", EntryType::Directory, b"", None));
    assert!(
        matches!(e, Error::Archive(ArchiveError::Layout { .. })),
        "{e}"
    );
    let e = import(&set_tar(&[("etc/passwd", b"x")]));
    assert!(
        matches!(e, Error::Archive(ArchiveError::Layout { .. })),
        "{e}"
    );
}

#[test]
fn duplicates() {
    let a = cm("a", "1");
    let e = import(&set_tar(&[
        ("manifests/web.yaml", &a),
        ("manifests/web.yaml", &a),
    ]));
    assert!(
        matches!(e, Error::Archive(ArchiveError::Duplicate { .. })),
        "{e}"
    );
    let e = import(&set_tar(&[
        ("manifests/web.yaml", &a),
        ("manifests/web.service.yaml", &a),
    ]));
    match e {
        Error::Archive(ArchiveError::DuplicateAddon {
            addon,
            first,
            second,
        }) => {
            assert_eq!(addon, "web");
            assert_eq!(first, "web.yaml");
            assert_eq!(second, "web.service.yaml");
        }
        other => panic!("{other}"),
    }
}

#[test]
fn broken_yaml_names_file_and_line() {
    let yaml =
        b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  k: \"unterminated\n";
    let e = import(&set_tar(&[("manifests/broken.yaml", yaml)]));
    match &e {
        Error::Archive(ArchiveError::Yaml { file, line, .. }) => {
            assert_eq!(file, "broken.yaml");
            assert!(*line >= 6, "line {line}");
        }
        other => panic!("{other}"),
    }
    assert!(e.to_string().contains("broken.yaml"));
}

#[test]
fn missing_kind() {
    let yaml = b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\napiVersion: v1\nmetadata: {name: b}\n";
    let e = import(&set_tar(&[("manifests/a.yaml", yaml)]));
    assert!(
        matches!(&e, Error::Archive(ArchiveError::Object { file, document: 2, .. }) if file == "a.yaml"),
        "{e}"
    );
}

#[test]
fn tampered_stream() {
    let mut tar = set_tar(&[("manifests/a.yaml", &cm("a", "1"))]);
    // Flip a byte of the header's name: its checksum no longer matches.
    tar[12] ^= 0x01;
    let e = import(&tar);
    assert!(matches!(e, Error::Archive(ArchiveError::Tar(_))), "{e}");
    let tar = set_tar(&[("manifests/a.yaml", &cm("a", "1"))]);
    let e = import(&tar[..530]);
    assert!(matches!(e, Error::Archive(ArchiveError::Tar(_))), "{e}");
}

#[test]
fn bad_revision() {
    let dev = Device::new();
    let e = dev.store().import("../up", &set_tar(&[])[..]).unwrap_err();
    assert!(matches!(e, Error::Name(NameError::Revision(_))), "{e}");
}

#[test]
fn empty_set_is_allowed() {
    let dev = Device::new();
    let set = dev.store().import("empty", &set_tar(&[])[..]).unwrap();
    assert!(set.manifests.is_empty() && set.images.is_empty());
}
