//! Workload delivery: a device asks its hub which manifest set its channel wants it to run.
//!
//! `GET /v1/workloads?compatible=C&revision=R&channel=N` answers `200` with a
//! [`WorkloadOffer`] when the channel's current set for `compatible` has another revision than
//! `R` (`R` is empty when the device has none), or `204`. The artifact is a signed RAUC bundle
//! whose `manifests` image is the set (see docs/workloads.md); it is downloaded like a release
//! bundle, from `GET /v1/releases/<id>/bundle.raucb`, with `Range`.

use serde::{Deserialize, Serialize};

pub const WORKLOADS_PATH: &str = "/v1/workloads";

/// What a device tells the hub about its workloads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadQuery {
    pub compatible: String,
    /// The revision the device runs; empty when it has none yet.
    pub revision: String,
    pub channel: String,
}

impl WorkloadQuery {
    pub fn to_query(&self) -> String {
        crate::query::encode_pairs(&[
            ("compatible", &self.compatible),
            ("revision", &self.revision),
            ("channel", &self.channel),
        ])
    }

    pub fn parse(query: &str) -> Result<Self, String> {
        let [compatible, revision, channel] =
            crate::query::parse_pairs(query, ["compatible", "revision", "channel"])?;
        Ok(WorkloadQuery {
            compatible,
            revision,
            channel,
        })
    }
}

/// `200` answer of [`WORKLOADS_PATH`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkloadOffer {
    /// The published set's id (hex, like a release id); names its file.
    pub id: String,
    pub channel: String,
    pub compatible: String,
    /// The set's revision (the artifact's `[update] version`).
    pub revision: String,
    /// Absolute path on the hub of the signed artifact.
    pub artifact_path: String,
    pub artifact_size: u64,
    /// Hex SHA-256 of the artifact file (checked after download, before it is opened).
    pub artifact_sha256: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_keeps_an_empty_revision_and_refuses_the_update_keys() {
        let q = WorkloadQuery {
            compatible: "outpost x86_64".into(),
            revision: String::new(),
            channel: "stable".into(),
        };
        assert_eq!(WorkloadQuery::parse(&q.to_query()).unwrap(), q);
        assert!(WorkloadQuery::parse("compatible=a&version=b&channel=c").is_err());
    }
}
