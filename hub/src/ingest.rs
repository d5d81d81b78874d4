//! The native upload, `POST /v1/ingest`, as pure functions over bytes: decode the body
//! (bounded), parse the batch, verify every record's checksum, then turn store outcomes into
//! the [`IngestResponse`]. The HTTP glue lives in `server.rs`; everything here is unit-tested.

use std::collections::{HashMap, HashSet};
use std::io::Read;

use hyper::StatusCode;
use outpost_proto::ingest::{MAX_BATCH_RECORDS, MAX_DECOMPRESSED_BATCH_BYTES};
use outpost_proto::{checksum, IngestBatch, IngestRecord, IngestResponse, Rejection};

use crate::store::{NewRecord, Outcome, Store, StoreError};

/// Largest zstd window the decoder will allocate (2^26 = 64 MiB). A frame that asks for more
/// cannot be a legitimate batch, since no batch may decompress to more than that anyway.
const ZSTD_WINDOW_LOG_MAX: u32 = 26;
const READ_CHUNK: usize = 64 * 1024;

pub const CONFLICT_STORED: &str = "conflict: id already stored with a different checksum";
pub const CONFLICT_IN_BATCH: &str =
    "conflict: id appears more than once in the batch with different checksums";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Identity,
    Zstd,
}

/// Why a whole request was refused. Nothing is stored in any of these cases.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IngestError {
    #[error("unsupported Content-Encoding {0:?} (send zstd or no encoding)")]
    UnsupportedEncoding(String),
    #[error("body is not valid zstd: {0}")]
    BadZstd(String),
    #[error("decompressed body exceeds {0} bytes")]
    TooLarge(usize),
    #[error("body is not a valid ingest batch: {0}")]
    BadBatch(String),
    #[error("batch has {0} records; at most {MAX_BATCH_RECORDS} are accepted per request")]
    TooManyRecords(usize),
}

