use super::*;

fn env(pairs: &[(&str, &str)]) -> UbootEnv {
    let mut e = UbootEnv::new();
    for (k, v) in pairs {
        e.set(k, v).unwrap();
    }
    e
}

/// An image with hand-made data, a correct CRC and the given padding byte.
fn image(data: &[u8], size: usize, layout: Layout, flags: u8, pad: u8) -> Vec<u8> {
    let off = layout.data_offset();
    let mut img = vec![0u8; off];
    img.extend_from_slice(data);
    img.resize(size, pad);
    if layout == Layout::Redundant {
        img[4] = flags;
    }
    let crc = crc32(&img[off..]);
    img[..4].copy_from_slice(&crc.to_le_bytes());
    img
}

#[test]
fn serializes_sorted_nul_separated_with_crc() {
    let e = env(&[("b", "2"), ("BOOT_ORDER", "A B"), ("a", "1")]);
    let img = e.serialize(64, Layout::Single, 0).unwrap();
    assert_eq!(
        img,
        image(b"BOOT_ORDER=A B\0a=1\0b=2\0\0", 64, Layout::Single, 0, 0)
    );
    assert_eq!(UbootEnv::parse(&img, Layout::Single).unwrap(), (e, 0));
}

#[test]
fn redundant_image_carries_flags() {
    let e = env(&[("X", "1")]);
    let img = e.serialize(32, Layout::Redundant, 7).unwrap();
    assert_eq!(img[4], 7);
    assert_eq!(&img[5..10], b"X=1\0\0");
    assert_eq!(UbootEnv::parse(&img, Layout::Redundant).unwrap(), (e, 7));
}

#[test]
fn empty_env_is_a_single_nul() {
    let img = UbootEnv::new().serialize(16, Layout::Single, 0).unwrap();
    assert_eq!(&img[4..], &[0u8; 12]);
    assert_eq!(
        UbootEnv::parse(&img, Layout::Single).unwrap().0,
        UbootEnv::new()
    );
}

#[test]
fn padding_is_covered_by_the_crc_but_otherwise_ignored() {
    // libubootenv leaves the padding uninitialised; U-Boot erases flash to 0xff.
    let img = image(b"a=1\0\0", 32, Layout::Single, 0, 0xff);
    assert_eq!(
        UbootEnv::parse(&img, Layout::Single).unwrap().0,
        env(&[("a", "1")])
    );
}

#[test]
fn flags_var_is_written_last() {
    let e = env(&[(".flags", "a:dw"), ("a", "1")]);
    let img = e.serialize(32, Layout::Single, 0).unwrap();
    assert_eq!(&img[4..20], b"a=1\0.flags=a:dw\0");
}

#[test]
fn parse_follows_libubootenv_for_odd_entries() {
    let img = image(b"junk\0a=1\0a=2\0b=x=y\0\0", 64, Layout::Single, 0, 0);
    let (e, _) = UbootEnv::parse(&img, Layout::Single).unwrap();
    assert_eq!(e, env(&[("a", "2"), ("b", "x=y")]));
}

#[test]
fn rejects_bad_crc() {
    let mut img = env(&[("a", "1")]).serialize(32, Layout::Single, 0).unwrap();
    img[10] ^= 1;
    assert!(matches!(
        UbootEnv::parse(&img, Layout::Single),
        Err(UbootEnvError::BadCrc { .. })
    ));
    // The same image read with the wrong layout fails the CRC too.
    let img = env(&[("a", "1")]).serialize(32, Layout::Single, 0).unwrap();
    assert!(matches!(
        UbootEnv::parse(&img, Layout::Redundant),
        Err(UbootEnvError::BadCrc { .. })
    ));
}

