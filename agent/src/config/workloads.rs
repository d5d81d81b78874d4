//! `[workloads]`: the signed manifest sets the device runs on K3s, and `[k3s]`: how the agent
//! reaches and supervises K3s. See docs/workloads.md.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// Folder under `state_dir` holding the revisions and their slot bindings.
pub const WORKLOADS_DIR: &str = "workloads";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWorkloads {
    channel: Option<String>,
    interval: Option<String>,
    keep: Option<usize>,
    manifests_dir: Option<PathBuf>,
    subdir: Option<String>,
    staging_dir: Option<PathBuf>,
    images_dir: Option<PathBuf>,
    gate: Option<bool>,
}

/// A loaded `[workloads]`.
#[derive(Debug, Clone)]
pub struct WorkloadsConfig {
    /// The hub channel whose set the device runs; `None`: no polling (only sets that come
    /// inside OS bundles are applied).
    pub channel: Option<String>,
    pub interval: Duration,
    /// Revisions kept in the store besides those bound to a slot.
    pub keep: usize,
    /// K3s's auto-deploy directory.
    pub manifests_dir: PathBuf,
    /// The folder under `manifests_dir` the agent owns (swapped whole on every apply).
    pub subdir: String,
    /// Where the next set is built before the swap: same filesystem, outside `manifests_dir`.
    pub staging_dir: PathBuf,
    /// K3s's airgap images directory; `None`: sets with images are applied without them.
    pub images_dir: Option<PathBuf>,
    /// Add `workloads-ready` to the health gate of a trial slot that carries a set.
    pub gate: bool,
    /// `state_dir/workloads`.
    pub dir: PathBuf,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawK3s {
    unit: Option<String>,
    api: Option<String>,
    tls_dir: Option<PathBuf>,
    node: Option<String>,
    supervise: Option<bool>,
    rotate_before: Option<String>,
    rotate_command: Option<Vec<String>>,
    poll: Option<String>,
}

/// A loaded `[k3s]`.
#[derive(Debug, Clone)]
pub struct K3sConfig {
    /// The systemd unit running the K3s server.
    pub unit: String,
    /// The API server, `https://host:port`.
    pub api: String,
    /// K3s's server TLS folder: `server-ca.crt`, `client-admin.crt`/`.key`, serving certs.
    pub tls_dir: PathBuf,
    /// The node whose `Ready` condition counts; `None`: every node.
    pub node: Option<String>,
    /// Start K3s when it is down and restart it (with backoff) when it failed.
    pub supervise: bool,
    /// Rotate K3s's certificates when one expires within this.
    pub rotate_before: Duration,
    /// K3s's own rotation, run while the unit is stopped.
    pub rotate_command: Vec<String>,
    /// How often K3s is observed.
    pub poll: Duration,
}

fn duration(section: &str, key: &str, v: &str) -> Result<Duration, String> {
    humantime::parse_duration(v).map_err(|e| format!("{section}.{key} {v:?}: {e}"))
}

pub(super) fn resolve_workloads(
    raw: RawWorkloads,
    default_channel: Option<&str>,
    state_dir: &Path,
    resolve: &dyn Fn(&Path) -> PathBuf,
) -> Result<WorkloadsConfig, String> {
    let channel = raw.channel.or(default_channel.map(str::to_owned));
    if let Some(c) = &channel {
        if c.is_empty() || !outpost_proto::query::encode(c).eq(c) {
            return Err(format!(
                "workloads.channel {c:?}: use letters, digits, '.', '-', '_'"
            ));
        }
    }
    let interval = match &raw.interval {
        Some(v) => duration("workloads", "interval", v)?,
        None => Duration::from_secs(300),
    };
    if interval < Duration::from_secs(1) {
        return Err("workloads.interval must be at least 1s".into());
    }
    let manifests_dir = resolve(
        raw.manifests_dir
            .as_deref()
            .unwrap_or(Path::new("/var/lib/rancher/k3s/server/manifests")),
    );
    let subdir = raw.subdir.unwrap_or_else(|| "outpost".into());
    if subdir.is_empty()
        || subdir.starts_with('.')
        || !subdir
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(format!(
            "workloads.subdir {subdir:?}: one folder name (letters, digits, '-', '_', '.')"
        ));
    }
    let staging_dir = match raw.staging_dir {
        Some(p) => resolve(&p),
        None => manifests_dir
            .parent()
            .ok_or("workloads.manifests_dir has no parent for the staging folder")?
            .join(format!(".{subdir}-staging")),
    };
    if staging_dir.starts_with(&manifests_dir) {
        return Err(format!(
            "workloads.staging_dir {} is inside manifests_dir: K3s would apply half-built sets",
            staging_dir.display()
        ));
    }
    Ok(WorkloadsConfig {
        channel,
        interval,
        keep: raw.keep.unwrap_or(3),
        manifests_dir,
        subdir,
        staging_dir,
        images_dir: Some(resolve(
            raw.images_dir
                .as_deref()
                .unwrap_or(Path::new("/var/lib/rancher/k3s/agent/images")),
        )),
        gate: raw.gate.unwrap_or(true),
        dir: state_dir.join(WORKLOADS_DIR),
    })
}

