use super::*;

/// A block with the given body after the signature, padded like grub-editenv.
fn block(body: &[u8]) -> Vec<u8> {
    let mut b = SIGNATURE.to_vec();
    b.extend_from_slice(body);
    b.resize(BLOCK_SIZE, b'#');
    b
}

#[test]
fn new_is_what_grub_editenv_create_writes() {
    let bytes = GrubEnv::new().serialize().unwrap();
    assert_eq!(bytes.len(), BLOCK_SIZE);
    assert!(bytes.starts_with(SIGNATURE));
    assert_eq!(
        &bytes[SIGNATURE.len()..][..CREATE_MESSAGE.len()],
        CREATE_MESSAGE
    );
    assert!(bytes[SIGNATURE.len() + CREATE_MESSAGE.len()..]
        .iter()
        .all(|&b| b == b'#'));
}

#[test]
fn parses_and_round_trips_byte_for_byte() {
    let b = block(b"# comment\nA_OK=1\n\nORDER=A B\nX=a\\\\b\\\nc\n");
    let env = GrubEnv::parse(&b).unwrap();
    assert_eq!(env.get("A_OK").unwrap(), b"1");
    assert_eq!(env.get("ORDER").unwrap(), b"A B");
    assert_eq!(env.get("X").unwrap(), b"a\\b\nc");
    assert_eq!(env.get("missing"), None);
    assert_eq!(env.serialize().unwrap(), b);
}

#[test]
fn non_canonical_escapes_are_kept_raw() {
    // GRUB reads "\q" as "q" but never writes it; keeping the raw bytes keeps the round trip exact.
    let b = block(b"A=\\q\n");
    let env = GrubEnv::parse(&b).unwrap();
    assert_eq!(env.get("A").unwrap(), b"q");
    assert_eq!(env.serialize().unwrap(), b);
}

#[test]
fn set_escapes_and_replaces_in_place() {
    let mut env = GrubEnv::parse(&block(b"A=1\nB=2\n")).unwrap();
    env.set("A", "x\\y\nz").unwrap();
    env.set("C", "3").unwrap();
    assert_eq!(
        env.serialize().unwrap(),
        block(b"A=x\\\\y\\\nz\nB=2\nC=3\n")
    );
    assert_eq!(env.get("A").unwrap(), b"x\\y\nz");
}

#[test]
fn unset_removes_the_line() {
    let mut env = GrubEnv::parse(&block(b"A=1\nB=2\n")).unwrap();
    assert!(env.unset("A"));
    assert!(!env.unset("A"));
    assert_eq!(env.serialize().unwrap(), block(b"B=2\n"));
}

#[test]
fn set_that_overflows_fails_and_changes_nothing() {
    let mut env = GrubEnv::new();
    let before = env.clone();
    let err = env.set("BIG", &"v".repeat(BLOCK_SIZE)).unwrap_err();
    assert!(matches!(err, GrubEnvError::NoSpace { .. }));
    assert_eq!(env, before);
    // Exactly filling the block is fine (no padding left).
    let used = SIGNATURE.len() + CREATE_MESSAGE.len() + "F=\n".len();
    env.set("F", &"v".repeat(BLOCK_SIZE - used)).unwrap();
    let bytes = env.serialize().unwrap();
    assert_eq!(bytes.len(), BLOCK_SIZE);
    assert_eq!(bytes[BLOCK_SIZE - 1], b'\n');
    assert_eq!(GrubEnv::parse(&bytes).unwrap(), env);
}

#[test]
fn rejects_wrong_sizes() {
    let b = block(b"A=1\n");
    assert_eq!(
        GrubEnv::parse(&b[..BLOCK_SIZE - 1]),
        Err(GrubEnvError::WrongSize {
            len: BLOCK_SIZE - 1
        })
    );
    let mut big = b.clone();
    big.push(b'#');
    assert!(matches!(
        GrubEnv::parse(&big),
        Err(GrubEnvError::WrongSize { .. })
    ));
    assert!(matches!(
        GrubEnv::parse(&[]),
        Err(GrubEnvError::WrongSize { .. })
    ));
}

#[test]
fn rejects_missing_signature() {
    let mut b = block(b"A=1\n");
    b[2] = b'g';
    assert_eq!(GrubEnv::parse(&b), Err(GrubEnvError::MissingSignature));
    assert_eq!(
        GrubEnv::parse(&vec![b'#'; BLOCK_SIZE]),
        Err(GrubEnvError::MissingSignature)
    );
}

#[test]
fn rejects_content_without_newline_before_padding() {
    let b = block(b"A=1\nB=2");
    assert_eq!(
        GrubEnv::parse(&b),
        Err(GrubEnvError::NoNewlineBeforePadding)
    );
    let full: Vec<u8> = SIGNATURE
        .iter()
        .copied()
        .chain(std::iter::repeat_n(b'x', BLOCK_SIZE - SIGNATURE.len()))
        .collect();
    assert_eq!(
        GrubEnv::parse(&full),
        Err(GrubEnvError::NoNewlineBeforePadding)
    );
}

#[test]
fn rejects_malformed_lines() {
    assert!(matches!(
        GrubEnv::parse(&block(b"A=1\nnoequals\n")),
        Err(GrubEnvError::NotAnAssignment { offset: 29 })
    ));
    assert!(matches!(
        GrubEnv::parse(&block(b"=v\n")),
        Err(GrubEnvError::InvalidName { .. })
    ));
    assert!(matches!(
        GrubEnv::parse(&block(b"A=1\0\n")),
        Err(GrubEnvError::NulByte { .. })
    ));
    // The only newline is escaped: the line never ends.
    assert!(matches!(
        GrubEnv::parse(&block(b"A=1\\\n")),
        Err(GrubEnvError::UnterminatedEscape { .. })
    ));
    assert!(matches!(
        GrubEnv::parse(&block(b"A=1\nA=2\n")),
        Err(GrubEnvError::DuplicateName { .. })
    ));
}

#[test]
fn set_rejects_names_grub_could_not_find_again() {
    let mut env = GrubEnv::new();
    for name in ["", "#A", "A=B", "A\nB", "A\\B"] {
        assert!(
            matches!(env.set(name, "1"), Err(GrubEnvError::InvalidName { .. })),
            "{name:?}"
        );
    }
    assert!(matches!(
        env.set("A", "a\0b"),
        Err(GrubEnvError::InvalidValue { .. })
    ));
    assert_eq!(env, GrubEnv::new());
}
