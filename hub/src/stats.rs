//! `outpost-hub stats`: per device and stream, how many records arrived, the time span they
//! cover, and whether every stored payload still matches its checksum.

use outpost_proto::checksum;
use outpost_proto::time::rfc3339_millis;
use serde::Serialize;

use crate::store::{Filter, Store, StoreError};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StreamStats {
    pub device: String,
    pub stream: String,
    pub records: u64,
    pub first_created_at: String,
    pub last_created_at: String,
    pub first_created_at_ms: i64,
    pub last_created_at_ms: i64,
    pub checksums_ok: u64,
    pub checksums_bad: u64,
}

/// Rows arrive ordered by device, stream and creation time, so each group is contiguous and
/// its first and last rows carry the time span.
pub fn compute(store: &Store, filter: &Filter) -> Result<Vec<StreamStats>, StoreError> {
    let mut out: Vec<StreamStats> = Vec::new();
    store.for_each(filter, |r| {
        let ok = checksum::matches(r.payload.as_bytes(), &r.sha256);
        let same_group = out
            .last()
            .is_some_and(|s| s.device == r.device && s.stream == r.stream);
        if !same_group {
            out.push(StreamStats {
                device: r.device,
                stream: r.stream,
                records: 0,
                first_created_at: rfc3339_millis(r.created_at_ms),
                last_created_at: String::new(),
                first_created_at_ms: r.created_at_ms,
                last_created_at_ms: r.created_at_ms,
                checksums_ok: 0,
                checksums_bad: 0,
            });
        }
        if let Some(s) = out.last_mut() {
            s.records += 1;
            s.last_created_at_ms = r.created_at_ms;
            if ok {
                s.checksums_ok += 1;
            } else {
                s.checksums_bad += 1;
            }
        }
    })?;
    for s in &mut out {
        s.last_created_at = rfc3339_millis(s.last_created_at_ms);
    }
    Ok(out)
}

pub fn render_table(stats: &[StreamStats]) -> String {
    let header = [
        "DEVICE",
        "STREAM",
        "RECORDS",
        "FIRST_CREATED_AT",
        "LAST_CREATED_AT",
        "CHECKSUMS_OK",
        "CHECKSUMS_BAD",
    ]
    .map(String::from);
    let rows: Vec<[String; 7]> = stats
        .iter()
        .map(|s| {
            [
                s.device.clone(),
                s.stream.clone(),
                s.records.to_string(),
                s.first_created_at.clone(),
                s.last_created_at.clone(),
                s.checksums_ok.to_string(),
                s.checksums_bad.to_string(),
            ]
        })
        .collect();
    let mut out = table(&header, &rows);
    let total: u64 = stats.iter().map(|s| s.records).sum();
    let bad: u64 = stats.iter().map(|s| s.checksums_bad).sum();
    let devices = {
        let mut d: Vec<&str> = stats.iter().map(|s| s.device.as_str()).collect();
        d.dedup();
        d.len()
    };
    out.push_str(&format!(
        "{total} record(s) from {devices} device(s); {bad} checksum failure(s)\n"
    ));
    out
}

/// Left-aligned columns separated by two spaces.
pub fn table<const N: usize>(header: &[String; N], rows: &[[String; N]]) -> String {
    let mut widths = header.each_ref().map(|h| h.chars().count());
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(header).chain(rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::NewRecord;

    #[test]
    fn groups_spans_and_checksums() {
        let mut store = Store::open_in_memory().unwrap();
        let good = outpost_proto::sha256_hex(b"1");
        let bad = "0".repeat(64);
        let r = |id, stream, t, sha| NewRecord {
            id,
            stream,
            created_at_ms: t,
            sha256: sha,
            payload: "1",
        };
        store
            .insert_all(
                "d1",
                &[
                    r("a", "temp", 30, &good),
                    r("b", "temp", 10, &good),
                    r("c", "temp", 20, &bad),
                    r("d", "gps", 5, &good),
                ],
                0,
            )
            .unwrap();
        store
            .insert_all("d2", &[r("a", "temp", 1, &good)], 0)
            .unwrap();
        let stats = compute(&store, &Filter::default()).unwrap();
        let key: Vec<_> = stats
            .iter()
            .map(|s| (s.device.as_str(), s.stream.as_str(), s.records))
            .collect();
        assert_eq!(
            key,
            [("d1", "gps", 1), ("d1", "temp", 3), ("d2", "temp", 1)]
        );
        let temp = &stats[1];
        assert_eq!(
            (temp.first_created_at_ms, temp.last_created_at_ms),
            (10, 30)
        );
        assert_eq!(temp.last_created_at, "1970-01-01T00:00:00.030Z");
        assert_eq!((temp.checksums_ok, temp.checksums_bad), (2, 1));
        let text = render_table(&stats);
        assert!(
            text.contains("5 record(s) from 2 device(s); 1 checksum failure(s)"),
            "{text}"
        );
    }
}
