//! The U-Boot environment image, as U-Boot and libubootenv (`fw_printenv`/`fw_setenv`) store it.
//!
//! ```text
//! single:    [crc32 LE u32][data ...............................]
//! redundant: [crc32 LE u32][flags u8][data .....................]
//! data:      name=value\0name=value\0\0<padding to the env size>
//! ```
//! The CRC (zlib CRC-32) covers the whole data area, padding included. libubootenv 0.3.x
//! leaves the padding uninitialised (whatever `malloc` returned); we write zeros.
//!
//! Redundant envs are two such images ("copies"). libubootenv (`libuboot_load`, file and NAND
//! devices, "incremental" flags): a copy with a bad CRC is ignored; if both are valid the one
//! with the higher flags byte wins, except that 0 beats 0xff (the counter wrapped), and equal
//! flags pick copy 0. A write goes to the *other* copy with flags + 1, so a power cut during it
//! leaves the old copy valid. NOR flash uses boolean flags (active 1 / obsolete 0) instead; that
//! is not supported here.
//!
//! Parsing follows libubootenv: entries without `=` are skipped, a repeated name keeps its last
//! value, `.flags` (U-Boot's variable attribute list) is kept and written last, other names are
//! kept sorted by byte value (libubootenv's list is sorted with `strcmp`, and so is U-Boot's
//! export). So `serialize(parse(image))` equals the data area libubootenv writes.

use std::collections::BTreeMap;
use std::fmt;

use crate::crc32::crc32;

#[cfg(test)]
mod tests;

/// Smallest env we accept: header plus an empty list (`\0\0`).
pub const MIN_ENV_SIZE: usize = 8;
/// Largest env we accept. Real ones are 8 KiB to 256 KiB; the cap bounds allocations for
/// sizes that come from a config file.
pub const MAX_ENV_SIZE: usize = 4 << 20;
/// The variable libubootenv and U-Boot use for variable attributes.
pub const FLAGS_VAR: &str = ".flags";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UbootEnvError {
    #[error("env size {size} is outside {MIN_ENV_SIZE}..={MAX_ENV_SIZE}")]
    BadSize { size: usize },
    #[error("env CRC mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    BadCrc { stored: u32, computed: u32 },
    #[error("env data has no terminating empty entry (double NUL)")]
    NoTerminator,
    #[error("neither redundant env copy is valid ({first}; {second})")]
    NoValidCopy {
        first: Box<UbootEnvError>,
        second: Box<UbootEnvError>,
    },
    #[error("invalid U-Boot variable name {name:?}")]
    InvalidName { name: String },
    #[error("value for {name:?} contains a NUL byte")]
    InvalidValue { name: String },
    #[error("env does not fit: {needed} bytes of data, {available} available")]
    NoSpace { needed: usize, available: usize },
}

/// Whether the image has the redundant-env flags byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    Single,
    Redundant,
}

impl Layout {
    fn data_offset(self) -> usize {
        match self {
            Layout::Single => 4,
            Layout::Redundant => 5,
        }
    }
}

/// The variables of a U-Boot env.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct UbootEnv {
    vars: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl fmt::Debug for UbootEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut m = f.debug_map();
        for (k, v) in &self.vars {
            m.entry(&String::from_utf8_lossy(k), &String::from_utf8_lossy(v));
        }
        m.finish()
    }
}

/// One decoded copy of a redundant env.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copy {
    pub env: UbootEnv,
    pub flags: u8,
}

/// The outcome of reading both copies of a redundant env.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selected {
    pub env: UbootEnv,
    /// Index (0 or 1) of the copy libubootenv treats as current; the next write goes to the other.
    pub current: usize,
    /// Flags of the current copy; the next write uses `flags.wrapping_add(1)`.
    pub flags: u8,
}

impl UbootEnv {
    pub fn new() -> Self {
        Self::default()
    }

    /// Decodes one image of `image.len()` bytes (the configured env size).
    /// For [`Layout::Redundant`] the flags byte is returned as well.
    pub fn parse(image: &[u8], layout: Layout) -> Result<(Self, u8), UbootEnvError> {
        check_size(image.len())?;
        let data = &image[layout.data_offset()..];
        let stored = u32::from_le_bytes([image[0], image[1], image[2], image[3]]);
        let computed = crc32(data);
        if stored != computed {
            return Err(UbootEnvError::BadCrc { stored, computed });
        }
        let flags = match layout {
            Layout::Single => 0,
            Layout::Redundant => image[4],
        };
        Ok((Self::parse_data(data)?, flags))
    }

