//! Whole-file replacement that survives a power cut: the file holds either the old or the new
//! content, never a mix.
//!
//! write `.<name>.outpost-tmp` in the same directory → fsync it → rename over the target →
//! fsync the directory (so the rename itself is on disk). The temp name is fixed, so a partial
//! temp left by a cut is simply overwritten by the next write and never read by anyone.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::error::BootError;

/// Replaces `path` with `bytes` atomically (see the module docs).
pub fn replace(path: &Path, bytes: &[u8]) -> Result<(), BootError> {
    let temp = write_temp(path, bytes)?;
    commit(&temp, path)
}

/// First half of [`replace`]: the new content, durable, under the temp name. Public so tests can
/// simulate a power cut between the two halves.
pub fn write_temp(path: &Path, bytes: &[u8]) -> Result<PathBuf, BootError> {
    let temp = temp_path(path)?;
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&temp)
        .map_err(|e| BootError::io("create", &temp, e))?;
    // Keep the target's permissions (a grubenv is usually 0644 root).
    if let Ok(meta) = fs::metadata(path) {
        f.set_permissions(meta.permissions())
            .map_err(|e| BootError::io("chmod", &temp, e))?;
    }
    f.write_all(bytes)
        .map_err(|e| BootError::io("write", &temp, e))?;
    f.sync_all().map_err(|e| BootError::io("fsync", &temp, e))?;
    Ok(temp)
}

/// Second half of [`replace`]: rename the temp over the target and make the rename durable.
pub fn commit(temp: &Path, path: &Path) -> Result<(), BootError> {
    fs::rename(temp, path).map_err(|e| BootError::io("rename", path, e))?;
    let dir = parent(path);
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| BootError::io("fsync dir", dir, e))?;
    // On vfat (the ESP, where grubenv lives) the directory fsync does not reach the renamed
    // entry: Linux's FAT driver writes it back with the file's inode, ~30 s later. A power
    // cut in between lost the agent's mark-bad of a half-written slot, and GRUB booted it
    // (found by tests/vm scenario 5). Syncing the file itself writes the entry now.
    File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|e| BootError::io("fsync", path, e))
}

/// The temp file [`write_temp`] uses for `path`.
pub fn temp_path(path: &Path) -> Result<PathBuf, BootError> {
    let name = path.file_name().ok_or_else(|| {
        BootError::io(
            "name temp for",
            path,
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "path has no file name"),
        )
    })?;
    let mut temp = std::ffi::OsString::from(".");
    temp.push(name);
    temp.push(".outpost-tmp");
    Ok(parent(path).join(temp))
}

/// Reads a whole file, refusing anything over `limit` bytes without reading it all.
pub fn read_bounded(path: &Path, limit: usize) -> Result<Vec<u8>, BootError> {
    let f = File::open(path).map_err(|e| BootError::io("open", path, e))?;
    let mut buf = Vec::new();
    // One byte more than allowed tells "too large" from "exactly at the limit".
    f.take(limit as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(|e| BootError::io("read", path, e))?;
    if buf.len() > limit {
        return Err(BootError::TooLarge {
            path: path.to_owned(),
            limit,
        });
    }
    Ok(buf)
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_writes_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        fs::write(&p, b"old").unwrap();
        replace(&p, b"new").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"new");
        assert!(!temp_path(&p).unwrap().exists());
    }

    #[test]
    fn a_cut_before_rename_keeps_the_old_file_and_the_next_write_wins() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        fs::write(&p, b"old").unwrap();
        let temp = write_temp(&p, b"half-written new content").unwrap();
        // Power cut mid-write: the temp is truncated, the rename never happened.
        fs::write(&temp, b"half").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"old");
        replace(&p, b"new").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"new");
        assert!(!temp.exists());
    }

    #[test]
    fn read_bounded_refuses_oversize() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        fs::write(&p, [0u8; 11]).unwrap();
        assert_eq!(read_bounded(&p, 11).unwrap().len(), 11);
        assert!(matches!(
            read_bounded(&p, 10),
            Err(BootError::TooLarge { limit: 10, .. })
        ));
    }
}
