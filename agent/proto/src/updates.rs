//! Update delivery: a device asks its hub whether its channel has a release for it, and
//! downloads the bundle (and, for casync bundles, the chunks it lacks) from the hub over mTLS.
//!
//! `GET /v1/updates?compatible=C&version=V&channel=N` answers `200` with an [`UpdateOffer`]
//! (the channel's current release for that `compatible` differs from `V`), or `204` (up to date,
//! or nothing published). Files: `GET /v1/releases/<id>/bundle.raucb` and, for casync bundles,
//! `GET /v1/releases/<id>/store/<4 hex>/<64 hex>.cacnk`; both honour single `Range: bytes=`
//! requests (`206`), so an interrupted download resumes.

use serde::{Deserialize, Serialize};

pub const UPDATES_PATH: &str = "/v1/updates";
/// Prefix of release file paths.
pub const RELEASES_PREFIX: &str = "/v1/releases/";
/// The bundle file name under a release.
pub const BUNDLE_FILE: &str = "bundle.raucb";
/// The chunk store folder under a release.
pub const STORE_DIR: &str = "store";

/// What a device tells the hub about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateQuery {
    pub compatible: String,
    pub version: String,
    pub channel: String,
}

impl UpdateQuery {
    /// `compatible=..&version=..&channel=..`, percent-encoded.
    pub fn to_query(&self) -> String {
        crate::query::encode_pairs(&[
            ("compatible", &self.compatible),
            ("version", &self.version),
            ("channel", &self.channel),
        ])
    }

    /// Parses a query string; all three keys are required, others are refused.
    pub fn parse(query: &str) -> Result<Self, String> {
        let [compatible, version, channel] =
            crate::query::parse_pairs(query, ["compatible", "version", "channel"])?;
        Ok(UpdateQuery {
            compatible,
            version,
            channel,
        })
    }
}

/// `200` answer of [`UPDATES_PATH`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateOffer {
    /// The release id (hex); names the files below.
    pub release: String,
    pub channel: String,
    pub compatible: String,
    pub version: String,
    /// Absolute path on the hub of the bundle.
    pub bundle_path: String,
    pub bundle_size: u64,
    /// Hex SHA-256 of the whole bundle file (checked after download, before installing).
    pub bundle_sha256: String,
    /// Absolute path on the hub of the chunk store (casync bundles), ending in `/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_path: Option<String>,
}

/// Release ids are lowercase hex, 16 to 64 characters (the hub uses a bundle digest prefix).
pub fn valid_release_id(id: &str) -> bool {
    (16..=64).contains(&id.len()) && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

pub use crate::query::{decode, encode};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_round_trips_any_text_and_refuses_bad_ones() {
        let q = UpdateQuery {
            compatible: "outpost x86_64/uefi".into(),
            version: "2026.11.0+git&1=2".into(),
            channel: "stable".into(),
        };
        let s = q.to_query();
        assert!(!s.contains(' ') && s.matches('&').count() == 2, "{s}");
        assert_eq!(UpdateQuery::parse(&s).unwrap(), q);
        assert!(UpdateQuery::parse("compatible=a&version=b").is_err());
        assert!(UpdateQuery::parse("compatible=a&version=b&channel=c&x=1").is_err());
        assert!(UpdateQuery::parse("compatible=a&compatible=a&version=b&channel=c").is_err());
        assert!(UpdateQuery::parse("compatible=%zz&version=b&channel=c").is_err());
        assert!(UpdateQuery::parse("compatible=%ff&version=b&channel=c").is_err());
        assert!(valid_release_id("0123456789abcdef"));
        assert!(!valid_release_id("../../etc/passwd"));
        assert!(!valid_release_id("0123456789ABCDEF"));
    }

    #[test]
    fn offer_wire_format() {
        let offer = UpdateOffer {
            release: "ab".repeat(8),
            channel: "stable".into(),
            compatible: "c".into(),
            version: "2".into(),
            bundle_path: "/v1/releases/abababababababab/bundle.raucb".into(),
            bundle_size: 10,
            bundle_sha256: "00".into(),
            store_path: None,
        };
        let json = serde_json::to_string(&offer).unwrap();
        assert!(!json.contains("store_path"));
        assert_eq!(serde_json::from_str::<UpdateOffer>(&json).unwrap(), offer);
    }
}
