//! `manifest.raucm`, parsed as strictly as RAUC 1.8 (`src/manifest.c`).
//!
//! Known groups: `[update]`, `[bundle]`, `[handler]`, `[hooks]`,
//! `[image.<class>[.<variant>]]` and free-form `[meta.<label>]`. Any other group,
//! or an unknown key in a known group, is an error (`check_remaining_keys` /
//! `check_remaining_groups`). The checks of `check_manifest_common` run in
//! [`Manifest::parse`]; the format-specific ones are [`Manifest::check_internal`]
//! (copy inside the squashfs) and [`Manifest::verity_params`] (signed copy of
//! a verity bundle). Stricter than RAUC: image `sha256` must be 64 hex digits
//! and `filename` must stay inside the bundle (no absolute path, no `..`).

use std::collections::BTreeMap;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::keyfile::{self, Group, KeyFile, KeyFileError};
use crate::verity::VerityParams;

/// Manifests are small text files; refuse anything bigger before parsing.
pub const MAX_MANIFEST_LEN: usize = 1024 * 1024;

/// Bundle format from `[bundle] format=`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BundleFormat {
    Plain,
    Verity,
    Crypt,
}

impl std::fmt::Display for BundleFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BundleFormat::Plain => "plain",
            BundleFormat::Verity => "verity",
            BundleFormat::Crypt => "crypt",
        })
    }
}

/// Per-image hooks (`hooks=pre-install;install;post-install`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ImageHooks {
    pub pre_install: bool,
    pub install: bool,
    pub post_install: bool,
}

/// One `[image.<class>[.<variant>]]` group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image {
    pub class: String,
    pub variant: Option<String>,
    /// Path inside the bundle; `None` only for images with an `install` hook.
    pub filename: Option<String>,
    pub sha256: Option<[u8; 32]>,
    pub size: Option<u64>,
    pub hooks: ImageHooks,
    pub adaptive: Vec<String>,
}

/// A parsed and checked manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    pub compatible: String,
    pub version: Option<String>,
    pub description: Option<String>,
    pub build: Option<String>,
    pub format: BundleFormat,
    pub verity_hash: Option<[u8; 32]>,
    pub verity_salt: Option<[u8; 32]>,
    pub verity_size: Option<u64>,
    pub crypt_key: Option<String>,
    pub handler_filename: Option<String>,
    pub handler_args: Option<String>,
    pub hook_filename: Option<String>,
    pub install_check_hook: bool,
    pub images: Vec<Image>,
    pub meta: BTreeMap<String, BTreeMap<String, String>>,
    /// sha256 of the raw manifest bytes (RAUC's `bundle.hash` / manifest hash).
    pub hash: [u8; 32],
}

