//! Record ids: chosen by the publisher (`Idempotency-Key`) or a UUIDv7 assigned by the agent.
//! The hub deduplicates on `(device, id)`, so an id must be stable across retries.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

pub const MAX_RECORD_ID_LEN: usize = 128;

/// A validated record id: 1 to 128 printable ASCII characters from `[A-Za-z0-9._:@+=-]`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct RecordId(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad record id {id:?}: {why} (1 to 128 characters from A-Z a-z 0-9 . _ : @ + = -)")]
pub struct RecordIdError {
    pub id: String,
    pub why: &'static str,
}

impl RecordId {
    pub fn parse(id: &str) -> Result<Self, RecordIdError> {
        let err = |why| RecordIdError {
            id: id.chars().take(80).collect(),
            why,
        };
        if id.is_empty() {
            return Err(err("empty"));
        }
        if id.len() > MAX_RECORD_ID_LEN {
            return Err(err("longer than 128 characters"));
        }
        let ok = |b: &u8| b.is_ascii_alphanumeric() || b"._:@+=-".contains(b);
        if !id.as_bytes().iter().all(ok) {
            return Err(err("contains a character that is not allowed"));
        }
        Ok(Self(id.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for RecordId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates() {
        assert!(RecordId::parse("0190f0c2-7d1e-7abc-8def-0123456789ab").is_ok());
        assert!(RecordId::parse("order:42@shop-7").is_ok());
        assert!(RecordId::parse("").is_err());
        assert!(RecordId::parse("a b").is_err());
        assert!(RecordId::parse("a/b").is_err());
        assert!(RecordId::parse(&"x".repeat(129)).is_err());
    }
}
