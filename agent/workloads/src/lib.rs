//! Workload manifest sets for K3s, delivered offline ("offline GitOps").
//!
//! A *manifest set* is the desired workload state of a device: Kubernetes manifests plus
//! airgap container images. It travels as the `manifests` image (`manifests.tar`) of a signed
//! RAUC bundle; the bundle's `[update] version` is the set's *revision*. This crate gets the
//! tar stream after outpost-bundle verified it, and does three things, all synchronous (the
//! daemon calls it from `spawn_blocking`):
//!
//! 1. [`archive`] checks and extracts a set: layout, [`names`], limits, and every manifest's
//!    YAML with the [`objects`] it declares ([`ManifestSet`]).
//! 2. [`store`] keeps imported revisions under `<state>/workloads/` and which revision
//!    belongs to which boot slot, so a slot rollback can bring its workloads back.
//! 3. [`mod@apply`] makes K3s's auto-deploy directory hold exactly one revision.
//!
//! # What K3s does with the files
//!
//! From K3s `pkg/deploy/controller.go` and
//! <https://docs.k3s.io/installation/packaged-components>:
//!
//! - Every file under `/var/lib/rancher/k3s/server/manifests` (recursively) ending in
//!   `.yaml`, `.yml` or `.json` is applied, except dotfiles and files with a `<name>.skip`
//!   sibling. The directory is polled every 15 s; a file is re-applied when its mtime changes
//!   and its sha256 differs from its AddOn's `spec.checksum`.
//! - Each file becomes an AddOn in kube-system named after its basename up to the first '.'.
//!   That name must be unique in the whole directory, and K3s's packaged components
//!   (`coredns`, `traefik`, `local-storage`, `metrics-server`, ...) already use some: we
//!   refuse those ([`names::RESERVED_ADDONS`]).
//! - Deleting a file does not delete its objects. Changing a file applies the new object set
//!   owned by the AddOn and prunes the objects no longer in it; an empty file prunes them all.
//! - Images in `/var/lib/rancher/k3s/agent/images` (`.tar`, `.tar.gz`, `.tar.zst`,
//!   `.tar.lz4`, `.tar.bz2`) are imported when K3s starts.
//!
//! # Why tombstones
//!
//! Because deleting a file leaves its objects running, a manifest a new revision drops is
//! replaced by a *tombstone*: the same file name with only a comment. K3s applies it as an
//! empty set and prunes the AddOn's objects. The daemon removes the tombstone once the AddOn's
//! `spec.checksum` equals the tombstone's sha256 ([`apply::remove_tombstone`]); until then a
//! tombstone is carried, byte for byte, into every later apply.
//!
//! # Why `RENAME_EXCHANGE`
//!
//! K3s may read the directory at any moment and the power may go at any moment. Our files
//! live in one subdirectory, `<manifests>/outpost/`, built complete and fsynced elsewhere on
//! the same filesystem and swapped in with one `renameat2(RENAME_EXCHANGE)`: there is no
//! instant, before or after a crash, where the directory holds part of two revisions, and
//! unlike "rename old away, rename new in" there is no instant where it is missing (which
//! K3s would not mind, but a crash there would leave no workloads until the next apply).
#![forbid(unsafe_code)]

pub mod apply;
pub mod archive;
pub mod error;
mod fsutil;
pub mod names;
pub mod objects;
pub mod set;
pub mod store;

pub use apply::{applied, apply, remove_tombstone, AppliedState, ApplyReport, Target, Tombstone};
pub use archive::read_set;
pub use error::{ArchiveError, Error, NameError};
pub use names::check_revision;
pub use objects::{ObjectRef, Workload, WorkloadKind};
pub use set::{ImageFile, ManifestFile, ManifestSet};
pub use store::{RevisionEntry, Store};
