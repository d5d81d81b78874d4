//! Slot names (RAUC "bootname") and the good/bad boot state.

use std::fmt;

/// Longest bootname we accept; RAUC has no limit, but the name ends up inside env variable
/// names (`BOOT_<name>_LEFT`) and a 1 KiB grubenv, so keep it short.
pub const MAX_SLOT_NAME_LEN: usize = 32;

/// A slot's bootname as the bootloader knows it ("A", "B", "system0").
///
/// Only ASCII letters, digits, `_`, `-` and `.` are allowed: the name is embedded in env
/// variable names and in the space-separated `ORDER` / `BOOT_ORDER` lists, so whitespace,
/// `=`, `#`, `\` or NUL would corrupt them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SlotName(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlotNameError {
    #[error("slot name is empty")]
    Empty,
    #[error("slot name is longer than {MAX_SLOT_NAME_LEN} bytes")]
    TooLong,
    #[error("slot name {0:?} has a character outside [A-Za-z0-9_.-]")]
    BadChar(String),
}

impl SlotName {
    pub fn new(name: &str) -> Result<Self, SlotNameError> {
        if name.is_empty() {
            return Err(SlotNameError::Empty);
        }
        if name.len() > MAX_SLOT_NAME_LEN {
            return Err(SlotNameError::TooLong);
        }
        let ok = name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if !ok {
            return Err(SlotNameError::BadChar(name.to_owned()));
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SlotName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for SlotName {
    type Err = SlotNameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

/// RAUC's two boot states. "Good" means the bootloader will consider the slot bootable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SlotState {
    Good,
    Bad,
}

impl SlotState {
    /// The word RAUC's custom backend protocol uses.
    pub fn as_str(self) -> &'static str {
        match self {
            SlotState::Good => "good",
            SlotState::Bad => "bad",
        }
    }
}

impl fmt::Display for SlotState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_rauc_style_bootnames() {
        for n in ["A", "B", "system0", "rootfs.1", "a_b-c"] {
            assert_eq!(SlotName::new(n).unwrap().as_str(), n);
        }
    }

    #[test]
    fn rejects_names_that_would_corrupt_an_env() {
        assert_eq!(SlotName::new(""), Err(SlotNameError::Empty));
        for n in ["A B", "A=1", "#A", "A\\", "A\n", "A\0", "Ä"] {
            assert!(
                matches!(SlotName::new(n), Err(SlotNameError::BadChar(_))),
                "{n:?}"
            );
        }
        assert_eq!(SlotName::new(&"x".repeat(33)), Err(SlotNameError::TooLong));
    }
}