/// Why a manifest is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("manifest of {len} bytes exceeds the {max}-byte limit")]
    TooLarge { len: usize, max: usize },
    #[error("manifest syntax: {0}")]
    Syntax(#[from] KeyFileError),
    #[error("missing required key '{key}' in group [{group}]")]
    MissingKey { group: String, key: String },
    #[error("invalid key '{key}' in group [{group}]")]
    UnknownKey { group: String, key: String },
    #[error("invalid group [{0}]")]
    UnknownGroup(String),
    #[error("invalid value '{value}' for key '{key}' in group [{group}]: {reason}")]
    BadValue {
        group: String,
        key: String,
        value: String,
        reason: &'static str,
    },
    #[error("image filename '{0}' escapes the bundle")]
    EscapingFilename(String),
    #[error("missing {what} for image [{group}]")]
    IncompleteImage { group: String, what: &'static str },
    #[error("hooks used, but no hook 'filename' defined in [hooks] section")]
    HooksWithoutFilename,
    #[error("unexpected {0} in the manifest inside the bundle payload")]
    UnexpectedInternal(&'static str),
    #[error("missing {what} for {format} bundle")]
    MissingVerity {
        format: BundleFormat,
        what: &'static str,
    },
    #[error("bundle format '{0}' is not supported")]
    UnsupportedFormat(BundleFormat),
}

const UPDATE_KEYS: &[&str] = &["compatible", "version", "description", "build"];
const HANDLER_KEYS: &[&str] = &["filename", "args"];
const HOOKS_KEYS: &[&str] = &["filename", "hooks"];
const IMAGE_KEYS: &[&str] = &["sha256", "size", "hooks", "filename", "adaptive"];

impl Manifest {
    /// Parses `manifest.raucm` bytes and runs RAUC's common checks.
    pub fn parse(data: &[u8]) -> Result<Self, ManifestError> {
        if data.len() > MAX_MANIFEST_LEN {
            return Err(ManifestError::TooLarge {
                len: data.len(),
                max: MAX_MANIFEST_LEN,
            });
        }
        let kf = KeyFile::parse(data)?;
        let hash: [u8; 32] = Sha256::digest(data).into();
        let mut m = Manifest::from_keyfile(&kf, hash)?;
        m.check_common()?;
        Ok(m)
    }

    fn from_keyfile(kf: &KeyFile, hash: [u8; 32]) -> Result<Self, ManifestError> {
        let find = |name: &str| kf.groups.iter().find(|g| g.name == name);
        let update = find("update").ok_or_else(|| missing("update", "compatible"))?;
        check_keys(update, UPDATE_KEYS)?;
        let compatible =
            string(update, "compatible")?.ok_or_else(|| missing("update", "compatible"))?;

        let mut m = Manifest {
            compatible,
            version: string(update, "version")?,
            description: string(update, "description")?,
            build: string(update, "build")?,
            format: BundleFormat::Plain,
            verity_hash: None,
            verity_salt: None,
            verity_size: None,
            crypt_key: None,
            handler_filename: None,
            handler_args: None,
            hook_filename: None,
            install_check_hook: false,
            images: Vec::new(),
            meta: BTreeMap::new(),
            hash,
        };
        if let Some(bundle) = find("bundle") {
            m.parse_bundle(bundle)?;
        }
        if let Some(handler) = find("handler") {
            check_keys(handler, HANDLER_KEYS)?;
            m.handler_filename = string(handler, "filename")?;
            m.handler_args = string(handler, "args")?;
        }
        if let Some(hooks) = find("hooks") {
            check_keys(hooks, HOOKS_KEYS)?;
            m.hook_filename = string(hooks, "filename")?;
            for hook in list(hooks, "hooks")? {
                if hook != "install-check" {
                    return Err(bad(
                        hooks,
                        "hooks",
                        &hook,
                        "install hook type not supported",
                    ));
                }
                m.install_check_hook = true;
            }
        }
        for group in &kf.groups {
            match group.name.as_str() {
                "update" | "bundle" | "handler" | "hooks" => {}
                name if name.starts_with("image.") => m.images.push(parse_image(group)?),
                name if name.starts_with("meta.") => {
                    let mut entries = BTreeMap::new();
                    for (k, v) in &group.entries {
                        entries.insert(k.clone(), keyfile::unescape_string(v)?);
                    }
                    m.meta.insert(name["meta.".len()..].to_string(), entries);
                }
                other => return Err(ManifestError::UnknownGroup(other.to_string())),
            }
        }
        Ok(m)
    }

    fn parse_bundle(&mut self, g: &Group) -> Result<(), ManifestError> {
        // Like RAUC, verity keys are only known for verity/crypt and
        // crypt-key only for crypt; anywhere else they are invalid keys.
        let format = string(g, "format")?;
        self.format = match format.as_deref() {
            None | Some("plain") => BundleFormat::Plain,
            Some("verity") => BundleFormat::Verity,
            Some("crypt") => BundleFormat::Crypt,
            Some(other) => return Err(bad(g, "format", other, "unknown bundle format")),
        };
        let known: &[&str] = match self.format {
            BundleFormat::Plain => &["format"],
            BundleFormat::Verity => &["format", "verity-hash", "verity-salt", "verity-size"],
            BundleFormat::Crypt => &[
                "format",
                "verity-hash",
                "verity-salt",
                "verity-size",
                "crypt-key",
            ],
        };
        check_keys(g, known)?;
        self.verity_hash = hex32(g, "verity-hash")?;
        self.verity_salt = hex32(g, "verity-salt")?;
        self.verity_size = uint(g, "verity-size")?;
        self.crypt_key = string(g, "crypt-key")?;
        Ok(())
    }

    /// `check_manifest_common`: digests, sizes and the hook file.
    fn check_common(&mut self) -> Result<(), ManifestError> {
        for image in &mut self.images {
            let group = image_group(image);
            if image.filename.is_none() {
                continue;
            }
            if image.sha256.is_none() {
                return Err(ManifestError::IncompleteImage {
                    group,
                    what: "digest",
                });
            }
            if image.size.is_none() {
                // RAUC < 1.5 wrote no size for empty images; kept for install hooks.
                if image.hooks.install {
                    image.size = Some(0);
                } else {
                    return Err(ManifestError::IncompleteImage {
                        group,
                        what: "size",
                    });
                }
            }
        }
        let any_image_hook = self
            .images
            .iter()
            .any(|i| i.hooks.pre_install || i.hooks.install || i.hooks.post_install);
        if (self.install_check_hook || any_image_hook) && self.hook_filename.is_none() {
            return Err(ManifestError::HooksWithoutFilename);
        }
        Ok(())
    }

    /// `check_manifest_internal`: the copy inside a verity payload must not
    /// carry the verity/crypt parameters (they only come from the signature).
    pub fn check_internal(&self) -> Result<(), ManifestError> {
        if self.crypt_key.is_some() {
            return Err(ManifestError::UnexpectedInternal("crypt-key"));
        }
        if self.verity_hash.is_some() || self.verity_salt.is_some() || self.verity_size.is_some() {
            return Err(ManifestError::UnexpectedInternal("verity parameters"));
        }
        Ok(())
    }

    /// `check_manifest_external` for verity: the signed manifest must carry
    /// the full verity parameters. Crypt bundles are not supported yet.
    pub fn verity_params(&self) -> Result<VerityParams, ManifestError> {
        let format = self.format;
        if format != BundleFormat::Verity {
            return Err(ManifestError::UnsupportedFormat(format));
        }
        let missing = |what| ManifestError::MissingVerity { format, what };
        Ok(VerityParams {
            root_hash: self.verity_hash.ok_or_else(|| missing("hash"))?,
            salt: self.verity_salt.ok_or_else(|| missing("salt"))?,
            tree_size: self
                .verity_size
                .filter(|s| *s > 0)
                .ok_or_else(|| missing("size"))?,
        })
    }

    /// The image for slot class `class` (and no variant), if any.
    pub fn image(&self, class: &str) -> Option<&Image> {
        self.images
            .iter()
            .find(|i| i.class == class && i.variant.is_none())
    }
}

fn parse_image(g: &Group) -> Result<Image, ManifestError> {
    // RAUC: g_strsplit(group, ".", 3) -> image, class, optional variant.
    let mut parts = g.name.splitn(3, '.').skip(1);
    let class = parts.next().unwrap_or_default().to_string();
    if class.is_empty() {
        return Err(ManifestError::UnknownGroup(g.name.clone()));
    }
    let variant = parts.next().map(str::to_string);
    check_keys(g, IMAGE_KEYS)?;
    let mut hooks = ImageHooks::default();
    for hook in list(g, "hooks")? {
        match hook.as_str() {
            "pre-install" => hooks.pre_install = true,
            "install" => hooks.install = true,
            "post-install" => hooks.post_install = true,
            other => return Err(bad(g, "hooks", other, "slot hook type not supported")),
        }
    }
    let filename = string(g, "filename")?;
    match &filename {
        None if !hooks.install => return Err(missing(&g.name, "filename")),
        Some(f) => check_filename(f)?,
        None => {}
    }
    Ok(Image {
        class,
        variant,
        filename,
        sha256: hex32(g, "sha256")?,
        size: uint(g, "size")?,
        hooks,
        adaptive: list(g, "adaptive")?,
    })
}

/// A bundle-relative file name: no absolute path, no `..`, no empty component.
pub fn check_filename(name: &str) -> Result<(), ManifestError> {
    let escapes = name.is_empty()
        || name.starts_with('/')
        || name.contains('\0')
        || name.split('/').any(|c| c == ".." || c.is_empty());
    if escapes {
        return Err(ManifestError::EscapingFilename(name.to_string()));
    }
    Ok(())
}

fn image_group(image: &Image) -> String {
    match &image.variant {
        Some(v) => format!("image.{}.{}", image.class, v),
        None => format!("image.{}", image.class),
    }
}

fn check_keys(g: &Group, known: &[&str]) -> Result<(), ManifestError> {
    match g.unknown_key(known) {
        Some(key) => Err(ManifestError::UnknownKey {
            group: g.name.clone(),
            key: key.to_string(),
        }),
        None => Ok(()),
    }
}

fn missing(group: &str, key: &str) -> ManifestError {
    ManifestError::MissingKey {
        group: group.to_string(),
        key: key.to_string(),
    }
}

fn bad(g: &Group, key: &str, value: &str, reason: &'static str) -> ManifestError {
    ManifestError::BadValue {
        group: g.name.clone(),
        key: key.to_string(),
        value: value.to_string(),
        reason,
    }
}

fn string(g: &Group, key: &str) -> Result<Option<String>, ManifestError> {
    Ok(g.raw(key).map(keyfile::unescape_string).transpose()?)
}

fn list(g: &Group, key: &str) -> Result<Vec<String>, ManifestError> {
    Ok(g.raw(key)
        .map(keyfile::parse_string_list)
        .transpose()?
        .unwrap_or_default())
}

/// `g_key_file_get_uint64`: plain decimal digits only.
fn uint(g: &Group, key: &str) -> Result<Option<u64>, ManifestError> {
    let Some(raw) = g.raw(key) else {
        return Ok(None);
    };
    let value = raw.trim_end();
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad(g, key, raw, "not an unsigned integer"));
    }
    value
        .parse()
        .map(Some)
        .map_err(|_| bad(g, key, raw, "integer out of range"))
}

fn hex32(g: &Group, key: &str) -> Result<Option<[u8; 32]>, ManifestError> {
    let Some(raw) = g.raw(key) else {
        return Ok(None);
    };
    let mut out = [0u8; 32];
    hex::decode_to_slice(raw.trim_end(), &mut out)
        .map_err(|_| bad(g, key, raw, "expected 64 hexadecimal digits"))?;
    Ok(Some(out))
}

#[cfg(test)]
mod tests;
