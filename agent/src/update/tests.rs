//! The update API against a real daemon, real bundles (`rauc bundle`), file-backed slots and
//! a real grubenv (`grub-editenv`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use hyper::Method;

use super::testkit::{self, fixture, grub_list, snapshot};
use crate::config::Config;
use crate::ctl::client::request;
use crate::daemon::{self, Running};
use crate::views::{InstallState, InstallView, MarkView, SlotsView};

pub(crate) struct Agent {
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    pub config: PathBuf,
    pub running: Running,
}

/// An agent whose `[update]` manages a fresh device in its folder, trusting `keyring`.
pub(crate) async fn agent(keyring: Option<&Path>) -> Agent {
    let dir = tempfile::tempdir().unwrap();
    let update = match keyring {
        Some(k) => testkit::device(&dir.path().join("dev"), k),
        None => String::new(),
    };
    let path = dir.path().join("agent.toml");
    let text = format!("state_dir = \"state\"\n[api]\nsocket = \"agent.sock\"\n{update}");
    std::fs::write(&path, text).unwrap();
    let cfg = Config::load(&path).unwrap();
    let socket = cfg.api.socket.clone();
    let running = daemon::start(cfg).await.unwrap();
    Agent {
        dir,
        socket,
        config: path,
        running,
    }
}

impl Agent {
    pub fn dev(&self) -> PathBuf {
        self.dir.path().join("dev")
    }

    pub async fn call(&self, method: Method, path: &str, body: &str) -> (u16, String) {
        let r = request(
            &self.socket,
            method,
            path,
            &[],
            Bytes::from(body.to_owned()),
        )
        .await
        .unwrap();
        (r.status, String::from_utf8(r.body.to_vec()).unwrap())
    }