impl IngestError {
    pub fn status(&self) -> StatusCode {
        match self {
            IngestError::UnsupportedEncoding(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            IngestError::TooLarge(_) | IngestError::TooManyRecords(_) => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            IngestError::BadZstd(_) | IngestError::BadBatch(_) => StatusCode::BAD_REQUEST,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error(transparent)]
    Request(#[from] IngestError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Maps a `Content-Encoding` header value. `identity` and an absent header mean plain JSON.
pub fn parse_encoding(header: Option<&str>) -> Result<Encoding, IngestError> {
    match header.map(str::trim) {
        None | Some("") => Ok(Encoding::Identity),
        Some(v) if v.eq_ignore_ascii_case("identity") => Ok(Encoding::Identity),
        Some(v) if v.eq_ignore_ascii_case("zstd") => Ok(Encoding::Zstd),
        Some(v) => Err(IngestError::UnsupportedEncoding(
            v.chars().take(40).collect(),
        )),
    }
}

/// The request body as JSON bytes, never more than `limit` bytes. Decompression is streamed in
/// chunks so that a zip bomb stops at the limit instead of allocating what it claims.
pub fn decode_body(body: &[u8], encoding: Encoding, limit: usize) -> Result<Vec<u8>, IngestError> {
    match encoding {
        Encoding::Identity if body.len() > limit => Err(IngestError::TooLarge(limit)),
        Encoding::Identity => Ok(body.to_vec()),
        Encoding::Zstd => {
            let zerr = |e: std::io::Error| IngestError::BadZstd(one_line(&e.to_string()));
            let mut decoder = zstd::stream::read::Decoder::with_buffer(body).map_err(zerr)?;
            decoder.window_log_max(ZSTD_WINDOW_LOG_MAX).map_err(zerr)?;
            let mut out = Vec::new();
            let mut chunk = vec![0u8; READ_CHUNK];
            loop {
                let n = match decoder.read(&mut chunk) {
                    Ok(0) => return Ok(out),
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(zerr(e)),
                };
                if out.len() + n > limit {
                    return Err(IngestError::TooLarge(limit));
                }
                if out.capacity() - out.len() < n {
                    // Grow geometrically but never past the limit, so capacity stays bounded too.
                    let target = (out.capacity() * 2).max(out.len() + n).min(limit);
                    out.reserve_exact(target - out.len());
                }
                out.extend_from_slice(&chunk[..n]);
            }
        }
    }
}

pub fn parse_batch(json: &[u8]) -> Result<IngestBatch, IngestError> {
    let batch: IngestBatch = serde_json::from_slice(json)
        .map_err(|e| IngestError::BadBatch(one_line(&e.to_string())))?;
    if batch.records.len() > MAX_BATCH_RECORDS {
        return Err(IngestError::TooManyRecords(batch.records.len()));
    }
    Ok(batch)
}

/// A batch split into records worth storing and records refused before touching the store.
/// Each id of the batch is in exactly one of the two lists, once.
#[derive(Debug)]
pub struct Checked {
    pub accepted: Vec<IngestRecord>,
    pub rejected: Vec<Rejection>,
}

/// Verifies every record's checksum over the exact payload bytes. An id repeated within the
/// batch is answered once: repeats with the same checksum fold into the first occurrence,
/// repeats with different checksums reject the id (nothing of it is stored).
pub fn check(batch: IngestBatch) -> Checked {
    let mut claimed: HashMap<&str, &str> = HashMap::new();
    let mut inconsistent: HashSet<String> = HashSet::new();
    for r in &batch.records {
        let prev = claimed.entry(r.id.as_str()).or_insert(r.sha256.as_str());
        if !prev.eq_ignore_ascii_case(&r.sha256) {
            inconsistent.insert(r.id.as_str().to_owned());
        }
    }
    let mut seen = HashSet::new();
    let mut out = Checked {
        accepted: Vec::new(),
        rejected: Vec::new(),
    };
    for r in batch.records {
        if !seen.insert(r.id.as_str().to_owned()) {
            continue;
        }
        let reject = |reason: String| Rejection {
            id: r.id.as_str().to_owned(),
            reason,
        };
        if inconsistent.contains(r.id.as_str()) {
            out.rejected.push(reject(CONFLICT_IN_BATCH.to_owned()));
        } else if !checksum::matches(r.payload.get().as_bytes(), &r.sha256) {
            let computed = checksum::sha256_hex(r.payload.get().as_bytes());
            let claimed: String = r.sha256.chars().take(80).collect();
            out.rejected.push(reject(format!(
                "sha256 mismatch: record says {claimed:?}, payload hashes to {computed}"
            )));
        } else {
            out.accepted.push(r);
        }
    }
    out
}

/// Combines the pre-store rejections with the store's outcome for each accepted record.
pub fn respond(checked: &Checked, outcomes: &[Outcome]) -> IngestResponse {
    let mut resp = IngestResponse {
        acked: Vec::new(),
        rejected: checked.rejected.clone(),
    };
    for (r, outcome) in checked.accepted.iter().zip(outcomes) {
        match outcome {
            Outcome::Stored | Outcome::Duplicate => resp.acked.push(r.id.as_str().to_owned()),
            Outcome::Conflict => resp.rejected.push(Rejection {
                id: r.id.as_str().to_owned(),
                reason: CONFLICT_STORED.to_owned(),
            }),
        }
    }
    resp
}

/// Decodes and checks one request body: everything before the store, CPU only.
pub fn prepare(body: &[u8], encoding: Encoding) -> Result<Checked, IngestError> {
    let json = decode_body(body, encoding, MAX_DECOMPRESSED_BATCH_BYTES)?;
    Ok(check(parse_batch(&json)?))
}

/// Stores the accepted records of `checked` for `device` in one transaction, committed before
/// this returns, and builds the answer.
pub fn commit(
    store: &mut Store,
    device: &str,
    checked: &Checked,
    now_ms: i64,
) -> Result<IngestResponse, StoreError> {
    let rows: Vec<NewRecord<'_>> = checked
        .accepted
        .iter()
        .map(|r| NewRecord {
            id: r.id.as_str(),
            stream: r.stream.as_str(),
            created_at_ms: r.created_at,
            sha256: &r.sha256,
            payload: r.payload.get(),
        })
        .collect();
    let outcomes = if rows.is_empty() {
        Vec::new()
    } else {
        store.insert_all(device, &rows, now_ms)?
    };
    Ok(respond(checked, &outcomes))
}

/// The whole native ingest minus HTTP: [`prepare`] then [`commit`].
pub fn process(
    store: &mut Store,
    device: &str,
    body: &[u8],
    encoding: Encoding,
    now_ms: i64,
) -> Result<IngestResponse, ProcessError> {
    let checked = prepare(body, encoding)?;
    Ok(commit(store, device, &checked, now_ms)?)
}

/// Error bodies are one line; serde and zstd messages normally are, but make sure.
pub fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Filter;

    fn record(id: &str, payload: &str) -> String {
        let sha = checksum::sha256_hex(payload.as_bytes());
        format!(
            r#"{{"id":"{id}","stream":"temp","created_at":1700000000000,"sha256":"{sha}","payload":{payload}}}"#
        )
    }

    fn batch(records: &[String]) -> Vec<u8> {
        format!(r#"{{"records":[{}]}}"#, records.join(",")).into_bytes()
    }

    fn zstd(bytes: &[u8]) -> Vec<u8> {
        zstd::encode_all(bytes, 3).unwrap()
    }

    #[test]
    fn encodings() {
        assert_eq!(parse_encoding(None), Ok(Encoding::Identity));
        assert_eq!(parse_encoding(Some("ZSTD")), Ok(Encoding::Zstd));
        assert_eq!(
            parse_encoding(Some("gzip")).unwrap_err().status(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
    }

    #[test]
    fn good_batch_is_stored_exactly() {
        let mut store = Store::open_in_memory().unwrap();
        let body = zstd(&batch(&[
            record("a1", r#"{"t": 22.50, "h":[ 1 ]}"#),
            record("a2", "7"),
        ]));
        let resp = process(&mut store, "dev", &body, Encoding::Zstd, 5).unwrap();
        assert_eq!(
            resp,
            IngestResponse {
                acked: vec!["a1".into(), "a2".into()],
                rejected: vec![]
            }
        );
        let rows = store.list(&Filter::default()).unwrap();
        // The payload is kept byte for byte, whitespace and number formatting included.
        assert_eq!(rows[0].payload, r#"{"t": 22.50, "h":[ 1 ]}"#);
        assert_eq!(
            (
                rows[0].device.as_str(),
                rows[0].stream.as_str(),
                rows[0].created_at_ms
            ),
            ("dev", "temp", 1_700_000_000_000)
        );
        // A retry is acked again and stored once.
        let again = process(&mut store, "dev", &body, Encoding::Zstd, 6).unwrap();
        assert_eq!(again.acked, ["a1", "a2"]);
        assert_eq!(store.count().unwrap(), 2);
    }

    #[test]
    fn garbage_zstd_is_a_400_and_stores_nothing() {
        let mut store = Store::open_in_memory().unwrap();
        let err =
            process(&mut store, "dev", b"definitely not zstd", Encoding::Zstd, 1).unwrap_err();
        let ProcessError::Request(e) = err else {
            panic!("{err}")
        };
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
        assert!(e.to_string().starts_with("body is not valid zstd: "), "{e}");
        // A truncated frame is garbage too.
        let good = zstd(&batch(&[record("a1", "1")]));
        assert!(matches!(
            decode_body(&good[..good.len() - 3], Encoding::Zstd, 1 << 20),
            Err(IngestError::BadZstd(_))
        ));
        assert_eq!(store.count().unwrap(), 0);
    }

    #[test]
    fn zip_bomb_stops_at_the_limit() {
        // 8 MiB of zeros compresses to a few hundred bytes; a 1 MiB limit must stop it.
        let bomb = zstd(&vec![0u8; 8 << 20]);
        assert!(bomb.len() < 4096);
        assert_eq!(
            decode_body(&bomb, Encoding::Zstd, 1 << 20),
            Err(IngestError::TooLarge(1 << 20))
        );
        assert_eq!(
            decode_body(&bomb, Encoding::Zstd, 8 << 20).unwrap().len(),
            8 << 20
        );
        assert_eq!(
            decode_body(&[0u8; 11], Encoding::Identity, 10),
            Err(IngestError::TooLarge(10))
        );
    }

    #[test]
    fn frames_demanding_a_huge_window_are_refused() {
        use std::io::Write;
        // A streamed frame with no content size declares its full window (2^27 here: accepted by
        // zstd's default decoder limit, refused by ours).
        let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
        enc.window_log(27).unwrap();
        enc.long_distance_matching(true).unwrap();
        enc.write_all(&batch(&[record("a1", "1")])).unwrap();
        let frame = enc.finish().unwrap();
        assert!(matches!(
            decode_body(&frame, Encoding::Zstd, MAX_DECOMPRESSED_BATCH_BYTES),
            Err(IngestError::BadZstd(_))
        ));
    }

    #[test]
    fn zip_bomb_past_the_global_limit_is_refused() {
        let mut store = Store::open_in_memory().unwrap();
        let bomb = zstd(&vec![b' '; MAX_DECOMPRESSED_BATCH_BYTES + 1]);
        let err = process(&mut store, "dev", &bomb, Encoding::Zstd, 1).unwrap_err();
        assert!(
            matches!(err, ProcessError::Request(IngestError::TooLarge(_))),
            "{err}"
        );
    }

    #[test]
    fn bad_json_stream_and_id_are_400() {
        let mut store = Store::open_in_memory().unwrap();
        let bad_stream = record("a1", "1").replace("\"temp\"", "\"Temp!\"");
        let bad_id = record("a b", "1");
        for body in [
            b"{not json".to_vec(),
            batch(&[bad_stream]),
            batch(&[bad_id]),
            b"{}".to_vec(),
        ] {
            let err = process(&mut store, "dev", &body, Encoding::Identity, 1).unwrap_err();
            let ProcessError::Request(e) = err else {
                panic!("{err}")
            };
            assert_eq!(e.status(), StatusCode::BAD_REQUEST);
            assert!(!e.to_string().contains('\n'));
        }
        assert_eq!(store.count().unwrap(), 0);
    }

    #[test]
    fn wrong_sha_is_rejected_and_not_stored() {
        let mut store = Store::open_in_memory().unwrap();
        let wrong =
            record("bad", "1").replace(&checksum::sha256_hex(b"1"), &checksum::sha256_hex(b"2"));
        let body = batch(&[record("good", "1"), wrong]);
        let resp = process(&mut store, "dev", &body, Encoding::Identity, 1).unwrap();
        assert_eq!(resp.acked, ["good"]);
        assert_eq!(resp.rejected.len(), 1);
        assert_eq!(resp.rejected[0].id, "bad");
        assert!(resp.rejected[0].reason.starts_with("sha256 mismatch"));
        assert_eq!(store.list(&Filter::default()).unwrap().len(), 1);
    }

    #[test]
    fn conflicts_and_in_batch_repeats() {
        let mut store = Store::open_in_memory().unwrap();
        process(
            &mut store,
            "dev",
            &batch(&[record("x", "1")]),
            Encoding::Identity,
            1,
        )
        .unwrap();
        let body = batch(&[
            record("x", "2"),
            record("y", "1"),
            record("y", "1"),
            record("z", "1"),
            record("z", "2"),
        ]);
        let resp = process(&mut store, "dev", &body, Encoding::Identity, 2).unwrap();
        assert_eq!(resp.acked, ["y"]);
        let mut rejected: Vec<_> = resp
            .rejected
            .iter()
            .map(|r| (r.id.as_str(), r.reason.as_str()))
            .collect();
        rejected.sort();
        assert_eq!(rejected, [("x", CONFLICT_STORED), ("z", CONFLICT_IN_BATCH)]);
        let rows = store.list(&Filter::default()).unwrap();
        assert_eq!(
            rows.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
            ["x", "y"]
        );
        assert_eq!(rows[0].payload, "1");
    }

    #[test]
    fn too_many_records() {
        let one = record("a", "1");
        let many: Vec<String> = (0..=MAX_BATCH_RECORDS)
            .map(|i| one.replace("\"a\"", &format!("\"a{i}\"")))
            .collect();
        assert_eq!(
            parse_batch(&batch(&many)).unwrap_err(),
            IngestError::TooManyRecords(MAX_BATCH_RECORDS + 1)
        );
    }
}
