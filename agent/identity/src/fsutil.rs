//! Private key files: created atomically with mode 0600 from the first byte, never
//! overwritten, and refused on load if group or other may access them.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::IdentityError;

/// Key files hold a few hundred bytes; anything much larger is not ours.
const MAX_KEY_FILE_LEN: u64 = 64 * 1024;

/// Outcome of [`create_private_file`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Created {
    /// Our bytes are now at the path.
    Yes,
    /// Someone else created the file first; it was left as it is.
    AlreadyExisted,
}

/// Read a private file, or `None` if it does not exist. Fails if the file is not a regular
/// file or if group/other have any permission bit: a loose key may already be copied.
pub(crate) fn read_private_file(path: &Path) -> Result<Option<Vec<u8>>, IdentityError> {
    let io_err = |source| IdentityError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(e)),
    };
    // Check the opened file itself, not the path, so a swap between check and read is moot.
    let meta = file.metadata().map_err(io_err)?;
    if !meta.is_file() {
        return Err(io_err(io::Error::other("not a regular file")));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(IdentityError::InsecurePermissions {
            path: path.to_path_buf(),
            mode,
        });
    }
    if meta.len() > MAX_KEY_FILE_LEN {
        return Err(io_err(io::Error::other("file too large for a key")));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.read_to_end(&mut bytes).map_err(io_err)?;
    Ok(Some(bytes))
}

/// Create `path` holding `bytes`, mode 0600, all or nothing, without replacing an existing
/// file. The bytes go to a 0600 temporary file in the same directory (fsynced), which is then
/// hard-linked to `path`: link(2) fails if `path` exists, so two racing creators cannot
/// overwrite each other's identity, and a crash leaves either no file or a complete one.
/// A missing parent directory is created with mode 0700.
pub(crate) fn create_private_file(path: &Path, bytes: &[u8]) -> Result<Created, IdentityError> {
    let io_err = |p: &Path, source| IdentityError::Io {
        path: p.to_path_buf(),
        source,
    };
    let dir = parent_dir(path);
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|e| io_err(&dir, e))?;
    let tmp = temp_path(&dir, path);
    let result = write_new_0600(&tmp, bytes)
        .map_err(|e| io_err(&tmp, e))
        .and_then(|()| match fs::hard_link(&tmp, path) {
            Ok(()) => Ok(Created::Yes),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(Created::AlreadyExisted),
            Err(e) => Err(io_err(path, e)),
        });
    // The temporary name must not linger whatever happened; failing to remove it is harmless
    // for correctness (it is 0600 and never read), so that error is not reported.
    let _ = fs::remove_file(&tmp);
    let created = result?;
    // Make the new directory entry durable before anyone relies on the key existing.
    File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_err(&dir, e))?;
    Ok(created)
}

fn write_new_0600(tmp: &Path, bytes: &[u8]) -> io::Result<()> {
    // mode() applies at open(2), so the file is never readable by others, even briefly.
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(tmp)?;
    f.write_all(bytes)?;
    f.sync_all()
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn temp_path(dir: &Path, target: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    dir.join(format!(".{name}.tmp-{}-{n}", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_0600_and_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/key");
        assert_eq!(create_private_file(&path, b"one").unwrap(), Created::Yes);
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dir_mode = fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(dir_mode & 0o777, 0o700);
        assert_eq!(
            create_private_file(&path, b"two").unwrap(),
            Created::AlreadyExisted
        );
        assert_eq!(read_private_file(&path).unwrap().unwrap(), b"one");
        // No temporary files are left behind.
        assert_eq!(fs::read_dir(path.parent().unwrap()).unwrap().count(), 1);
    }

    #[test]
    fn refuses_group_or_world_access_and_reports_missing_as_none() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        assert!(read_private_file(&path).unwrap().is_none());
        create_private_file(&path, b"k").unwrap();
        for mode in [0o640, 0o604, 0o644, 0o660] {
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
            match read_private_file(&path) {
                Err(IdentityError::InsecurePermissions { mode: m, .. }) => assert_eq!(m, mode),
                other => panic!("mode {mode:o}: expected refusal, got {other:?}"),
            }
        }
        fs::set_permissions(&path, fs::Permissions::from_mode(0o400)).unwrap();
        assert_eq!(read_private_file(&path).unwrap().unwrap(), b"k");
    }
}
