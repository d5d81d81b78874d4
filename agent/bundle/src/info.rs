//! `Bundle::open`: trailer → CMS → authenticated payload → manifest, and the
//! serialisable summary behind `outpostctl info --json` and the installer.
//!
//! Plain bundles: the whole payload is streamed through the signer's digest
//! before anything in it is parsed. Verity bundles: the manifest comes from
//! the CMS, the hash tree is checked against its signed root, and every
//! squashfs block is verified as it is read.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::Arc;

use serde::Serialize;

use crate::digest::DigestAlg;
use crate::keyring::Keyring;
use crate::manifest::{BundleFormat, ImageHooks, Manifest, ManifestError, MAX_MANIFEST_LEN};
use crate::pipe;
use crate::signature::{SignatureError, SignedCms, Signer, VerifyOptions};
use crate::squashfs::{Squashfs, SquashfsError};
use crate::stream::{self, Check, ReadAt, StreamError};
use crate::trailer::{self, TrailerError};
use crate::verity::{self, HashTree, VerityError, VerityReader};

/// Why a bundle is refused.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("reading bundle: {0}")]
    Io(#[from] io::Error),
    #[error(transparent)]
    Trailer(#[from] TrailerError),
    #[error("signature verification failed: {0}")]
    Signature(#[from] SignatureError),
    #[error("invalid manifest: {0}")]
    Manifest(#[from] ManifestError),
    #[error(transparent)]
    Verity(#[from] VerityError),
    #[error(transparent)]
    Squashfs(#[from] SquashfsError),
    #[error("copying image '{filename}': {source}")]
    Stream {
        filename: String,
        #[source]
        source: StreamError,
    },
    #[error("manifest format '{manifest}' does not match the {signature} signature")]
    FormatMismatch {
        manifest: BundleFormat,
        signature: &'static str,
    },
    #[error("verity-size {tree_size} does not fit a payload of {payload_len} bytes")]
    TreeLargerThanPayload { tree_size: u64, payload_len: u64 },
    #[error("no image for slot class '{0}' in the manifest")]
    ImageNotFound(String),
    #[error("image '{0}' has no file in the bundle (install hook only)")]
    ImageWithoutFile(String),
    #[error(
        "image '{filename}' size mismatch: manifest says {expected} bytes, payload has {found}"
    )]
    ImageSizeMismatch {
        filename: String,
        expected: u64,
        found: u64,
    },
    #[error("image '{filename}' sha256 mismatch: manifest {expected}, payload {found}")]
    ImageHashMismatch {
        filename: String,
        expected: String,
        found: String,
    },
}

/// One image as shown by `info`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ImageInfo {
    pub class: String,
    pub variant: Option<String>,
    pub filename: Option<String>,
    pub size: Option<u64>,
    pub sha256: Option<String>,
    pub hooks: ImageHooks,
    pub adaptive: Vec<String>,
}

/// How the bundle was authenticated.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Verification {
    /// Always `true` for a [`VerifiedBundle`]: errors never produce one.
    pub signature_valid: bool,
    pub purpose: crate::Purpose,
    /// `payload-digest` (plain) or `verity` (hash tree, per block on read).
    pub payload_check: &'static str,
    pub verity_root_hash: Option<String>,
}

/// The verified summary of a bundle.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BundleInfo {
    pub format: BundleFormat,
    pub compatible: String,
    pub version: Option<String>,
    pub description: Option<String>,
    pub build: Option<String>,
    /// sha256 of the authoritative manifest bytes (RAUC's manifest hash).
    pub manifest_hash: String,
    pub images: Vec<ImageInfo>,
    pub signer: Signer,
    pub verification: Verification,
    pub payload_size: u64,
    pub signature_size: u64,
}

/// Entry point: opens and verifies bundles.
pub struct Bundle;

impl Bundle {
    /// Opens `path` and verifies it completely before returning.
    pub fn open(
        path: &Path,
        keyring: &Keyring,
        opts: &VerifyOptions,
    ) -> Result<VerifiedBundle, BundleError> {
        let file = File::open(path)?;
        // A second handle on the same open file for positional reads: the image copy reads
        // at offsets and never moves the one the squashfs reader seeks.
        let positional = file.try_clone()?;
        let mut bundle = Self::from_reader(file, keyring, opts)?;
        bundle.positional = Some(Box::new(positional));
        Ok(bundle)
    }

