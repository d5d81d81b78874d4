//! HTTP glue for the design notes' reference agent (`X-Device-Key` + one JSON object per
//! request). The format and its JavaScript-compatible checksum live in
//! `outpost_proto::legacy`; this module only authenticates the key and stores the record.

use std::fmt;

use hyper::StatusCode;
use outpost_proto::legacy::{parse_and_verify, LegacyError};
use outpost_proto::sha256_hex;
use serde::{Deserialize, Serialize};
use subtle::{ConditionallySelectable, ConstantTimeEq};

use crate::http::HttpError;
use crate::ingest::CONFLICT_STORED;
use crate::store::{NewRecord, Outcome, Store, StoreError};

/// Stream name under which reference-agent records are stored.
pub const LEGACY_STREAM: &str = "legacy";

/// The configured device keys. Only SHA-256 digests are kept: comparing fixed-size digests in
/// constant time hides both the keys' contents and their lengths from timing.
#[derive(Clone, Default)]
pub struct LegacyKeys {
    entries: Vec<([u8; 64], String)>,
}

impl fmt::Debug for LegacyKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LegacyKeys({} keys, redacted)", self.entries.len())
    }
}

fn digest(key: &[u8]) -> [u8; 64] {
    let mut out = [0u8; 64];
    out.copy_from_slice(sha256_hex(key).as_bytes());
    out
}

impl LegacyKeys {
    pub fn new<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Self {
            entries: pairs
                .into_iter()
                .map(|(k, d)| (digest(k.as_bytes()), d.to_owned()))
                .collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The device a presented key belongs to. Every configured key is compared, with no early
    /// exit, so the time taken does not depend on which key (if any) matched.
    pub fn lookup(&self, presented: &[u8]) -> Option<&str> {
        let wanted = digest(presented);
        // 0 = no match; i + 1 = entry i matched.
        let mut found = 0u32;
        for (i, (d, _)) in self.entries.iter().enumerate() {
            let index = u32::try_from(i + 1).unwrap_or(u32::MAX);
            found = u32::conditional_select(&found, &index, d.ct_eq(&wanted));
        }
        let index = usize::try_from(found).ok()?.checked_sub(1)?;
        self.entries.get(index).map(|(_, device)| device.as_str())
    }
}

/// The device behind an `X-Device-Key` header, or the 401 to answer.
pub fn authenticate<'a>(
    keys: &'a LegacyKeys,
    presented: Option<&[u8]>,
) -> Result<&'a str, HttpError> {
    if keys.is_empty() {
        return Err(HttpError::new(
            StatusCode::UNAUTHORIZED,
            "legacy device keys are not enabled on this hub (no [legacy_device_keys] in its config)",
        ));
    }
    presented
        .and_then(|key| keys.lookup(key))
        .ok_or_else(|| HttpError::new(StatusCode::UNAUTHORIZED, "unknown device key"))
}

