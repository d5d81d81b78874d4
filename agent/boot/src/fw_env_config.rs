//! `fw_env.config`, the file that tells libubootenv where the env lives, parsed the way
//! libubootenv 0.3.x does (`libuboot_read_config`):
//!
//! ```text
//! # device   offset   env-size   [sector-size   [sectors]]
//! /boot/uboot.env     0x0000   0x4000
//! /boot/uboot.env     0x4000   0x4000      # a second line makes the env redundant
//! ```
//! Lines starting with `#` are skipped, and so are lines with fewer than three fields. The
//! offset is read with `%lli` (so `0x` is hex, a leading `0` is octal, else decimal); the sizes
//! with `%zx` (always hex, `0x` optional). Only the first two devices count. We support plain
//! files only: negative offsets (relative to a block device's end), MTD and UBI are refused.

use std::path::PathBuf;

use crate::ubootenv::{Layout, MAX_ENV_SIZE, MIN_ENV_SIZE};

/// Longest config we read; real ones are a few lines.
pub const MAX_CONFIG_LEN: usize = 64 * 1024;

/// Where one copy of the env is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvLocation {
    pub path: PathBuf,
    pub offset: u64,
    pub size: usize,
}

/// One or two env copies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FwEnvConfig {
    copies: Vec<EnvLocation>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FwEnvConfigError {
    #[error("fw_env.config is larger than {MAX_CONFIG_LEN} bytes")]
    TooLarge,
    #[error("fw_env.config names no env device")]
    NoDevice,
    #[error("fw_env.config line {line}: {reason}")]
    BadLine { line: usize, reason: String },
    #[error("the two env copies have different sizes ({first:#x} and {second:#x})")]
    SizeMismatch { first: usize, second: usize },
}

impl FwEnvConfig {
    /// A single (non-redundant) env.
    pub fn single(copy: EnvLocation) -> Result<Self, FwEnvConfigError> {
        Self::from_copies(vec![copy])
    }

    /// A redundant env; both copies must have the same size.
    pub fn redundant(first: EnvLocation, second: EnvLocation) -> Result<Self, FwEnvConfigError> {
        Self::from_copies(vec![first, second])
    }

    pub fn parse(text: &str) -> Result<Self, FwEnvConfigError> {
        if text.len() > MAX_CONFIG_LEN {
            return Err(FwEnvConfigError::TooLarge);
        }
        let mut copies = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 3 {
                continue;
            }
            let bad = |reason: &str| FwEnvConfigError::BadLine {
                line: i + 1,
                reason: reason.to_owned(),
            };
            let offset = parse_offset(fields[1]).ok_or_else(|| bad("bad or negative offset"))?;
            let size = parse_hex(fields[2]).ok_or_else(|| bad("bad env size"))?;
            copies.push(EnvLocation {
                path: PathBuf::from(fields[0]),
                offset,
                size,
            });
            if copies.len() == 2 {
                break;
            }
        }
        Self::from_copies(copies)
    }

    fn from_copies(copies: Vec<EnvLocation>) -> Result<Self, FwEnvConfigError> {
        let Some(first) = copies.first() else {
            return Err(FwEnvConfigError::NoDevice);
        };
        for (i, c) in copies.iter().enumerate() {
            if !(MIN_ENV_SIZE..=MAX_ENV_SIZE).contains(&c.size) {
                return Err(FwEnvConfigError::BadLine {
                    line: i + 1,
                    reason: format!(
                        "env size {:#x} outside {MIN_ENV_SIZE:#x}..={MAX_ENV_SIZE:#x}",
                        c.size
                    ),
                });
            }
        }
        if let Some(second) = copies.get(1) {
            if second.size != first.size {
                return Err(FwEnvConfigError::SizeMismatch {
                    first: first.size,
                    second: second.size,
                });
            }
        }
        Ok(Self { copies })
    }

    pub fn copies(&self) -> &[EnvLocation] {
        &self.copies
    }

    pub fn layout(&self) -> Layout {
        if self.copies.len() == 2 {
            Layout::Redundant
        } else {
            Layout::Single
        }
    }

    /// The env size (both copies have the same).
    pub fn size(&self) -> usize {
        self.copies.first().map_or(0, |c| c.size)
    }
}

/// `%lli`: optional sign, `0x` hex, leading-`0` octal, else decimal. Negative is refused
/// (libubootenv counts it back from the end of a block device, which we do not support).
fn parse_offset(s: &str) -> Option<u64> {
    let s = s.strip_prefix('+').unwrap_or(s);
    if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u64::from_str_radix(hex, 16).ok()
    } else if s.len() > 1 && s.starts_with('0') {
        u64::from_str_radix(&s[1..], 8).ok()
    } else {
        s.parse().ok()
    }
}

/// `%zx`: hex with optional `0x`.
fn parse_hex(s: &str) -> Option<usize> {
    let hex = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s);
    usize::from_str_radix(hex, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_single_and_redundant() {
        let c = FwEnvConfig::parse("# dev off size\n/e 0x0 0x2000\n").unwrap();
        assert_eq!(c.layout(), Layout::Single);
        assert_eq!(
            c.copies(),
            [EnvLocation {
                path: "/e".into(),
                offset: 0,
                size: 0x2000
            }]
        );
        let c = FwEnvConfig::parse("/a 0x4000 4000 0x1000 2\n\n/b 16384 0x4000\n/c 0 0x4000\n")
            .unwrap();
        assert_eq!(c.layout(), Layout::Redundant);
        assert_eq!(c.copies()[0].offset, 0x4000);
        assert_eq!(c.copies()[1].offset, 16384);
        assert_eq!(c.copies().len(), 2);
        assert_eq!(c.size(), 0x4000);
        assert_eq!(
            FwEnvConfig::parse("/a 010 0x100\n").unwrap().copies()[0].offset,
            8
        );
    }

    #[test]
    fn rejects_what_libubootenv_rejects_or_we_do_not_support() {
        assert_eq!(
            FwEnvConfig::parse("# nothing\n/only two\n"),
            Err(FwEnvConfigError::NoDevice)
        );
        assert!(matches!(
            FwEnvConfig::parse("/a -0x4000 0x1000\n"),
            Err(FwEnvConfigError::BadLine { line: 1, .. })
        ));
        assert!(matches!(
            FwEnvConfig::parse("/a 0 0\n"),
            Err(FwEnvConfigError::BadLine { .. })
        ));
        assert!(matches!(
            FwEnvConfig::parse("/a 0 zz\n"),
            Err(FwEnvConfigError::BadLine { .. })
        ));
        assert!(matches!(
            FwEnvConfig::parse("/a 0 0x10000000\n"),
            Err(FwEnvConfigError::BadLine { .. })
        ));
        assert_eq!(
            FwEnvConfig::parse("/a 0 0x1000\n/b 0 0x2000\n"),
            Err(FwEnvConfigError::SizeMismatch {
                first: 0x1000,
                second: 0x2000
            })
        );
        assert_eq!(
            FwEnvConfig::parse(&"#".repeat(MAX_CONFIG_LEN + 1)),
            Err(FwEnvConfigError::TooLarge)
        );
    }
}