    /// Same as [`Bundle::open`] over any seekable source (images are then always read through
    /// the squashfs reader).
    pub fn from_reader<R>(
        mut source: R,
        keyring: &Keyring,
        opts: &VerifyOptions,
    ) -> Result<VerifiedBundle, BundleError>
    where
        R: Read + Seek + Send + 'static,
    {
        let (layout, cms_der) = trailer::read_layout(&mut source)?;
        let cms = SignedCms::parse(&cms_der)?;
        let payload_len = layout.payload_len;
        let auth = if cms.content().is_none() {
            open_plain(source, payload_len, &cms, keyring, opts)?
        } else {
            open_verity(source, payload_len, &cms, keyring, opts)?
        };
        let verification = Verification {
            signature_valid: true,
            purpose: opts.purpose,
            payload_check: auth.payload_check,
            verity_root_hash: auth.verity_root_hash,
        };
        Ok(VerifiedBundle::new(
            auth.manifest,
            auth.signer,
            verification,
            auth.fs,
            auth.payload,
            cms_der.len(),
        ))
    }
}

/// What `open_plain` / `open_verity` established.
struct Authenticated {
    manifest: Manifest,
    signer: Signer,
    fs: Squashfs,
    payload_check: &'static str,
    verity_root_hash: Option<String>,
    payload: Payload,
}

/// How the payload's bytes are authenticated, for copies that bypass the squashfs reader.
#[derive(Debug)]
enum Payload {
    /// Its digest matched the signature when the bundle was opened.
    Digested { len: u64 },
    /// Each block against this tree (already checked against the signed root).
    Verity { len: u64, tree: Arc<HashTree> },
}

impl Payload {
    fn len(&self) -> u64 {
        match self {
            Payload::Digested { len } | Payload::Verity { len, .. } => *len,
        }
    }
}

fn open_plain<R: Read + Seek + Send + 'static>(
    mut source: R,
    payload_len: u64,
    cms: &SignedCms,
    keyring: &Keyring,
    opts: &VerifyOptions,
) -> Result<Authenticated, BundleError> {
    // Stream the payload through the digest: bundles can be GiBs. The next chunk is read
    // while the previous one is hashed.
    source.seek(SeekFrom::Start(0))?;
    let mut limited = (&mut source).take(payload_len);
    let ((), digest) = pipe::hashed(cms.digest_alg().hasher(), |pipe| -> io::Result<()> {
        loop {
            let mut buf = pipe.buffer()?;
            let n = pipe::fill(&mut |b| limited.read(b), &mut buf)?;
            if n == 0 {
                return Ok(());
            }
            pipe.send(buf, n)?;
        }
    })?;
    let signer = cms.verify_detached(&digest, keyring, opts)?;
    // backhand reads from the current position: rewind past the hashing.
    source.seek(SeekFrom::Start(0))?;
    let fs = Squashfs::open(BufReader::new(source))?;
    let manifest = Manifest::parse(&fs.read_small("manifest.raucm", MAX_MANIFEST_LEN)?)?;
    if manifest.format != BundleFormat::Plain {
        return Err(BundleError::FormatMismatch {
            manifest: manifest.format,
            signature: "detached",
        });
    }
    manifest.check_internal()?;
    Ok(Authenticated {
        manifest,
        signer,
        fs,
        payload_check: "payload-digest",
        verity_root_hash: None,
        payload: Payload::Digested { len: payload_len },
    })
}

fn open_verity<R: Read + Seek + Send + 'static>(
    mut source: R,
    payload_len: u64,
    cms: &SignedCms,
    keyring: &Keyring,
    opts: &VerifyOptions,
) -> Result<Authenticated, BundleError> {
    let (signer, content) = cms.verify_encapsulated(keyring, opts)?;
    let manifest = Manifest::parse(content)?;
    if manifest.format == BundleFormat::Plain {
        return Err(BundleError::FormatMismatch {
            manifest: manifest.format,
            signature: "encapsulated",
        });
    }
    let params = manifest.verity_params()?;
    let data_len =
        payload_len
            .checked_sub(params.tree_size)
            .ok_or(BundleError::TreeLargerThanPayload {
                tree_size: params.tree_size,
                payload_len,
            })?;
    let tree = Arc::new(verity::read_tree(&mut source, &params, data_len)?);
    let reader = VerityReader::new(source, Arc::clone(&tree));
    let log = reader.failure_log();
    let fs = Squashfs::open_logged(reader, Some(log))?;
    Ok(Authenticated {
        manifest,
        signer,
        fs,
        payload_check: "verity",
        verity_root_hash: Some(hex::encode(params.root_hash)),
        payload: Payload::Verity {
            len: payload_len,
            tree,
        },
    })
}

/// A bundle whose signature and payload integrity have been established.
pub struct VerifiedBundle {
    info: BundleInfo,
    manifest: Manifest,
    fs: Squashfs,
    payload: Payload,
    /// The bundle file for positional reads (set by [`Bundle::open`]).
    positional: Option<Box<dyn ReadAt>>,
}

impl std::fmt::Debug for VerifiedBundle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifiedBundle")
            .field("info", &self.info)
            .field("fs", &self.fs)
            .finish_non_exhaustive()
    }
}