/// The 200 answer to a reference-agent upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegacyResponse {
    pub id: String,
    /// `false` when the record was already stored (a retry).
    pub stored: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum LegacyStoreError {
    #[error(transparent)]
    Invalid(#[from] LegacyError),
    #[error("{CONFLICT_STORED}")]
    Conflict,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl LegacyStoreError {
    pub fn status(&self) -> StatusCode {
        match self {
            LegacyStoreError::Invalid(_) => StatusCode::BAD_REQUEST,
            LegacyStoreError::Conflict => StatusCode::CONFLICT,
            LegacyStoreError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// Verifies one reference-agent body and stores it idempotently by `(device, id)`.
pub fn store_body(
    store: &mut Store,
    device: &str,
    body: &[u8],
    header_checksum: Option<&str>,
    now_ms: i64,
) -> Result<LegacyResponse, LegacyStoreError> {
    let p = parse_and_verify(body, header_checksum)?;
    let row = NewRecord {
        id: &p.id,
        stream: LEGACY_STREAM,
        created_at_ms: p.timestamp,
        sha256: &p.checksum,
        payload: &p.sensor_data_json,
    };
    match store.insert_all(device, &[row], now_ms)?.first() {
        Some(Outcome::Stored) => Ok(LegacyResponse {
            id: p.id,
            stored: true,
        }),
        Some(Outcome::Duplicate) => Ok(LegacyResponse {
            id: p.id,
            stored: false,
        }),
        Some(Outcome::Conflict) | None => Err(LegacyStoreError::Conflict),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Filter;

    fn keys() -> LegacyKeys {
        LegacyKeys::new([
            ("secret-key-1", "device-007"),
            ("secret-key-2", "device-008"),
            ("x", "device-009"),
        ])
    }

    #[test]
    fn lookup_finds_every_key_and_nothing_else() {
        let k = keys();
        assert_eq!(k.lookup(b"secret-key-1"), Some("device-007"));
        assert_eq!(k.lookup(b"secret-key-2"), Some("device-008"));
        assert_eq!(k.lookup(b"x"), Some("device-009"));
        for wrong in [
            &b""[..],
            b"secret-key-",
            b"secret-key-10",
            b"SECRET-KEY-1",
            b"y",
        ] {
            assert_eq!(k.lookup(wrong), None);
        }
        assert_eq!(LegacyKeys::default().lookup(b""), None);
        assert!(!format!("{k:?}").contains("secret"));
    }

    #[test]
    fn authenticate_answers_401() {
        let k = keys();
        assert_eq!(authenticate(&k, Some(b"secret-key-2")), Ok("device-008"));
        for presented in [None, Some(&b"nope"[..])] {
            let e = authenticate(&k, presented).unwrap_err();
            assert_eq!(
                (e.status, e.message.as_str()),
                (StatusCode::UNAUTHORIZED, "unknown device key")
            );
        }
        let e = authenticate(&LegacyKeys::default(), Some(b"secret-key-1")).unwrap_err();
        assert_eq!(e.status, StatusCode::UNAUTHORIZED);
        assert!(e.message.contains("not enabled"));
    }

    fn body(id: &str, checksum: &str) -> String {
        format!(
            r#"{{"id":"{id}","timestamp":1795323287123,"sensorData":{{"temp": 22.4, "humidity": 45}},"checksum":"{checksum}"}}"#
        )
    }

    #[test]
    fn good_body_is_stored_once() {
        let mut store = Store::open_in_memory().unwrap();
        let sum = sha256_hex(br#"{"temp":22.4,"humidity":45}"#);
        let b = body("r-1", &sum);
        let first = store_body(&mut store, "device-007", b.as_bytes(), Some(&sum), 1).unwrap();
        assert_eq!(
            first,
            LegacyResponse {
                id: "r-1".into(),
                stored: true
            }
        );
        let again = store_body(&mut store, "device-007", b.as_bytes(), None, 2).unwrap();
        assert!(!again.stored);
        let rows = store.list(&Filter::default()).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].stream, LEGACY_STREAM);
        assert_eq!(rows[0].payload, r#"{"temp":22.4,"humidity":45}"#);
        assert_eq!(
            (rows[0].created_at_ms, rows[0].sha256.as_str()),
            (1_795_323_287_123, sum.as_str())
        );
    }

    #[test]
    fn wrong_checksum_is_400_and_not_stored() {
        let mut store = Store::open_in_memory().unwrap();
        let wrong = sha256_hex(b"something else");
        let err = store_body(
            &mut store,
            "device-007",
            body("r-1", &wrong).as_bytes(),
            None,
            1,
        )
        .unwrap_err();
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
        assert!(err.to_string().contains("checksum mismatch"), "{err}");
        assert_eq!(store.count().unwrap(), 0);
    }

    #[test]
    fn same_id_different_data_is_a_conflict() {
        let mut store = Store::open_in_memory().unwrap();
        let sum = sha256_hex(br#"{"temp":22.4,"humidity":45}"#);
        store_body(&mut store, "d", body("r-1", &sum).as_bytes(), None, 1).unwrap();
        let other = r#"{"id":"r-1","timestamp":1,"sensorData":{},"checksum":"44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"}"#;
        let err = store_body(&mut store, "d", other.as_bytes(), None, 2).unwrap_err();
        assert_eq!(err.status(), StatusCode::CONFLICT);
    }
}
