//! Durable file-system steps shared by the store and the apply: every file is fsynced before
//! it is renamed into place, and every directory whose entries changed is fsynced after.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::Error;

/// Files may hold Kubernetes Secrets: owner only (K3s runs as root).
pub(crate) const FILE_MODE: u32 = 0o600;
pub(crate) const DIR_MODE: u32 = 0o700;

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

pub(crate) fn sync_dir(dir: &Path) -> Result<(), Error> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io("fsync dir", dir, e))
}

pub(crate) fn create_dir(dir: &Path) -> Result<(), Error> {
    fs::DirBuilder::new()
        .mode(DIR_MODE)
        .create(dir)
        .map_err(|e| Error::io("create dir", dir, e))
}

pub(crate) fn create_dir_all(dir: &Path) -> Result<(), Error> {
    fs::DirBuilder::new()
        .mode(DIR_MODE)
        .recursive(true)
        .create(dir)
        .map_err(|e| Error::io("create dir", dir, e))
}

fn create_file(path: &Path) -> Result<File, Error> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(FILE_MODE)
        .open(path)
        .map_err(|e| Error::io("create", path, e))
}

/// Writes a new file and fsyncs it (not its directory: callers sync the directory once).
pub(crate) fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let mut f = create_file(path)?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| Error::io("write", path, e))
}

/// Streams `reader` into a new file, fsyncs it, and returns its (sha256 hex, size).
pub(crate) fn copy_synced(reader: &mut dyn Read, path: &Path) -> Result<(String, u64), Error> {
    let mut f = create_file(path)?;
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io("read source of", path, e)),
        };
        hasher.update(&buf[..n]);
        f.write_all(&buf[..n])
            .map_err(|e| Error::io("write", path, e))?;
        size += n as u64;
    }
    f.sync_all().map_err(|e| Error::io("fsync", path, e))?;
    Ok((hex::encode(hasher.finalize()), size))
}

/// Copies `src` to `dst` (fsynced) and checks it against the sha256 the store recorded, so a
/// corrupted store file is never handed to K3s.
pub(crate) fn copy_verified(src: &Path, dst: &Path, sha256: &str) -> Result<(), Error> {
    let mut f = File::open(src).map_err(|e| Error::io("open", src, e))?;
    let (got, _) = copy_synced(&mut f, dst)?;
    if got != sha256 {
        return Err(Error::corrupt(
            src,
            format!("sha256 is {got}, the store recorded {sha256}"),
        ));
    }
    Ok(())
}

/// Hashes a file without holding it in memory.
pub(crate) fn hash_file(path: &Path) -> Result<(String, u64), Error> {
    let mut f = File::open(path).map_err(|e| Error::io("open", path, e))?;
    let mut hasher = Sha256::new();
    let size = io::copy(&mut f, &mut hasher).map_err(|e| Error::io("read", path, e))?;
    Ok((hex::encode(hasher.finalize()), size))
}

/// Reads a whole file, refusing anything over `limit` bytes without reading it all.
pub(crate) fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, Error> {
    let f = File::open(path).map_err(|e| Error::io("open", path, e))?;
    let mut buf = Vec::new();
    f.take(limit + 1)
        .read_to_end(&mut buf)
        .map_err(|e| Error::io("read", path, e))?;
    if buf.len() as u64 > limit {
        return Err(Error::corrupt(path, format!("larger than {limit} bytes")));
    }
    Ok(buf)
}

/// Replaces `path` atomically: a dot-named temp beside it (K3s skips dotfiles), fsync,
/// rename, fsync the directory.
pub(crate) fn replace(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let temp = temp_beside(path);
    write_synced(&temp, bytes)?;
    fs::rename(&temp, path).map_err(|e| Error::io("rename", path, e))?;
    sync_dir(parent(path))
}

/// `.<name>.outpost-tmp` in the same directory.
pub(crate) fn temp_beside(path: &Path) -> PathBuf {
    let mut name = std::ffi::OsString::from(".");
    name.push(path.file_name().unwrap_or_default());
    name.push(".outpost-tmp");
    parent(path).join(name)
}

pub(crate) fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Removes a file or directory tree; absent is fine.
pub(crate) fn remove_any(path: &Path) -> Result<(), Error> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io("stat", path, e)),
    };
    let res = if meta.is_dir() {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    };
    match res {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(Error::io("remove", path, e)),
        _ => Ok(()),
    }
}

/// Names in a directory, sorted. Non-UTF-8 names (never ours) come back lossily converted:
/// they then match nothing we expect, which is all the callers need.
pub(crate) fn list_dir(dir: &Path) -> Result<Vec<String>, Error> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| Error::io("list", dir, e))? {
        let entry = entry.map_err(|e| Error::io("list", dir, e))?;
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    Ok(names)
}