    /// Picks the current copy of a redundant env by libubootenv's rules (see the module docs).
    pub fn select(
        first: Result<Copy, UbootEnvError>,
        second: Result<Copy, UbootEnvError>,
    ) -> Result<Selected, UbootEnvError> {
        let pick = |c: Copy, current| Selected {
            env: c.env,
            current,
            flags: c.flags,
        };
        match (first, second) {
            (Ok(a), Err(_)) => Ok(pick(a, 0)),
            (Err(_), Ok(b)) => Ok(pick(b, 1)),
            (Err(first), Err(second)) => Err(UbootEnvError::NoValidCopy {
                first: Box::new(first),
                second: Box::new(second),
            }),
            (Ok(a), Ok(b)) => {
                let second_wins = match (a.flags, b.flags) {
                    (0xff, 0) => true,
                    (0, 0xff) => false,
                    (fa, fb) => fb > fa,
                };
                Ok(if second_wins { pick(b, 1) } else { pick(a, 0) })
            }
        }
    }

    /// Encodes an image of `size` bytes; `flags` is ignored for [`Layout::Single`].
    pub fn serialize(
        &self,
        size: usize,
        layout: Layout,
        flags: u8,
    ) -> Result<Vec<u8>, UbootEnvError> {
        check_size(size)?;
        let offset = layout.data_offset();
        let mut image = vec![0u8; offset];
        for (name, value) in self.ordered() {
            image.extend_from_slice(name);
            image.push(b'=');
            image.extend_from_slice(value);
            image.push(0);
        }
        image.push(0);
        if image.len() > size {
            return Err(UbootEnvError::NoSpace {
                needed: image.len() - offset,
                available: size - offset,
            });
        }
        image.resize(size, 0);
        if layout == Layout::Redundant {
            image[4] = flags;
        }
        let crc = crc32(&image[offset..]);
        image[..4].copy_from_slice(&crc.to_le_bytes());
        Ok(image)
    }

    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.vars.get(name.as_bytes()).map(Vec::as_slice)
    }

    /// Sets a variable. An empty value is stored as `name=`, which libubootenv keeps but U-Boot's
    /// import treats as a deletion; use [`UbootEnv::unset`] to delete.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), UbootEnvError> {
        check_name(name.as_bytes())?;
        if value.contains('\0') {
            return Err(UbootEnvError::InvalidValue { name: name.into() });
        }
        self.vars
            .insert(name.as_bytes().to_vec(), value.as_bytes().to_vec());
        Ok(())
    }

    pub fn unset(&mut self, name: &str) -> bool {
        self.vars.remove(name.as_bytes()).is_some()
    }

    /// Variables in the order they are written: sorted by name, `.flags` last.
    pub fn vars(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.ordered()
    }

    fn ordered(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        let flags = FLAGS_VAR.as_bytes();
        self.vars
            .iter()
            .filter(move |(k, _)| k.as_slice() != flags)
            .chain(self.vars.get_key_value(flags))
            .map(|(k, v)| (k.as_slice(), v.as_slice()))
    }

    fn parse_data(data: &[u8]) -> Result<Self, UbootEnvError> {
        let mut vars = BTreeMap::new();
        let mut rest = data;
        loop {
            let end = rest
                .iter()
                .position(|&b| b == 0)
                .ok_or(UbootEnvError::NoTerminator)?;
            if end == 0 {
                return Ok(Self { vars });
            }
            let entry = &rest[..end];
            // libubootenv skips entries without '='; later duplicates replace earlier ones.
            if let Some(eq) = entry.iter().position(|&b| b == b'=') {
                vars.insert(entry[..eq].to_vec(), entry[eq + 1..].to_vec());
            }
            rest = &rest[end + 1..];
        }
    }
}

fn check_size(size: usize) -> Result<(), UbootEnvError> {
    if (MIN_ENV_SIZE..=MAX_ENV_SIZE).contains(&size) {
        Ok(())
    } else {
        Err(UbootEnvError::BadSize { size })
    }
}

/// U-Boot rejects `=` in names; NUL would end the entry; empty names cannot be looked up.
fn check_name(name: &[u8]) -> Result<(), UbootEnvError> {
    if name.is_empty() || name.iter().any(|&b| b == b'=' || b == 0) {
        return Err(UbootEnvError::InvalidName {
            name: String::from_utf8_lossy(name).into_owned(),
        });
    }
    Ok(())
}