    pub async fn install_view(&self) -> InstallView {
        let (s, body) = self.call(Method::GET, "/v1/install", "").await;
        assert_eq!(s, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    /// Polls until the install is no longer running.
    pub async fn wait_install(&self) -> InstallView {
        for _ in 0..600 {
            let v = self.install_view().await;
            if v.state != InstallState::Running {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("install did not finish");
    }

    pub async fn slots(&self) -> SlotsView {
        let (s, body) = self.call(Method::GET, "/v1/slots", "").await;
        assert_eq!(s, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }
}

fn install_body(bundle: &Path) -> String {
    serde_json::json!({ "bundle": bundle }).to_string()
}

fn mark_body(state: &str, slot: &str) -> String {
    serde_json::json!({ "state": state, "slot": slot }).to_string()
}

#[tokio::test]
async fn install_end_to_end_then_slots_and_marks() {
    let f = fixture();
    let a = agent(Some(&f.ca)).await;
    let before = a.install_view().await;
    assert_eq!(before.state, InstallState::Idle);

    let (s, body) = a
        .call(Method::POST, "/v1/install", &install_body(&f.bundle))
        .await;
    assert_eq!(s, 202, "{body}");
    let v = a.wait_install().await;
    assert_eq!(v.state, InstallState::Succeeded, "{v:?}");
    assert_eq!((v.percent, v.step.as_str()), (100, "Installing done"));
    assert_eq!(v.error, None);
    assert_eq!(v.version.as_deref(), Some("2026.11.0"));
    assert_eq!(v.activated, vec!["rootfs.1".to_string()]);
    assert_eq!(v.written[0].bytes, testkit::IMAGE_LEN as u64);

    // B holds the image (the rest of the file slot is left as it was); A is untouched.
    let b = std::fs::read(a.dev().join("slots/rootfs-1")).unwrap();
    assert!(
        b[..testkit::IMAGE_LEN] == f.image[..],
        "slot B differs from the image"
    );
    assert!(
        std::fs::read(a.dev().join("slots/rootfs-0")).unwrap()
            == testkit::noise(100, testkit::SLOT_LEN)
    );
    let env = grub_list(&a.dev());
    assert!(
        env.contains("ORDER=B A") && env.contains("B_OK=1") && env.contains("B_TRY=0"),
        "{env}"
    );

    let slots = a.slots().await;
    assert_eq!(slots.booted.as_deref(), Some("rootfs.0"));
    assert_eq!(slots.primary.as_deref(), Some("rootfs.1"));
    assert_eq!(slots.bootloader, "grub");
    let b = slots.slots.iter().find(|s| s.name == "rootfs.1").unwrap();
    assert_eq!(
        (b.state.as_str(), b.boot_status.as_deref()),
        ("inactive", Some("good"))
    );
    assert_eq!(b.status.status.as_deref(), Some("ok"));
    assert_eq!(b.status.bundle_version.as_deref(), Some("2026.11.0"));
    assert_eq!(b.status.size, Some(testkit::IMAGE_LEN as u64));
    assert_eq!(b.status.installed_count, 1);

    // mark round trip, checked with the real grub-editenv.
    let (s, body) = a
        .call(Method::POST, "/v1/slots/mark", &mark_body("bad", "other"))
        .await;
    assert_eq!(s, 200, "{body}");
    let m: MarkView = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (m.slot.as_str(), m.message.as_str()),
        ("rootfs.1", "marked slot rootfs.1 as bad")
    );
    assert!(grub_list(&a.dev()).contains("B_OK=0"));
    let slots = a.slots().await;
    assert_eq!(
        slots.primary.as_deref(),
        Some("rootfs.0"),
        "B is bad: A boots"
    );
    let (s, _) = a
        .call(
            Method::POST,
            "/v1/slots/mark",
            &mark_body("active", "rootfs.1"),
        )
        .await;
    assert_eq!(s, 200);
    assert!(grub_list(&a.dev()).contains("ORDER=B A"));
    assert_eq!(a.slots().await.primary.as_deref(), Some("rootfs.1"));
    let (s, body) = a
        .call(Method::POST, "/v1/slots/mark", r#"{"state":"good"}"#)
        .await;
    assert_eq!(s, 200, "{body}");
    assert!(
        body.contains("marked slot rootfs.0 as good"),
        "default slot is booted: {body}"
    );

    // Caller mistakes are 400 with RAUC's message.
    let (s, body) = a
        .call(
            Method::POST,
            "/v1/slots/mark",
            &mark_body("maybe", "booted"),
        )
        .await;
    assert_eq!(s, 400, "{body}");
    let (s, body) = a
        .call(
            Method::POST,
            "/v1/slots/mark",
            &mark_body("good", "rootfs.9"),
        )
        .await;
    assert_eq!(s, 400, "{body}");
    assert!(body.contains("no slot with class rootfs"), "{body}");
    let (s, _) = a
        .call(
            Method::POST,
            "/v1/install",
            r#"{"bundle":"relative.raucb"}"#,
        )
        .await;
    assert_eq!(s, 400);
    let (s, _) = a
        .call(Method::POST, "/v1/install", r#"{"bundel":"/x"}"#)
        .await;
    assert_eq!(s, 400);
    a.running.stop().await.unwrap();
}

#[tokio::test]
async fn wrong_keyring_fails_clearly_and_writes_nothing() {
    let f = fixture();
    let a = agent(Some(&f.other_ca)).await;
    let before = snapshot(&a.dev());
    let (s, body) = a
        .call(Method::POST, "/v1/install", &install_body(&f.bundle))
        .await;
    assert_eq!(s, 202, "{body}");
    let v = a.wait_install().await;
    assert_eq!(v.state, InstallState::Failed);
    let err = v.error.unwrap();
    assert!(err.contains("signature verification failed"), "{err}");
    assert!(
        err.contains(&f.bundle.display().to_string()),
        "names the bundle: {err}"
    );
    assert!(v.written.is_empty() && v.activated.is_empty());
    assert!(snapshot(&a.dev()) == before, "nothing may be written");
    a.running.stop().await.unwrap();
}

/// A FIFO as the bundle holds the install in its first read until the test writes: a
/// deterministic "install running" without timing guesses.
#[tokio::test]
async fn one_install_at_a_time() {
    let f = fixture();
    let a = agent(Some(&f.ca)).await;
    let fifo = a.dir.path().join("slow.raucb");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let (s, body) = a
        .call(Method::POST, "/v1/install", &install_body(&fifo))
        .await;
    assert_eq!(s, 202, "{body}");
    assert_eq!(a.install_view().await.state, InstallState::Running);
    let (s, body) = a
        .call(Method::POST, "/v1/install", &install_body(&f.bundle))
        .await;
    assert_eq!(s, 409, "{body}");
    assert!(body.contains("already running"), "{body}");
    let (s, _) = a
        .call(Method::POST, "/v1/slots/mark", &mark_body("good", "booted"))
        .await;
    assert_eq!(s, 409, "no mark while an install holds the bootloader");
    // Release the reader: an empty "bundle" fails, and the installer is free again.
    let w = fifo.clone();
    tokio::task::spawn_blocking(move || drop(std::fs::OpenOptions::new().write(true).open(w)))
        .await
        .unwrap();
    let v = a.wait_install().await;
    assert_eq!(v.state, InstallState::Failed);
    let (s, body) = a
        .call(Method::POST, "/v1/install", &install_body(&f.bundle))
        .await;
    assert_eq!(s, 202, "{body}");
    assert_eq!(a.wait_install().await.state, InstallState::Succeeded);
    a.running.stop().await.unwrap();
}

#[tokio::test]
async fn without_update_section_the_endpoints_say_so() {
    let a = agent(None).await;
    for (m, p, b) in [
        (Method::GET, "/v1/install", ""),
        (Method::POST, "/v1/install", r#"{"bundle":"/x"}"#),
        (Method::GET, "/v1/slots", ""),
        (Method::POST, "/v1/slots/mark", r#"{"state":"good"}"#),
    ] {
        let (s, body) = a.call(m, p, b).await;
        assert_eq!(s, 503, "{p}: {body}");
        assert!(body.contains("updates are not configured"), "{body}");
    }
    let (s, _) = a.call(Method::DELETE, "/v1/install", "").await;
    assert_eq!(s, 405);
    a.running.stop().await.unwrap();
}

#[tokio::test]
async fn an_install_notes_the_slot_it_armed_and_a_mark_of_the_booted_slot_drops_it() {
    let f = fixture();
    let a = agent(Some(&f.ca)).await;
    let note = a.dir.path().join("state/armed.json");
    assert!(!note.exists());
    let (s, body) = a
        .call(Method::POST, "/v1/install", &install_body(&f.bundle))
        .await;
    assert_eq!(s, 202, "{body}");
    assert_eq!(a.wait_install().await.state, InstallState::Succeeded);
    let armed = outpost_health::armed::Armed::load(&note)
        .unwrap()
        .expect("the install notes the slot it armed");
    assert_eq!(armed.slot.slot, "B");
    assert_eq!(armed.slot.version.as_deref(), Some("2026.11.0"));
    assert!(armed.slot.activation.activated_count > 0, "{armed:?}");
    assert_eq!(
        armed.boot_id,
        outpost_health::driver::read_boot_id().unwrap(),
        "armed in this boot"
    );
    // The operator takes A back before any reboot: nothing was tried, nothing to report.
    let (s, body) = a
        .call(
            Method::POST,
            "/v1/slots/mark",
            &mark_body("active", "booted"),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    assert!(!note.exists(), "mark active booted drops the note");
    a.running.stop().await.unwrap();
}
