//! Key-file value syntax: GLib's string escapes (`\s \n \t \r \\`, plus `\;` inside
//! lists), string lists, booleans and unsigned integers.

use super::KeyFileError;

/// `g_key_file_get_string`: unescapes `\s \n \t \r \\`.
pub fn unescape_string(raw: &str) -> Result<String, KeyFileError> {
    unescape(raw, false)
}

/// `g_key_file_get_string_list`: splits on unescaped `;`, a trailing `;` ends the list.
pub fn parse_string_list(raw: &str) -> Result<Vec<String>, KeyFileError> {
    let mut items = Vec::new();
    let mut current = String::new();
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                // Keep the escape for `unescape`, except `\;` which is list syntax.
                match chars.next() {
                    Some(';') => current.push(';'),
                    Some(n) => {
                        current.push('\\');
                        current.push(n);
                    }
                    None => return Err(KeyFileError::BadEscape(raw.to_string())),
                }
            }
            ';' => items.push(unescape(&std::mem::take(&mut current), true)?),
            c => current.push(c),
        }
    }
    if !current.is_empty() {
        items.push(unescape(&current, true)?);
    }
    Ok(items)
}

fn unescape(raw: &str, in_list: bool) -> Result<String, KeyFileError> {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('s') => out.push(' '),
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('\\') => out.push('\\'),
            Some(';') if in_list => out.push(';'),
            _ => return Err(KeyFileError::BadEscape(raw.to_string())),
        }
    }
    Ok(out)
}

/// `g_key_file_set_string` escaping: a leading space becomes `\s`; newline, tab, CR and
/// backslash are escaped everywhere.
pub fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for (i, c) in value.chars().enumerate() {
        match c {
            ' ' if i == 0 => out.push_str("\\s"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out
}

/// `g_key_file_get_boolean`: `true`/`false`, also `1`/`0` (GLib accepts both).
pub fn parse_bool(raw: &str) -> Option<bool> {
    match raw.trim_end() {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }
}

/// `g_key_file_get_uint64`: decimal digits only.
pub fn parse_u64(raw: &str) -> Option<u64> {
    let v = raw.trim_end();
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_glib() {
        assert_eq!(escape(" a b\n\\"), "\\sa b\\n\\\\");
        assert_eq!(unescape_string(&escape(" a\tb\r")).unwrap(), " a\tb\r");
        assert!(unescape_string("a\\q").is_err());
        assert!(unescape_string("a\\;").is_err());
    }

    #[test]
    fn lists_split_on_unescaped_semicolons() {
        assert_eq!(parse_string_list("x;y\\;z;").unwrap(), vec!["x", "y;z"]);
        assert_eq!(parse_string_list("a;b").unwrap(), vec!["a", "b"]);
        assert!(parse_string_list("a\\").is_err());
    }

    #[test]
    fn booleans_and_integers_like_glib() {
        assert_eq!(parse_bool("true"), Some(true));
        assert_eq!(parse_bool("0 "), Some(false));
        assert_eq!(parse_bool("yes"), None);
        assert_eq!(parse_u64("42"), Some(42));
        assert_eq!(parse_u64("-1"), None);
        assert_eq!(parse_u64(""), None);
    }
}
