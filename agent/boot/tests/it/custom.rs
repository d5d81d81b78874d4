use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use outpost_boot::custom::CustomBackend;
use outpost_boot::{BootError, Bootloader, SlotState};

use crate::{ab, slot};

/// An integrator-style handler: keeps state in files beside itself and appends its argv (one
/// line per argument, calls separated by `--`) to `argv.log`.
const HANDLER: &str = r#"#!/bin/sh
d=$(dirname "$0")
{ echo "--"; for a in "$@"; do echo "$a"; done; } >> "$d/argv.log"
[ -f "$d/fail" ] && exit "$(cat "$d/fail")"
case "$1" in
  get-primary) printf '  %s \n' "$(cat "$d/primary")" ;;
  set-primary) echo "$2" > "$d/primary"; echo "ignored stdout" ;;
  get-state)   cat "$d/state_$2" ;;
  set-state)   echo "$3" > "$d/state_$2" ;;
  get-current) printf '%s\nsecond line\n' "$(cat "$d/current")" ;;
  *) exit 64 ;;
esac
"#;

struct Handler {
    _dir: tempfile::TempDir,
    dir: PathBuf,
    script: PathBuf,
}

impl Handler {
    fn new(body: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_owned();
        let script = path.join("custom-backend.sh");
        fs::write(&script, body).unwrap();
        fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
        for (f, v) in [
            ("primary", "A"),
            ("state_A", "good"),
            ("state_B", "good"),
            ("current", "A"),
        ] {
            fs::write(path.join(f), format!("{v}\n")).unwrap();
        }
        Self {
            _dir: dir,
            dir: path,
            script,
        }
    }

    fn backend(&self) -> CustomBackend {
        CustomBackend::new(&self.script, ab())
    }

    /// The recorded calls, each as its argv.
    fn calls(&self) -> Vec<Vec<String>> {
        let log = fs::read_to_string(self.dir.join("argv.log")).unwrap_or_default();
        log.split("--\n")
            .filter(|c| !c.is_empty())
            .map(|c| c.lines().map(str::to_owned).collect())
            .collect()
    }

    fn file(&self, name: &str) -> String {
        fs::read_to_string(self.dir.join(name)).unwrap()
    }

    fn write(&self, name: &str, value: &str) {
        fs::write(self.dir.join(name), value).unwrap();
    }
}

fn argv(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn invokes_the_handler_exactly_as_rauc_does() {
    let h = Handler::new(HANDLER);
    let b = h.backend();
    assert_eq!(b.primary().unwrap(), Some(slot("A")));
    b.set_state(&slot("B"), SlotState::Bad).unwrap();
    b.set_primary(&slot("B")).unwrap();
    assert_eq!(b.state(&slot("B")).unwrap(), SlotState::Bad);
    b.set_state(&slot("B"), SlotState::Good).unwrap();
    assert_eq!(b.state(&slot("B")).unwrap(), SlotState::Good);
    assert_eq!(b.booted().unwrap(), Some(slot("A")));
    assert_eq!(
        h.calls(),
        vec![
            argv(&["get-primary"]),
            argv(&["set-state", "B", "bad"]),
            argv(&["set-primary", "B"]),
            argv(&["get-state", "B"]),
            argv(&["set-state", "B", "good"]),
            argv(&["get-state", "B"]),
            argv(&["get-current"]),
        ]
    );
    assert_eq!(h.file("primary"), "B\n");
    assert_eq!(b.primary().unwrap(), Some(slot("B")));
    assert_eq!(b.attempts_left(&slot("B")).unwrap(), None);
}

#[test]
fn nonzero_exit_is_an_error_for_get_and_set() {
    let h = Handler::new(HANDLER);
    h.write("fail", "3");
    let b = h.backend();
    for res in [
        b.primary().map(|_| ()),
        b.state(&slot("A")).map(|_| ()),
        b.set_primary(&slot("A")),
        b.set_state(&slot("A"), SlotState::Good),
        b.booted().map(|_| ()),
    ] {
        match res {
            Err(BootError::ScriptFailed { status, .. }) => assert_eq!(status.code(), Some(3)),
            other => panic!("expected ScriptFailed, got {other:?}"),
        }
    }
}

#[test]
fn unexpected_output_is_an_error() {
    let h = Handler::new(HANDLER);
    let b = h.backend();
    h.write("state_A", "ok\n");
    assert!(matches!(
        b.state(&slot("A")),
        Err(BootError::ScriptOutput { .. })
    ));
    h.write("state_A", "Good\n");
    assert!(matches!(
        b.state(&slot("A")),
        Err(BootError::ScriptOutput { .. })
    ));
    // Whitespace around the word is stripped, as g_strstrip does.
    h.write("state_A", "\t bad \n\n");
    assert_eq!(b.state(&slot("A")).unwrap(), SlotState::Bad);
    // A primary that is not a configured bootname is an error (RAUC: "does not match").
    h.write("primary", "C\n");
    assert!(matches!(b.primary(), Err(BootError::ScriptOutput { .. })));
    // get-current takes the first line verbatim: an empty first line is an error, and a padded
    // name is not stripped.
    h.write("current", "");
    assert!(matches!(b.booted(), Err(BootError::ScriptOutput { .. })));
    h.write("current", " A");
    assert!(matches!(b.booted(), Err(BootError::ScriptOutput { .. })));
}

#[test]
fn oversize_output_is_refused() {
    let h = Handler::new("#!/bin/sh\nhead -c 100000 /dev/zero | tr '\\0' 'x'\n");
    assert!(matches!(
        h.backend().primary(),
        Err(BootError::Script { .. })
    ));
}

#[test]
fn a_hanging_handler_is_killed_after_the_timeout() {
    let h = Handler::new("#!/bin/sh\nexec sleep 10\n");
    let b = h.backend().with_timeout(Duration::from_millis(200));
    let start = Instant::now();
    assert!(matches!(b.primary(), Err(BootError::Script { .. })));
    assert!(matches!(
        b.set_primary(&slot("A")),
        Err(BootError::Script { .. })
    ));
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[test]
fn a_missing_handler_is_an_io_error() {
    let b = CustomBackend::new(Path::new("/nonexistent/handler"), ab());
    assert!(matches!(b.primary(), Err(BootError::Io { .. })));
}
