//! Stream names: `[a-z0-9][a-z0-9._-]{0,63}`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize};

/// Longest allowed stream name, in bytes.
pub const MAX_STREAM_NAME_LEN: usize = 64;

/// A validated stream name. Parse with [`StreamName::parse`]; an instance is always valid.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct StreamName(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad stream name {name:?}: {why} (allowed: [a-z0-9][a-z0-9._-]{{0,63}})")]
pub struct StreamNameError {
    pub name: String,
    pub why: &'static str,
}

impl StreamName {
    pub fn parse(name: &str) -> Result<Self, StreamNameError> {
        let err = |why| StreamNameError {
            name: name.chars().take(80).collect(),
            why,
        };
        let bytes = name.as_bytes();
        let Some(first) = bytes.first() else {
            return Err(err("empty"));
        };
        if bytes.len() > MAX_STREAM_NAME_LEN {
            return Err(err("longer than 64 characters"));
        }
        if !(first.is_ascii_lowercase() || first.is_ascii_digit()) {
            return Err(err("must start with a-z or 0-9"));
        }
        let ok = |b: &u8| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        };
        if !bytes.iter().all(ok) {
            return Err(err("only a-z, 0-9, '.', '_' and '-' are allowed"));
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for StreamName {
    type Err = StreamNameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for StreamName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for StreamName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for StreamName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_valid_names() {
        for n in ["a", "0", "temp", "sensor.temp_1-x", &"a".repeat(64)] {
            assert!(StreamName::parse(n).is_ok(), "{n}");
        }
    }

    #[test]
    fn rejects_invalid_names() {
        for n in [
            "",
            "-a",
            ".a",
            "_a",
            "A",
            "tEmp",
            "a b",
            "a/b",
            "ä",
            &"a".repeat(65),
        ] {
            assert!(StreamName::parse(n).is_err(), "{n:?}");
        }
    }

    #[test]
    fn serde_validates() {
        assert!(serde_json::from_str::<StreamName>("\"ok\"").is_ok());
        assert!(serde_json::from_str::<StreamName>("\"Bad\"").is_err());
    }
}
