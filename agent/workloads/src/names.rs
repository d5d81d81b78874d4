//! The naming rules: revisions, slot names, manifest file names (and the K3s AddOn name each
//! becomes) and airgap image file names.
//!
//! K3s names the AddOn of a manifest after the file's basename up to the first '.'
//! (pkg/deploy/controller.go), so `web.yaml` and `web.service.yaml` would fight over the
//! AddOn `web`; the name must be a lowercase RFC 1123 label and must not be one of K3s's own
//! packaged AddOns (docs.k3s.io/installation/packaged-components), or our file would replace or
//! be replaced by a system component.

use crate::error::NameError;

/// AddOn names of K3s's packaged components; a manifest of ours must never take one.
pub const RESERVED_ADDONS: &[&str] = &[
    "coredns",
    "traefik",
    "local-storage",
    "metrics-server",
    "rolebindings",
    "ccm",
    "runtimes",
    "aggregated-metrics-reader",
    "auth-delegator",
    "auth-reader",
    "metrics-apiservice",
    "metrics-server-deployment",
    "metrics-server-service",
    "resource-reader",
    "servicelb",
    "traefik-crd",
];

/// Suffixes K3s's deploy controller applies.
pub const MANIFEST_SUFFIXES: &[&str] = &[".yaml", ".yml", ".json"];

/// Suffixes K3s imports from its airgap images directory.
pub const IMAGE_SUFFIXES: &[&str] = &[".tar", ".tar.gz", ".tar.zst", ".tar.lz4", ".tar.bz2"];

/// Longest file name we accept: leaves room for the `outpost-` prefix and temp suffixes under
/// the 255-byte NAME_MAX of Linux filesystems.
const MAX_FILE_NAME: usize = 200;

/// Longest AddOn name: one RFC 1123 label.
const MAX_ADDON: usize = 63;

/// Checks a revision string: `[A-Za-z0-9._+-]{1,64}`, not starting with '.' (it names a
/// directory in the store, so it must never be `.`, `..` or hidden).
pub fn check_revision(revision: &str) -> Result<(), NameError> {
    let ok = token_ok(revision, 64, |c| {
        c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '-')
    });
    ok.then_some(())
        .ok_or_else(|| NameError::Revision(revision.to_owned()))
}

/// Checks a boot slot name (`A`, `B`, `default`, ...): `[A-Za-z0-9._-]{1,64}`, not starting
/// with '.'.
pub fn check_slot(slot: &str) -> Result<(), NameError> {
    let ok = token_ok(slot, 64, |c| {
        c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
    });
    ok.then_some(())
        .ok_or_else(|| NameError::Slot(slot.to_owned()))
}

fn token_ok(s: &str, max: usize, allowed: impl Fn(char) -> bool) -> bool {
    !s.is_empty() && s.len() <= max && !s.starts_with('.') && s.chars().all(allowed)
}

/// Checks a manifest file name and returns the AddOn name K3s will give it.
pub fn addon_name(file: &str) -> Result<&str, NameError> {
    let bad = |reason| NameError::Manifest {
        name: file.to_owned(),
        reason,
    };
    if file.starts_with('.') {
        return Err(bad("K3s skips dotfiles"));
    }
    if file.len() > MAX_FILE_NAME {
        return Err(bad("longer than 200 bytes"));
    }
    if !MANIFEST_SUFFIXES.iter().any(|s| file.ends_with(s)) {
        return Err(bad("K3s applies only .yaml, .yml and .json files"));
    }
    if !file
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return Err(bad("only [A-Za-z0-9._-] are allowed"));
    }
    // The suffix check guarantees a '.'; fall back to the whole name rather than unwrap.
    let addon = file.split('.').next().unwrap_or(file);
    if !is_rfc1123_label(addon) {
        return Err(bad(
            "the part before the first '.' (the K3s AddOn name) must be a lowercase RFC 1123 label ([a-z0-9]([-a-z0-9]*[a-z0-9])?, at most 63)",
        ));
    }
    if RESERVED_ADDONS.contains(&addon) {
        return Err(NameError::Reserved {
            name: file.to_owned(),
            addon: addon.to_owned(),
        });
    }
    Ok(addon)
}

/// Checks an airgap image file name.
pub fn check_image_name(file: &str) -> Result<(), NameError> {
    let bad = |reason| NameError::Image {
        name: file.to_owned(),
        reason,
    };
    if file.starts_with('.') {
        return Err(bad("dotfiles are not allowed"));
    }
    if file.len() > MAX_FILE_NAME {
        return Err(bad("longer than 200 bytes"));
    }
    if !file
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '-'))
    {
        return Err(bad("only [A-Za-z0-9._+-] are allowed"));
    }
    // A bare ".tar" would leave no name at all.
    if !IMAGE_SUFFIXES
        .iter()
        .any(|s| file.len() > s.len() && file.ends_with(s))
    {
        return Err(bad(
            "K3s imports only .tar, .tar.gz, .tar.zst, .tar.lz4 and .tar.bz2 files",
        ));
    }
    Ok(())
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63 characters.
fn is_rfc1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    let alnum = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    match (b.first(), b.last()) {
        (Some(first), Some(last)) => {
            b.len() <= MAX_ADDON
                && alnum(first)
                && alnum(last)
                && b.iter().all(|c| alnum(c) || *c == b'-')
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revisions() {
        for ok in ["1", "2026.11.22+build-7", "v1.2.3_rc1", "A-b"] {
            assert!(check_revision(ok).is_ok(), "{ok}");
        }
        let long = "x".repeat(65);
        for bad in ["", ".", "..", ".hidden", "a/b", "a b", "ä", &long] {
            assert!(check_revision(bad).is_err(), "{bad}");
        }
        assert!(check_revision(&"x".repeat(64)).is_ok());
    }

    #[test]
    fn slots() {
        assert!(check_slot("A").is_ok());
        assert!(check_slot("default").is_ok());
        assert!(check_slot("a+b").is_err());
        assert!(check_slot("").is_err());
    }

    #[test]
    fn addon_names() {
        assert_eq!(addon_name("web.yaml").unwrap(), "web");
        assert_eq!(addon_name("web.service.yml").unwrap(), "web");
        assert_eq!(addon_name("a-1.Foo_bar.json").unwrap(), "a-1");
        let long = format!("{}.yaml", "a".repeat(64));
        for bad in [
            ".web.yaml",
            "web.txt",
            "web.yaml.skip",
            "Web.yaml",
            "-web.yaml",
            "web-.yaml",
            ".yaml",
            "we b.yaml",
            "web/x.yaml",
            "w_b.yaml",
            &long,
        ] {
            assert!(
                matches!(addon_name(bad), Err(NameError::Manifest { .. })),
                "{bad}"
            );
        }
        assert!(addon_name(&format!("{}.yaml", "a".repeat(63))).is_ok());
    }

    #[test]
    fn reserved_addons() {
        for name in ["coredns.yaml", "traefik.extra.yaml", "traefik-crd.json"] {
            assert!(matches!(addon_name(name), Err(NameError::Reserved { .. })));
        }
        assert!(addon_name("traefik2.yaml").is_ok());
    }

    #[test]
    fn image_names() {
        for ok in [
            "app.tar",
            "app-1.2+x.tar.zst",
            "a.tar.gz",
            "a.tar.lz4",
            "a.tar.bz2",
        ] {
            assert!(check_image_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            ".tar",
            "app.zip",
            ".app.tar",
            "a/b.tar",
            "app.tar.xz",
            "a b.tar",
        ] {
            assert!(check_image_name(bad).is_err(), "{bad}");
        }
    }
}
