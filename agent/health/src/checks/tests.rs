use super::*;

fn parse(text: &str) -> Result<HealthConfig, String> {
    #[derive(Deserialize)]
    struct Doc {
        health: HealthConfig,
    }
    toml::from_str::<Doc>(text)
        .map(|d| d.health)
        .map_err(|e| e.to_string())
}

#[test]
fn empty_table_gives_the_defaults() {
    let c = parse("[health]\n").unwrap();
    assert_eq!(c, HealthConfig::default());
    assert_eq!(c.deadline, Duration::from_secs(300));
    let names: Vec<_> = c.checks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        ["local-api", "outbox-writable"],
        "uploaded-once is off by default"
    );
}

#[test]
fn every_kind_parses_with_its_own_fields() {
    let c = parse(
        r#"
[health]
deadline = "2m"
interval = "1s"
builtin_checks = []
[[health.checks]]
name = "k3s"
kind = "systemd-unit"
unit = "k3s.service"
[[health.checks]]
name = "probe"
kind = "command"
command = ["/bin/true", "x"]
fatal_exit_codes = [3]
timeout = "10s"
required = false
[[health.checks]]
name = "readyz"
kind = "http"
url = "https://127.0.0.1:6443/readyz"
ca_file = "/ca.pem"
[[health.checks]]
name = "up"
kind = "uptime"
min = "90s"
[[health.checks]]
name = "hub"
kind = "builtin"
builtin = "uploaded-once"
"#,
    )
    .unwrap();
    assert_eq!(c.deadline, Duration::from_secs(120));
    assert_eq!(c.interval, Duration::from_secs(1));
    assert_eq!(c.checks.len(), 5);
    assert_eq!(
        c.checks[0].kind,
        CheckKind::SystemdUnit {
            unit: "k3s.service".into(),
            fatal_on_failed: true
        }
    );
    assert!(c.checks[0].required);
    assert_eq!(c.checks[1].timeout, Duration::from_secs(10));
    assert!(!c.checks[1].required);
    assert_eq!(
        c.checks[1].kind,
        CheckKind::Command {
            argv: vec!["/bin/true".into(), "x".into()],
            fatal_exit_codes: vec![3]
        }
    );
    assert_eq!(
        c.checks[3].kind,
        CheckKind::Uptime {
            min: Duration::from_secs(90)
        }
    );
    assert_eq!(c.checks[4].kind, CheckKind::Builtin(Builtin::UploadedOnce));
}

#[test]
fn an_explicit_builtin_replaces_the_default_one() {
    let c = parse(
        "[health]\n[[health.checks]]\nname = \"api\"\nkind = \"builtin\"\nbuiltin = \"local-api\"\nrequired = false\n",
    )
    .unwrap();
    let api: Vec<_> = c
        .checks
        .iter()
        .filter(|c| c.kind == CheckKind::Builtin(Builtin::LocalApi))
        .collect();
    assert_eq!(api.len(), 1);
    assert!(!api[0].required);
}

#[test]
fn strictness() {
    let bad = [
        ("[health]\ndeadlin = \"1m\"\n", "unknown field"),
        ("[health]\ndeadline = \"soon\"\n", "bad duration"),
        ("[health]\ndeadline = \"0s\"\n", "longer than zero"),
        ("[health]\n[[health.checks]]\nname = \"x\"\nkind = \"http\"\n", "needs url"),
        (
            "[health]\n[[health.checks]]\nname = \"x\"\nkind = \"http\"\nurl = \"http://a\"\nunit = \"a.service\"\n",
            "unit does not belong",
        ),
        ("[health]\n[[health.checks]]\nname = \"x\"\nkind = \"ping\"\n", "unknown variant"),
        (
            "[health]\n[[health.checks]]\nname = \"x\"\nkind = \"command\"\ncommand = []\n",
            "must name a program",
        ),
        (
            "[health]\n[[health.checks]]\nname = \"local-api\"\nkind = \"uptime\"\nmin = \"1s\"\n[[health.checks]]\nname = \"local-api\"\nkind = \"uptime\"\nmin = \"1s\"\n",
            "twice",
        ),
        ("[health]\n[[health.checks]]\nname = \"x\"\nkind = \"http\"\nurl = \"ftp://a\"\n", "http://"),
        ("[health]\n[[health.checks]]\nname = \"x\"\nkind = \"command\"\ncommand = [\"a\"]\nbogus = 1\n", "unknown field"),
    ];
    for (text, want) in bad {
        let err = parse(text).unwrap_err();
        assert!(err.contains(want), "{text:?}: {err}");
    }
}

#[test]
fn reboot_method_parses_and_defaults_to_auto() {
    assert_eq!(parse("[health]\n").unwrap().reboot, RebootMethod::Auto);
    for (word, want) in [
        ("auto", RebootMethod::Auto),
        ("logind", RebootMethod::Logind),
        ("syscall", RebootMethod::Syscall),
    ] {
        let c = parse(&format!("[health]\nreboot = \"{word}\"\n")).unwrap();
        assert_eq!(c.reboot, want);
        assert_eq!(want.as_str(), word);
    }
    let e = parse("[health]\nreboot = \"kexec\"\n").unwrap_err();
    assert!(e.contains("kexec"), "{e}");
}