#[test]
fn rejects_missing_double_nul() {
    let img = image(
        b"a=1\0bbbbbbbbbbbbbbbbbbbbbbbbbbb",
        32,
        Layout::Single,
        0,
        b'b',
    );
    assert_eq!(
        UbootEnv::parse(&img, Layout::Single),
        Err(UbootEnvError::NoTerminator)
    );
    // All-0xff (erased flash) with a matching CRC: still no terminator.
    let img = image(b"", 32, Layout::Single, 0, 0xff);
    assert_eq!(
        UbootEnv::parse(&img, Layout::Single),
        Err(UbootEnvError::NoTerminator)
    );
}

#[test]
fn rejects_sizes_out_of_bounds() {
    assert_eq!(
        UbootEnv::parse(&[0; 7], Layout::Single),
        Err(UbootEnvError::BadSize { size: 7 })
    );
    let big = vec![0u8; MAX_ENV_SIZE + 1];
    assert!(matches!(
        UbootEnv::parse(&big, Layout::Single),
        Err(UbootEnvError::BadSize { .. })
    ));
    assert!(matches!(
        UbootEnv::new().serialize(MAX_ENV_SIZE + 1, Layout::Single, 0),
        Err(UbootEnvError::BadSize { .. })
    ));
}

#[test]
fn oversize_content_does_not_fit() {
    let e = env(&[("a", &"v".repeat(100))]);
    assert_eq!(
        e.serialize(64, Layout::Single, 0),
        Err(UbootEnvError::NoSpace {
            needed: 104,
            available: 60
        })
    );
    // Exactly full: "a=" + 56 values + NUL + NUL fills the 60-byte data area.
    let e = env(&[("a", &"v".repeat(56))]);
    let img = e.serialize(64, Layout::Single, 0).unwrap();
    assert_eq!(UbootEnv::parse(&img, Layout::Single).unwrap().0, e);
}

#[test]
fn set_rejects_bad_names_and_values() {
    let mut e = UbootEnv::new();
    assert!(matches!(
        e.set("", "1"),
        Err(UbootEnvError::InvalidName { .. })
    ));
    assert!(matches!(
        e.set("a=b", "1"),
        Err(UbootEnvError::InvalidName { .. })
    ));
    assert!(matches!(
        e.set("a", "x\0y"),
        Err(UbootEnvError::InvalidValue { .. })
    ));
    assert_eq!(e, UbootEnv::new());
}

fn copy(flags: u8, v: &str) -> Result<Copy, UbootEnvError> {
    Ok(Copy {
        env: env(&[("v", v)]),
        flags,
    })
}

#[test]
fn select_prefers_higher_flags() {
    let s = UbootEnv::select(copy(1, "old"), copy(2, "new")).unwrap();
    assert_eq!(
        (s.current, s.flags, s.env.get("v")),
        (1, 2, Some(&b"new"[..]))
    );
    let s = UbootEnv::select(copy(9, "new"), copy(8, "old")).unwrap();
    assert_eq!((s.current, s.flags), (0, 9));
}

#[test]
fn select_handles_counter_wrap() {
    let s = UbootEnv::select(copy(0xff, "old"), copy(0, "new")).unwrap();
    assert_eq!((s.current, s.env.get("v")), (1, Some(&b"new"[..])));
    let s = UbootEnv::select(copy(0, "new"), copy(0xff, "old")).unwrap();
    assert_eq!(s.current, 0);
}

#[test]
fn select_equal_flags_picks_first() {
    assert_eq!(
        UbootEnv::select(copy(3, "a"), copy(3, "b"))
            .unwrap()
            .current,
        0
    );
}

#[test]
fn select_falls_back_to_the_valid_copy() {
    let bad = || {
        Err(UbootEnvError::BadCrc {
            stored: 1,
            computed: 2,
        })
    };
    let s = UbootEnv::select(bad(), copy(1, "b")).unwrap();
    assert_eq!(s.current, 1);
    let s = UbootEnv::select(copy(200, "a"), bad()).unwrap();
    assert_eq!((s.current, s.flags), (0, 200));
    assert!(matches!(
        UbootEnv::select(bad(), bad()),
        Err(UbootEnvError::NoValidCopy { .. })
    ));
}
