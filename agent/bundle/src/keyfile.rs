//! A strict subset of the GLib key-file format, as RAUC reads `manifest.raucm`.
//!
//! Accepted: `# comment` and blank lines, `[group]` headers, `key=value` lines
//! inside a group, GLib escapes (`\s \n \t \r \\`, plus `\;` inside lists).
//! Stricter than GLib on purpose: a duplicated group or key is an error
//! (GLib silently merges/overwrites, which would let two readers of the same
//! signed manifest disagree).

/// One `[group]` with its keys in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub name: String,
    pub entries: Vec<(String, String)>,
}

/// A parsed key file: groups in file order, values still raw (unescaped on access).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyFile {
    pub groups: Vec<Group>,
}

/// Why a key file (or one of its values) is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyFileError {
    #[error("key file is not valid UTF-8")]
    NotUtf8,
    #[error("line {line}: key/value pair outside of any group")]
    KeyOutsideGroup { line: usize },
    #[error("line {line}: malformed line")]
    Malformed { line: usize },
    #[error("line {line}: invalid group name")]
    BadGroupName { line: usize },
    #[error("line {line}: invalid key name")]
    BadKeyName { line: usize },
    #[error("duplicate group [{0}]")]
    DuplicateGroup(String),
    #[error("duplicate key '{key}' in group [{group}]")]
    DuplicateKey { group: String, key: String },
    #[error("invalid escape sequence in value '{0}'")]
    BadEscape(String),
}

impl KeyFile {
    /// Parses the whole buffer; no trailing state is left unchecked.
    pub fn parse(data: &[u8]) -> Result<Self, KeyFileError> {
        let text = std::str::from_utf8(data).map_err(|_| KeyFileError::NotUtf8)?;
        let mut groups: Vec<Group> = Vec::new();
        for (idx, raw) in text.split('\n').enumerate() {
            let line_no = idx + 1;
            let line = raw.strip_suffix('\r').unwrap_or(raw);
            let trimmed = line.trim_start();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            if let Some(rest) = trimmed.strip_prefix('[') {
                let name = rest
                    .trim_end()
                    .strip_suffix(']')
                    .ok_or(KeyFileError::Malformed { line: line_no })?;
                if !valid_group_name(name) {
                    return Err(KeyFileError::BadGroupName { line: line_no });
                }
                if groups.iter().any(|g| g.name == name) {
                    return Err(KeyFileError::DuplicateGroup(name.to_string()));
                }
                groups.push(Group {
                    name: name.to_string(),
                    entries: Vec::new(),
                });
                continue;
            }
            let (key, value) = trimmed
                .split_once('=')
                .ok_or(KeyFileError::Malformed { line: line_no })?;
            // GLib trims whitespace around the key and before the value.
            let key = key.trim_end();
            let value = value.trim_start();
            if !valid_key_name(key) {
                return Err(KeyFileError::BadKeyName { line: line_no });
            }
            let group = groups
                .last_mut()
                .ok_or(KeyFileError::KeyOutsideGroup { line: line_no })?;
            if group.entries.iter().any(|(k, _)| k == key) {
                return Err(KeyFileError::DuplicateKey {
                    group: group.name.clone(),
                    key: key.to_string(),
                });
            }
            group.entries.push((key.to_string(), value.to_string()));
        }
        Ok(KeyFile { groups })
    }
}

impl Group {
    /// The raw value of `key`, if present.
    pub fn raw(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Keys of this group not in `known` (RAUC's `check_remaining_keys`).
    pub fn unknown_key<'a>(&'a self, known: &[&str]) -> Option<&'a str> {
        self.entries
            .iter()
            .map(|(k, _)| k.as_str())
            .find(|k| !known.contains(k))
    }
}

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

fn valid_group_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(|c| c == '[' || c == ']' || c.is_control())
}

fn valid_key_name(key: &str) -> bool {
    !key.is_empty()
        && !key
            .chars()
            .any(|c| c == '[' || c == ']' || c == '=' || c.is_control())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_groups_keys_and_escapes() {
        let kf = KeyFile::parse(b"# c\n[a]\nk = \\sv\\tx \n\n[b.c]\nl=x;y\\;z;\n").unwrap();
        assert_eq!(kf.groups.len(), 2);
        let a = &kf.groups[0];
        assert_eq!(unescape_string(a.raw("k").unwrap()).unwrap(), " v\tx ");
        let l = parse_string_list(kf.groups[1].raw("l").unwrap()).unwrap();
        assert_eq!(l, vec!["x".to_string(), "y;z".to_string()]);
    }

    #[test]
    fn rejects_ambiguous_or_malformed_input() {
        assert_eq!(
            KeyFile::parse(b"k=v\n"),
            Err(KeyFileError::KeyOutsideGroup { line: 1 })
        );
        assert!(matches!(
            KeyFile::parse(b"[a]\n[a]\n"),
            Err(KeyFileError::DuplicateGroup(_))
        ));
        assert!(matches!(
            KeyFile::parse(b"[a]\nk=1\nk=2\n"),
            Err(KeyFileError::DuplicateKey { .. })
        ));
        assert!(matches!(
            KeyFile::parse(b"[a]\nnovalue\n"),
            Err(KeyFileError::Malformed { line: 2 })
        ));
        assert!(matches!(
            KeyFile::parse(b"[a\n"),
            Err(KeyFileError::Malformed { line: 1 })
        ));
        assert_eq!(
            KeyFile::parse(&[b'[', 0xff, b']']),
            Err(KeyFileError::NotUtf8)
        );
        assert!(unescape_string("a\\qb").is_err());
    }
}