pub(super) fn resolve_k3s(
    raw: RawK3s,
    resolve: &dyn Fn(&Path) -> PathBuf,
) -> Result<K3sConfig, String> {
    let api = raw.api.unwrap_or_else(|| "https://127.0.0.1:6443".into());
    if !api.starts_with("https://") {
        return Err(format!("k3s.api {api:?}: must be an https:// URL"));
    }
    let rotate_before = match &raw.rotate_before {
        Some(v) => duration("k3s", "rotate_before", v)?,
        None => Duration::from_secs(30 * 24 * 3600),
    };
    let poll = match &raw.poll {
        Some(v) => duration("k3s", "poll", v)?,
        None => Duration::from_secs(15),
    };
    if poll < Duration::from_millis(100) {
        return Err("k3s.poll must be at least 100ms".into());
    }
    let rotate_command = raw
        .rotate_command
        .unwrap_or_else(|| vec!["k3s".into(), "certificate".into(), "rotate".into()]);
    if rotate_command.is_empty() {
        return Err("k3s.rotate_command must name a program".into());
    }
    Ok(K3sConfig {
        unit: raw.unit.unwrap_or_else(|| "k3s.service".into()),
        api,
        tls_dir: resolve(
            raw.tls_dir
                .as_deref()
                .unwrap_or(Path::new("/var/lib/rancher/k3s/server/tls")),
        ),
        node: raw.node.filter(|n| !n.is_empty()),
        supervise: raw.supervise.unwrap_or(true),
        rotate_before,
        rotate_command,
        poll,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(toml_text: &str) -> RawWorkloads {
        toml::from_str(toml_text).unwrap()
    }

    fn same(p: &Path) -> PathBuf {
        p.to_owned()
    }

    #[test]
    fn defaults_follow_k3s_and_the_update_channel() {
        let c = resolve_workloads(
            raw(""),
            Some("stable"),
            Path::new("/var/lib/outpost"),
            &same,
        )
        .unwrap();
        assert_eq!(c.channel.as_deref(), Some("stable"));
        assert_eq!(
            c.manifests_dir,
            Path::new("/var/lib/rancher/k3s/server/manifests")
        );
        assert_eq!(
            c.staging_dir,
            Path::new("/var/lib/rancher/k3s/server/.outpost-staging")
        );
        assert_eq!(c.dir, Path::new("/var/lib/outpost/workloads"));
        assert!(c.gate && c.keep == 3);
        let k = resolve_k3s(toml::from_str("").unwrap(), &same).unwrap();
        assert_eq!(k.unit, "k3s.service");
        assert_eq!(k.rotate_before, Duration::from_secs(30 * 86400));
    }

    #[test]
    fn refuses_what_would_let_k3s_see_half_a_set() {
        let err = resolve_workloads(
            raw("manifests_dir = \"/m\"\nstaging_dir = \"/m/stage\""),
            None,
            Path::new("/s"),
            &same,
        )
        .unwrap_err();
        assert!(err.contains("inside manifests_dir"), "{err}");
        for bad in ["subdir = \"../x\"", "subdir = \".hidden\"", "subdir = \"\""] {
            assert!(
                resolve_workloads(raw(bad), None, Path::new("/s"), &same).is_err(),
                "{bad}"
            );
        }
        assert!(resolve_workloads(raw("channel = \"a b\""), None, Path::new("/s"), &same).is_err());
        assert!(resolve_k3s(toml::from_str("api = \"http://x\"").unwrap(), &same).is_err());
        assert!(resolve_k3s(toml::from_str("rotate_command = []").unwrap(), &same).is_err());
    }
}
