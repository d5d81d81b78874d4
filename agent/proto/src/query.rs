//! The query strings devices send (`GET /v1/updates`, `GET /v1/workloads`): a fixed set of
//! required keys, percent-encoded values, nothing else accepted.

/// `k1=v1&k2=v2`, values percent-encoded.
pub fn encode_pairs(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Parses `query` into the values of exactly `keys` (each required once, no other key).
pub fn parse_pairs<const N: usize>(query: &str, keys: [&str; N]) -> Result<[String; N], String> {
    let mut values: [Option<String>; N] = std::array::from_fn(|_| None);
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair
            .split_once('=')
            .ok_or(format!("{pair:?} is not key=value"))?;
        let v = decode(v).ok_or(format!("{k}: bad percent-encoding"))?;
        let i = keys
            .iter()
            .position(|key| *key == k)
            .ok_or(format!("unknown parameter {k:?}"))?;
        if values[i].replace(v).is_some() {
            return Err(format!("{k} given twice"));
        }
    }
    let mut out: [String; N] = std::array::from_fn(|_| String::new());
    for (i, v) in values.into_iter().enumerate() {
        out[i] = v.ok_or(format!("{} is required", keys[i]))?;
    }
    Ok(out)
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes percent-encoding (`+` is a plus); `None` for bad escapes or non-UTF-8.
pub fn decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_round_trip_and_refuse_missing_unknown_and_repeated_keys() {
        let q = encode_pairs(&[("a", "x y&z"), ("b", "")]);
        assert_eq!(q, "a=x%20y%26z&b=");
        assert_eq!(
            parse_pairs(&q, ["a", "b"]).unwrap(),
            ["x y&z".to_string(), String::new()]
        );
        assert!(parse_pairs("a=1", ["a", "b"])
            .unwrap_err()
            .contains("b is required"));
        assert!(parse_pairs("a=1&b=2&c=3", ["a", "b"]).is_err());
        assert!(parse_pairs("a=1&a=1&b=2", ["a", "b"]).is_err());
        assert!(parse_pairs("a&b=2", ["a", "b"]).is_err());
    }
}
