use std::process::Command;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};

use super::*;

const DAY: Duration = Duration::from_secs(24 * 3600);

/// A self-signed PEM certificate expiring at `unix` seconds.
fn cert_pem(cn: &str, unix: u64, ca: bool) -> String {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(DnType::CommonName, cn);
    if ca {
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    }
    p.not_after = rcgen::date_time_ymd(1970, 1, 1) + Duration::from_secs(unix);
    p.self_signed(&KeyPair::generate().unwrap()).unwrap().pem()
}

fn at(unix: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(unix)
}

fn info(path: &str, unix: u64, is_ca: bool) -> CertInfo {
    CertInfo {
        path: path.into(),
        subject: String::new(),
        not_after: at(unix),
        is_ca,
    }
}

#[test]
fn not_after_and_ca_flag_are_read_from_pem_chains() {
    let chain = format!(
        "{}{}",
        cert_pem("system:admin", 1_900_000_000, false),
        cert_pem("k3s-client-ca", 2_000_000_000, true)
    );
    let certs = parse_pem(Path::new("client-admin.crt"), chain.as_bytes()).unwrap();
    assert_eq!(certs.len(), 2);
    assert_eq!(certs[0].not_after, at(1_900_000_000));
    assert!(!certs[0].is_ca && certs[1].is_ca);
    assert_eq!(certs[0].subject, "CN=system:admin");
    assert!(parse_pem(Path::new("x.crt"), b"not a certificate").is_err());
    assert!(parse_pem(
        Path::new("x.crt"),
        b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    )
    .is_err());
}

#[test]
fn rotation_is_due_within_the_threshold_of_the_earliest_leaf() {
    let now = at(1_800_000_000);
    let certs = vec![
        info(
            "serving-kube-apiserver.crt",
            1_800_000_000 + 40 * 86400,
            false,
        ),
        info("client-admin.crt", 1_800_000_000 + 31 * 86400, false),
        // CAs never make a rotation due (`k3s certificate rotate` does not renew them).
        info("server-ca.crt", 1_800_000_000 + 86400, true),
    ];
    assert_eq!(rotation_due(now, &certs, 30 * DAY), None);
    let due = rotation_due(now + 2 * DAY, &certs, 30 * DAY).unwrap();
    assert_eq!(due.earliest_cert, PathBuf::from("client-admin.crt"));
    assert_eq!(due.expires, at(1_800_000_000 + 31 * 86400));
    // Exactly at the threshold counts; expired long ago too.
    assert!(rotation_due(now + DAY, &certs, 30 * DAY).is_some());
    assert!(rotation_due(now + 400 * DAY, &certs, 30 * DAY).is_some());
    assert_eq!(
        earliest(&certs).unwrap().earliest_cert,
        PathBuf::from("client-admin.crt")
    );
    assert_eq!(rotation_due(now, &[], 30 * DAY), None);
    assert_eq!(rotation_due(now, &certs[2..], 30 * DAY), None);
}

#[test]
fn scanning_reads_every_crt_skips_missing_dirs_and_reports_bad_files() {
    let tls = tempfile::tempdir().unwrap();
    let agent = tempfile::tempdir().unwrap();
    std::fs::write(
        tls.path().join("a.crt"),
        cert_pem("a", 1_900_000_000, false),
    )
    .unwrap();
    std::fs::write(tls.path().join("a.key"), "not read").unwrap();
    std::fs::write(tls.path().join("broken.crt"), "garbage").unwrap();
    std::fs::write(
        agent.path().join("client-kubelet.crt"),
        cert_pem("k", 1_850_000_000, false),
    )
    .unwrap();
    let s = scan(&[
        tls.path().to_owned(),
        agent.path().to_owned(),
        tls.path().join("missing"),
    ]);
    assert_eq!(s.certs.len(), 2);
    assert_eq!(s.errors.len(), 1, "{:?}", s.errors);
    assert!(s.errors[0].to_string().contains("broken.crt"));
    let e = earliest(&s.certs).unwrap();
    assert_eq!(e.earliest_cert, agent.path().join("client-kubelet.crt"));
}

/// Cross-check with the real openssl: a certificate `openssl req -x509 -days 10` writes
/// expires when we say, by `openssl x509 -checkend` on both sides of our answer.
#[test]
fn not_after_matches_openssl() {
    let dir = tempfile::tempdir().unwrap();
    let crt = dir.path().join("c.crt");
    let key = dir.path().join("c.key");
    let ok = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-days", "10", "-subj", "/CN=openssl"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&crt)
        .output();
    let Ok(out) = ok else {
        eprintln!("openssl not installed; skipped");
        return;
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let certs = read_file(&crt).unwrap();
    let left = certs[0]
        .not_after
        .duration_since(SystemTime::now())
        .unwrap()
        .as_secs();
    assert!((9 * 86400..=10 * 86400 + 60).contains(&left), "{left}");
    let checkend = |secs: u64| {
        Command::new("openssl")
            .args(["x509", "-noout", "-checkend", &secs.to_string(), "-in"])
            .arg(&crt)
            .status()
            .unwrap()
            .success()
    };
    assert!(checkend(left - 60), "openssl: expires before us");
    assert!(!checkend(left + 60), "openssl: expires after us");
}
