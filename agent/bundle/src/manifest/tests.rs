use super::*;

const H: &str = "c6060386afdd04bf155c4dba65f0dbc632256a29e199ecb8ac770308cb2cd106";

fn verity_manifest() -> String {
    format!(
        "[update]\ncompatible=Demo Board\nversion=2026.11.0\ndescription=demo\\sbundle\nbuild=20261122\n\n\
         [bundle]\nformat=verity\nverity-hash={H}\nverity-salt={H}\nverity-size=16384\n\n\
         [image.rootfs]\nsha256={H}\nsize=16777216\nfilename=rootfs.ext4\nadaptive=block-hash-index;\n\n\
         [image.appfs.variant-a]\nsha256={H}\nsize=1048576\nfilename=sub/appfs.img\n\n\
         [meta.release]\nchannel=stable\n"
    )
}

#[test]
fn parses_a_full_verity_manifest() {
    let m = Manifest::parse(verity_manifest().as_bytes()).unwrap();
    assert_eq!(m.compatible, "Demo Board");
    assert_eq!(m.version.as_deref(), Some("2026.11.0"));
    assert_eq!(m.description.as_deref(), Some("demo bundle"));
    assert_eq!(m.format, BundleFormat::Verity);
    let p = m.verity_params().unwrap();
    assert_eq!(p.tree_size, 16384);
    assert_eq!(hex::encode(p.root_hash), H);
    assert_eq!(m.images.len(), 2);
    assert_eq!(m.images[0].adaptive, vec!["block-hash-index".to_string()]);
    assert_eq!(m.images[0].size, Some(16777216));
    assert_eq!(m.images[1].class, "appfs");
    assert_eq!(m.images[1].variant.as_deref(), Some("variant-a"));
    assert_eq!(m.meta["release"]["channel"], "stable");
    assert_eq!(
        m.hash,
        <[u8; 32]>::from(Sha256::digest(verity_manifest().as_bytes()))
    );
    // The signed copy carries verity parameters, so it is not a valid internal one.
    assert_eq!(
        m.check_internal(),
        Err(ManifestError::UnexpectedInternal("verity parameters"))
    );
}

#[test]
fn plain_manifest_defaults() {
    let m = Manifest::parse(
        format!("[update]\ncompatible=x\n[image.a]\nfilename=a.img\nsha256={H}\nsize=1\n")
            .as_bytes(),
    )
    .unwrap();
    assert_eq!(m.format, BundleFormat::Plain);
    assert!(m.check_internal().is_ok());
    assert_eq!(
        m.verity_params(),
        Err(ManifestError::UnsupportedFormat(BundleFormat::Plain))
    );
}

fn err(text: &str) -> ManifestError {
    Manifest::parse(text.as_bytes()).unwrap_err()
}

#[test]
fn unknown_keys_and_groups_are_errors() {
    assert!(
        matches!(err("[update]\ncompatible=x\nfoo=1\n"), ManifestError::UnknownKey { key, .. } if key == "foo")
    );
    assert!(
        matches!(err("[update]\ncompatible=x\n[keyring]\narchive=x\n"), ManifestError::UnknownGroup(g) if g == "keyring")
    );
    assert!(matches!(
        err("[update]\ncompatible=x\n[image]\nfilename=a\n"),
        ManifestError::UnknownGroup(_)
    ));
    // verity keys are unknown for plain bundles, as in RAUC 1.8
    assert!(matches!(
        err(&format!(
            "[update]\ncompatible=x\n[bundle]\nverity-hash={H}\n"
        )),
        ManifestError::UnknownKey { .. }
    ));
    assert!(matches!(
        err(&format!(
            "[update]\ncompatible=x\n[image.a]\nfilename=a\nsha256={H}\nsize=1\nmode=x\n"
        )),
        ManifestError::UnknownKey { .. }
    ));
    assert!(
        matches!(err("[update]\nversion=1\n"), ManifestError::MissingKey { key, .. } if key == "compatible")
    );
    assert!(matches!(
        err("[bundle]\nformat=plain\n"),
        ManifestError::MissingKey { .. }
    ));
    assert!(matches!(
        err("[update]\ncompatible=x\n[bundle]\nformat=zip\n"),
        ManifestError::BadValue { .. }
    ));
}

#[test]
fn bad_hashes_sizes_and_hooks_are_errors() {
    let bad_hash = err("[update]\ncompatible=x\n[image.a]\nfilename=a\nsha256=abcd\nsize=1\n");
    assert!(matches!(bad_hash, ManifestError::BadValue { key, .. } if key == "sha256"));
    let bad_size = err(&format!(
        "[update]\ncompatible=x\n[image.a]\nfilename=a\nsha256={H}\nsize=-1\n"
    ));
    assert!(matches!(bad_size, ManifestError::BadValue { key, .. } if key == "size"));
    let no_digest = err("[update]\ncompatible=x\n[image.a]\nfilename=a\nsize=1\n");
    assert!(matches!(
        no_digest,
        ManifestError::IncompleteImage { what: "digest", .. }
    ));
    let no_size = err(&format!(
        "[update]\ncompatible=x\n[image.a]\nfilename=a\nsha256={H}\n"
    ));
    assert!(matches!(
        no_size,
        ManifestError::IncompleteImage { what: "size", .. }
    ));
    let no_file = err("[update]\ncompatible=x\n[image.a]\nsize=1\n");
    assert!(matches!(no_file, ManifestError::MissingKey { key, .. } if key == "filename"));
    let hook = err(&format!(
        "[update]\ncompatible=x\n[image.a]\nfilename=a\nsha256={H}\nsize=1\nhooks=post-install\n"
    ));
    assert_eq!(hook, ManifestError::HooksWithoutFilename);
    let bad_hook = err("[update]\ncompatible=x\n[hooks]\nfilename=h\nhooks=pre-check\n");
    assert!(matches!(bad_hook, ManifestError::BadValue { .. }));
    // An install hook makes filename (and size) optional.
    let m = Manifest::parse(
        b"[update]\ncompatible=x\n[hooks]\nfilename=h.sh\n[image.a]\nhooks=install\n",
    )
    .unwrap();
    assert!(m.images[0].hooks.install && m.images[0].filename.is_none());
}

#[test]
fn escaping_filenames_are_errors() {
    for name in ["/etc/shadow", "../x", "a/../../x", "a//b", "a/", ""] {
        let text =
            format!("[update]\ncompatible=x\n[image.a]\nfilename={name}\nsha256={H}\nsize=1\n");
        assert_eq!(
            err(&text),
            ManifestError::EscapingFilename(name.to_string()),
            "{name:?}"
        );
    }
    assert!(check_filename("dir/rootfs.ext4").is_ok());
}

#[test]
fn verity_params_must_be_complete() {
    let text = format!(
        "[update]\ncompatible=x\n[bundle]\nformat=verity\nverity-hash={H}\nverity-salt={H}\n"
    );
    let m = Manifest::parse(text.as_bytes()).unwrap();
    assert!(matches!(
        m.verity_params(),
        Err(ManifestError::MissingVerity { what: "size", .. })
    ));
    let m = Manifest::parse(b"[update]\ncompatible=x\n[bundle]\nformat=crypt\n").unwrap();
    assert_eq!(
        m.verity_params(),
        Err(ManifestError::UnsupportedFormat(BundleFormat::Crypt))
    );
}

#[test]
fn oversized_manifest_is_refused_before_parsing() {
    let big = vec![b'#'; MAX_MANIFEST_LEN + 1];
    assert!(matches!(
        Manifest::parse(&big),
        Err(ManifestError::TooLarge { .. })
    ));
}