impl VerifiedBundle {
    fn new(
        manifest: Manifest,
        signer: Signer,
        verification: Verification,
        fs: Squashfs,
        payload: Payload,
        cms_len: usize,
    ) -> Self {
        let images = manifest
            .images
            .iter()
            .map(|i| ImageInfo {
                class: i.class.clone(),
                variant: i.variant.clone(),
                filename: i.filename.clone(),
                size: i.size,
                sha256: i.sha256.map(hex::encode),
                hooks: i.hooks,
                adaptive: i.adaptive.clone(),
            })
            .collect();
        let info = BundleInfo {
            format: manifest.format,
            compatible: manifest.compatible.clone(),
            version: manifest.version.clone(),
            description: manifest.description.clone(),
            build: manifest.build.clone(),
            manifest_hash: hex::encode(manifest.hash),
            images,
            signer,
            verification,
            payload_size: payload.len(),
            signature_size: cms_len as u64,
        };
        VerifiedBundle {
            info,
            manifest,
            fs,
            payload,
            positional: None,
        }
    }

    /// The serialisable summary.
    pub fn info(&self) -> &BundleInfo {
        &self.info
    }

    /// The authoritative (signed) manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Streams the image for slot `class` into `out`, checking its size and
    /// sha256 against the manifest. Bytes reach `out` before the final check:
    /// callers must treat the target as unusable unless this returns `Ok`.
    ///
    /// An image squashfs stored verbatim (already compressed content) is copied by
    /// [`crate::stream`] in one pipelined pass of positional reads, each verity block checked
    /// before it is handed on; others go through the squashfs reader. Either way only
    /// authenticated bytes reach `out`.
    pub fn extract_image(&self, class: &str, out: &mut dyn Write) -> Result<u64, BundleError> {
        let image = self
            .manifest
            .image(class)
            .ok_or_else(|| BundleError::ImageNotFound(class.to_string()))?;
        let filename = image
            .filename
            .clone()
            .ok_or_else(|| BundleError::ImageWithoutFile(class.to_string()))?;
        let (found_len, found) = match (&self.positional, self.fs.raw_extents(&filename)?) {
            // Stored verbatim: one pipelined pass of large positional reads.
            (Some(src), Some(extents)) => {
                let check = match &self.payload {
                    Payload::Digested { len } => Check::Payload { payload_len: *len },
                    Payload::Verity { tree, .. } => Check::Verity(tree),
                };
                stream::copy(&**src, check, &extents, out).map_err(|source| match source {
                    // The same error as when the squashfs reader meets the block.
                    StreamError::Verity(v) => SquashfsError::Verity(v).into(),
                    source => BundleError::Stream {
                        filename: filename.clone(),
                        source,
                    },
                })?
            }
            _ => self.copy_through_squashfs(&filename, out)?,
        };
        let expected_len = image.size.unwrap_or(0);
        if found_len != expected_len {
            return Err(BundleError::ImageSizeMismatch {
                filename,
                expected: expected_len,
                found: found_len,
            });
        }
        // parse() guarantees sha256 is present whenever filename is.
        let expected = image.sha256.unwrap_or_default();
        if found != expected {
            return Err(BundleError::ImageHashMismatch {
                filename,
                expected: hex::encode(expected),
                found: hex::encode(found),
            });
        }
        Ok(found_len)
    }

    /// Streams `filename` through the squashfs reader (compressed or sparse files, or a
    /// bundle without a positional source), hashing on a helper thread while the next chunk
    /// is read and written; returns its length and sha256.
    fn copy_through_squashfs(
        &self,
        filename: &str,
        out: &mut dyn Write,
    ) -> Result<(u64, [u8; 32]), SquashfsError> {
        let mut file = self.fs.open_file(filename)?;
        let (len, digest) = pipe::hashed(
            DigestAlg::Sha256.hasher(),
            |pipe| -> Result<u64, SquashfsError> {
                let mut total = 0u64;
                loop {
                    let mut buf = pipe.buffer().map_err(|e| file.error(e))?;
                    let n = file.fill(&mut buf)?;
                    if n == 0 {
                        return Ok(total);
                    }
                    out.write_all(&buf[..n]).map_err(|e| file.error(e))?;
                    total += n as u64;
                    pipe.send(buf, n).map_err(|e| file.error(e))?;
                }
            },
        )?;
        let mut sha = [0u8; 32];
        sha.copy_from_slice(&digest);
        Ok((len, sha))
    }

    /// Reads any other small file of the bundle (hooks, handler), bounded by `max`.
    pub fn read_file(&self, name: &str, max: usize) -> Result<Vec<u8>, BundleError> {
        crate::manifest::check_filename(name)?;
        Ok(self.fs.read_small(name, max)?)
    }
}
