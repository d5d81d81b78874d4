//! `outpost-hub records`: what the hub has stored, as JSON or a table.

use outpost_proto::time::rfc3339_millis;
use serde::Serialize;
use serde_json::value::RawValue;

use crate::store::{Filter, Store, StoreError, StoredRecord};

/// One stored record as `records --json` prints it.
#[derive(Debug, Serialize)]
pub struct RecordView {
    pub id: String,
    pub device: String,
    pub stream: String,
    pub created_at: String,
    pub created_at_ms: i64,
    pub received_at: String,
    pub sha256: String,
    pub payload: Payload,
}

/// The stored payload embedded as JSON, byte for byte as it was uploaded.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Payload {
    Json(Box<RawValue>),
    /// Only if the database was edited by hand to hold something that is not JSON.
    Text(String),
}

impl From<StoredRecord> for RecordView {
    fn from(r: StoredRecord) -> Self {
        let payload = match RawValue::from_string(r.payload) {
            Ok(raw) => Payload::Json(raw),
            Err(_) => Payload::Text(String::from("<stored payload is not valid JSON>")),
        };
        RecordView {
            created_at: rfc3339_millis(r.created_at_ms),
            received_at: rfc3339_millis(r.received_at_ms),
            id: r.id,
            device: r.device,
            stream: r.stream,
            created_at_ms: r.created_at_ms,
            sha256: r.sha256,
            payload,
        }
    }
}

pub fn load(store: &Store, filter: &Filter) -> Result<Vec<RecordView>, StoreError> {
    Ok(store
        .list(filter)?
        .into_iter()
        .map(RecordView::from)
        .collect())
}

pub fn render_json(views: &[RecordView]) -> Result<String, serde_json::Error> {
    serde_json::to_string_pretty(views)
}

const PAYLOAD_WIDTH: usize = 60;

pub fn render_table(views: &[RecordView]) -> String {
    let header = ["DEVICE", "STREAM", "CREATED_AT", "ID", "SHA256", "PAYLOAD"].map(String::from);
    let rows: Vec<[String; 6]> = views
        .iter()
        .map(|v| {
            let payload = match &v.payload {
                Payload::Json(raw) => raw.get(),
                Payload::Text(t) => t.as_str(),
            };
            [
                v.device.clone(),
                v.stream.clone(),
                v.created_at.clone(),
                v.id.clone(),
                v.sha256.chars().take(12).collect(),
                truncate(payload, PAYLOAD_WIDTH),
            ]
        })
        .collect();
    let mut out = crate::stats::table(&header, &rows);
    out.push_str(&format!("{} record(s)\n", views.len()));
    out
}

/// One line, at most `max` characters, with an ellipsis if cut.
fn truncate(s: &str, max: usize) -> String {
    let flat: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if flat.chars().count() <= max {
        flat
    } else {
        let mut t: String = flat.chars().take(max - 1).collect();
        t.push('…');
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::NewRecord;

    #[test]
    fn json_view_embeds_payload_and_times() {
        let mut store = Store::open_in_memory().unwrap();
        let payload = r#"{"t": 22.50}"#;
        let sha = outpost_proto::sha256_hex(payload.as_bytes());
        let rec = NewRecord {
            id: "r1",
            stream: "temp",
            created_at_ms: 1_795_323_287_123,
            sha256: &sha,
            payload,
        };
        store
            .insert_all("device-001", &[rec], 1_795_323_288_000)
            .unwrap();
        let views = load(&store, &Filter::default()).unwrap();
        let text = render_json(&views).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let r = &v[0];
        assert_eq!(r["id"], "r1");
        assert_eq!(r["device"], "device-001");
        assert_eq!(r["created_at"], "2026-11-22T04:54:47.123Z");
        assert_eq!(r["created_at_ms"], 1_795_323_287_123_i64);
        assert_eq!(r["received_at"], "2026-11-22T04:54:48.000Z");
        assert_eq!(r["payload"]["t"], 22.5);
        assert!(text.contains(r#""payload": {"t": 22.50}"#), "{text}");
        let table = render_table(&views);
        assert!(
            table.contains("device-001") && table.contains("1 record(s)"),
            "{table}"
        );
    }

    #[test]
    fn truncation() {
        assert_eq!(truncate("abc", 5), "abc");
        assert_eq!(truncate("abcdef", 5), "abcd…");
        assert_eq!(truncate("a\nb", 5), "a b");
    }
}
