//! `InstallBundle`'s `args a{sv}`, checked like RAUC checks them (`r_on_handle_install_bundle`:
//! known keys are taken out, anything left is "Unsupported key: K"), except that keys RAUC
//! knows but outpost-agent cannot honour are refused by name rather than ignored: a caller
//! that asks for TLS client certificates or HTTP headers must learn that they were not used.

use std::collections::HashMap;

use zbus::zvariant::{OwnedValue, Value};

use super::backend::InstallRequest;

/// Keys RAUC accepts for streaming bundles over HTTP(S); outpost-agent installs local files.
const STREAMING_KEYS: &[&str] = &[
    "tls-cert",
    "tls-key",
    "tls-ca",
    "tls-no-verify",
    "http-headers",
];

/// Longest key echoed back in an error: keys come from any bus peer.
const MAX_SHOWN: usize = 64;

fn shown(key: &str) -> String {
    key.chars().take(MAX_SHOWN).collect()
}

pub fn install_request(
    source: String,
    args: &HashMap<String, OwnedValue>,
) -> Result<InstallRequest, String> {
    if source.contains("://") {
        return Err(format!(
            "bundle {:?} is a URL: outpost-agent installs bundles from local paths only (no HTTP streaming)",
            source.chars().take(200).collect::<String>()
        ));
    }
    let mut req = InstallRequest {
        source,
        ..Default::default()
    };
    // Sorted, so the error names the same key every time.
    let mut keys: Vec<&String> = args.keys().collect();
    keys.sort();
    for key in keys {
        let value: &Value<'_> = &args[key];
        match key.as_str() {
            "ignore-compatible" => req.ignore_compatible = boolean(key, value)?,
            "ignore-version-limit" => req.ignore_version_limit = boolean(key, value)?,
            "require-manifest-hash" => match value {
                Value::Str(s) => req.require_manifest_hash = Some(s.as_str().to_owned()),
                other => return Err(wrong_type(key, "s", other)),
            },
            "transaction-id" => {
                return Err(
                    "Unsupported key: transaction-id (outpost-agent does not record install transactions)"
                        .to_owned(),
                )
            }
            k if STREAMING_KEYS.contains(&k) => {
                return Err(format!(
                    "Unsupported key: {k} (outpost-agent installs bundles from local paths only; HTTP streaming is not supported)"
                ))
            }
            other => return Err(format!("Unsupported key: {}", shown(other))),
        }
    }
    Ok(req)
}

fn boolean(key: &str, v: &Value<'_>) -> Result<bool, String> {
    match v {
        Value::Bool(b) => Ok(*b),
        other => Err(wrong_type(key, "b", other)),
    }
}

fn wrong_type(key: &str, want: &str, got: &Value<'_>) -> String {
    format!(
        "argument {key} must be of type '{want}', not '{}'",
        got.value_signature()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(pairs: &[(&str, Value<'static>)]) -> HashMap<String, OwnedValue> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.try_to_owned().unwrap()))
            .collect()
    }

    #[test]
    fn known_switches_are_taken() {
        let r = install_request(
            "/b.raucb".into(),
            &args(&[
                ("ignore-compatible", Value::Bool(true)),
                ("ignore-version-limit", Value::Bool(false)),
                ("require-manifest-hash", Value::from("ab12")),
            ]),
        )
        .unwrap();
        assert!(r.ignore_compatible && !r.ignore_version_limit);
        assert_eq!(r.require_manifest_hash.as_deref(), Some("ab12"));
    }

    #[test]
    fn unsupported_and_mistyped_keys_are_refused_by_name() {
        let e = install_request("/b".into(), &args(&[("tls-cert", Value::from("/c.pem"))]))
            .unwrap_err();
        assert!(e.starts_with("Unsupported key: tls-cert"), "{e}");
        let e = install_request("/b".into(), &args(&[("frobnicate", Value::U32(1))])).unwrap_err();
        assert_eq!(e, "Unsupported key: frobnicate");
        let e = install_request(
            "/b".into(),
            &args(&[("ignore-compatible", Value::from("yes"))]),
        )
        .unwrap_err();
        assert!(e.contains("ignore-compatible must be of type 'b'"), "{e}");
        let e = install_request("https://x/b.raucb".into(), &HashMap::new()).unwrap_err();
        assert!(e.contains("local paths only"), "{e}");
    }
}
