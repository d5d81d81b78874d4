//! The design notes' reference agent: `POST {endpoint}/ingest` with one JSON object
//! `{"id", "timestamp", "sensorData", "checksum"}` and headers `X-Device-Key` and
//! `X-Payload-Checksum`. `checksum` is the hex SHA-256 of JavaScript's
//! `JSON.stringify(sensorData)`, so verifying it means re-serialising `sensorData` exactly as
//! JavaScript does: keys in the order sent, numbers in ECMAScript `Number::toString` form
//! (`22.4`, `45`, `1e+21`, `1e-7`), strings with JSON.stringify's escapes.

use serde_json::{Map, Value};

use crate::checksum;

pub const DEVICE_KEY_HEADER: &str = "x-device-key";
pub const CHECKSUM_HEADER: &str = "x-payload-checksum";

/// A parsed and checksum-verified reference-agent payload.
#[derive(Debug, Clone, PartialEq)]
pub struct LegacyPayload {
    pub id: String,
    /// Unix milliseconds (`Date.now()` on the device).
    pub timestamp: i64,
    /// `JSON.stringify(sensorData)`, the bytes the checksum covers.
    pub sensor_data_json: String,
    /// Lowercase hex SHA-256 of `sensor_data_json`.
    pub checksum: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LegacyError {
    #[error("body is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("body must be a JSON object")]
    NotAnObject,
    #[error("field {0:?} is missing or has the wrong type")]
    Field(&'static str),
    #[error("id {0:?} is not a valid record id")]
    BadId(String),
    #[error("checksum mismatch: body says {claimed}, SHA-256 of JSON.stringify(sensorData) is {computed}")]
    ChecksumMismatch { claimed: String, computed: String },
    #[error("X-Payload-Checksum header {header} does not match the body's checksum {body}")]
    HeaderMismatch { header: String, body: String },
}

/// Parses and verifies one reference-agent body. `header_checksum` is `X-Payload-Checksum`, if sent.
pub fn parse_and_verify(
    body: &[u8],
    header_checksum: Option<&str>,
) -> Result<LegacyPayload, LegacyError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| LegacyError::InvalidJson(e.to_string()))?;
    let obj = value.as_object().ok_or(LegacyError::NotAnObject)?;
    let id = obj
        .get("id")
        .and_then(Value::as_str)
        .ok_or(LegacyError::Field("id"))?;
    crate::RecordId::parse(id).map_err(|_| LegacyError::BadId(id.chars().take(80).collect()))?;
    let timestamp = obj
        .get("timestamp")
        .and_then(|t| {
            t.as_i64()
                .or_else(|| t.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
        })
        .ok_or(LegacyError::Field("timestamp"))?;
    let sensor_data = obj
        .get("sensorData")
        .filter(|v| v.is_object())
        .ok_or(LegacyError::Field("sensorData"))?;
    let claimed = obj
        .get("checksum")
        .and_then(Value::as_str)
        .ok_or(LegacyError::Field("checksum"))?;
    if let Some(header) = header_checksum {
        if !header.trim().eq_ignore_ascii_case(claimed) {
            return Err(LegacyError::HeaderMismatch {
                header: short(header),
                body: short(claimed),
            });
        }
    }
    let sensor_data_json = js_stringify(sensor_data);
    let computed = checksum::sha256_hex(sensor_data_json.as_bytes());
    if !computed.eq_ignore_ascii_case(claimed) {
        return Err(LegacyError::ChecksumMismatch {
            claimed: short(claimed),
            computed,
        });
    }
    Ok(LegacyPayload {
        id: id.to_owned(),
        timestamp,
        sensor_data_json,
        checksum: computed,
    })
}

fn short(s: &str) -> String {
    s.chars().take(80).collect()
}

/// `JSON.stringify(value)` as ECMAScript defines it, for values that came from JSON.
/// Requires serde_json's `preserve_order` so object keys keep the order they were sent in.
pub fn js_stringify(value: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, value);
    out
}

fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => write_number(out, n),
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => write_object(out, map),
    }
}

fn write_object(out: &mut String, map: &Map<String, Value>) {
    out.push('{');
    for (i, (key, item)) in map.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_string(out, key);
        out.push(':');
        write_value(out, item);
    }
    out.push('}');
}

/// JavaScript numbers are IEEE doubles: integers beyond 2^53 round exactly as `JSON.parse` would.
fn write_number(out: &mut String, n: &serde_json::Number) {
    let f = n.as_f64().unwrap_or(f64::NAN);
    if !f.is_finite() {
        out.push_str("null"); // JSON.stringify(Infinity) === "null"
        return;
    }
    if f == 0.0 {
        out.push('0'); // JSON.stringify(-0) === "0"
        return;
    }
    let mut buf = ryu_js::Buffer::new();
    out.push_str(buf.format_finite(f));
}

fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stringify(json: &str) -> String {
        js_stringify(&serde_json::from_str(json).unwrap())
    }

    #[test]
    fn numbers_format_like_javascript() {
        // Expected strings are what node's JSON.stringify prints for the same JSON input.
        assert_eq!(stringify("[22.4, 45, 45.0, -0, 0.1, 1e21, 1e-7, 123456789012345678901, 5e-324, 1.5e300, 0.000001, 100]"),
            "[22.4,45,45,0,0.1,1e+21,1e-7,123456789012345680000,5e-324,1.5e+300,0.000001,100]");
    }

    #[test]
    fn key_order_is_kept_and_strings_escaped() {
        assert_eq!(
            stringify(r#"{"temp": 22.4, "humidity": 45, "a": "x\"\\\n\u0001é"}"#),
            "{\"temp\":22.4,\"humidity\":45,\"a\":\"x\\\"\\\\\\n\\u0001é\"}"
        );
    }

    #[test]
    fn reference_agent_body_verifies() {
        let sensor = r#"{"temp":22.4,"humidity":45}"#;
        let sum = checksum::sha256_hex(sensor.as_bytes());
        let body = format!(
            r#"{{"id":"6f1c7a52-3c1b-4b53-9a43-d7f1b1a0c001","timestamp":1795323287123,"sensorData":{{"temp": 22.4, "humidity": 45}},"checksum":"{sum}"}}"#
        );
        let p = parse_and_verify(body.as_bytes(), Some(&sum)).unwrap();
        assert_eq!(p.sensor_data_json, sensor);
        assert_eq!(p.timestamp, 1_795_323_287_123);
        assert_eq!(p.checksum, sum);
    }

    #[test]
    fn wrong_checksum_and_sorted_keys_are_refused() {
        let sorted = checksum::sha256_hex(br#"{"humidity":45,"temp":22.4}"#);
        let body = format!(
            r#"{{"id":"x1","timestamp":1,"sensorData":{{"temp":22.4,"humidity":45}},"checksum":"{sorted}"}}"#
        );
        assert!(matches!(
            parse_and_verify(body.as_bytes(), None),
            Err(LegacyError::ChecksumMismatch { .. })
        ));
    }

    #[test]
    fn header_must_agree_with_body() {
        let sum = checksum::sha256_hex(b"{}");
        let body = format!(r#"{{"id":"x1","timestamp":1,"sensorData":{{}},"checksum":"{sum}"}}"#);
        assert!(parse_and_verify(body.as_bytes(), Some(&sum)).is_ok());
        assert!(matches!(
            parse_and_verify(body.as_bytes(), Some("00")),
            Err(LegacyError::HeaderMismatch { .. })
        ));
    }

    #[test]
    fn malformed_bodies_are_errors_not_panics() {
        for b in [
            "",
            "[]",
            "{}",
            r#"{"id":1}"#,
            r#"{"id":"a","timestamp":"x"}"#,
            r#"{"id":"a b","timestamp":1,"sensorData":{},"checksum":""}"#,
        ] {
            assert!(parse_and_verify(b.as_bytes(), None).is_err(), "{b}");
        }
    }
}
