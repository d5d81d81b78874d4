//! A strict subset of the GLib key-file format, as RAUC reads `manifest.raucm`, `system.conf`
//! and `central.raucs`, and as `g_key_file_to_data` writes `central.raucs` (pure, no I/O).
//! Value syntax (escapes, lists, booleans, integers) is in the `value` submodule, re-exported
//! here.
//!
//! Accepted: `# comment` and blank lines, `[group]` headers, `key=value` lines
//! inside a group. Stricter than GLib on purpose: a duplicated group or key is an error
//! (GLib silently merges/overwrites, which would let two readers of the same
//! file, e.g. a signed manifest, disagree).

mod value;

pub use value::{escape, parse_bool, parse_string_list, parse_u64, unescape_string};

/// One `[group]` with its keys in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub name: String,
    pub entries: Vec<(String, String)>,
}

/// A parsed key file: groups in file order, values still raw (unescaped on access).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
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

    pub fn group(&self, name: &str) -> Option<&Group> {
        self.groups.iter().find(|g| g.name == name)
    }

    /// The group `name`, appended at the end if missing (GLib's `g_key_file_set_*` order).
    pub fn group_mut(&mut self, name: &str) -> &mut Group {
        let idx = match self.groups.iter().position(|g| g.name == name) {
            Some(i) => i,
            None => {
                self.groups.push(Group {
                    name: name.to_string(),
                    entries: Vec::new(),
                });
                self.groups.len() - 1
            }
        };
        &mut self.groups[idx]
    }

    /// `g_key_file_to_data` for a file built by `g_key_file_set_*`: groups separated by one
    /// blank line, no trailing blank line. Values are written raw (already escaped).
    pub fn serialize(&self) -> String {
        let mut out = String::new();
        for (i, g) in self.groups.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            out.push('[');
            out.push_str(&g.name);
            out.push_str("]\n");
            for (k, v) in &g.entries {
                out.push_str(k);
                out.push('=');
                out.push_str(v);
                out.push('\n');
            }
        }
        out
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

    /// `g_key_file_get_string`.
    pub fn string(&self, key: &str) -> Result<Option<String>, KeyFileError> {
        self.raw(key).map(unescape_string).transpose()
    }

    /// `g_key_file_set_string`: replaces in place, or appends.
    pub fn set_string(&mut self, key: &str, value: &str) {
        self.set_raw(key, escape(value));
    }

    /// Sets the raw (already escaped) value: replaces in place, or appends.
    pub fn set_raw(&mut self, key: &str, raw: String) {
        match self.entries.iter_mut().find(|(k, _)| k == key) {
            Some(entry) => entry.1 = raw,
            None => self.entries.push((key.to_string(), raw)),
        }
    }

    /// Keys of this group not in `known` (RAUC's `check_remaining_keys`).
    pub fn unknown_key<'a>(&'a self, known: &[&str]) -> Option<&'a str> {
        self.entries
            .iter()
            .map(|(k, _)| k.as_str())
            .find(|k| !known.contains(k))
    }
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
        assert_eq!(a.string("k").unwrap().unwrap(), " v\tx ");
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
    }

    #[test]
    fn round_trips_what_glib_writes() {
        let text = "[slot.rootfs.1]\nbundle.compatible=Test\nsize=3\n\n[slot.appfs.1]\nstatus=ok\n";
        let kf = KeyFile::parse(text.as_bytes()).unwrap();
        assert_eq!(kf.serialize(), text);
    }

    #[test]
    fn set_replaces_in_place_and_appends_new_keys() {
        let mut kf = KeyFile::parse(b"[g]\na=1\nb=2\n").unwrap();
        let g = kf.group_mut("g");
        g.set_string("a", "x");
        g.set_string("c", "3");
        assert_eq!(kf.serialize(), "[g]\na=x\nb=2\nc=3\n");
        assert_eq!(kf.group_mut("h").raw("a"), None);
        assert_eq!(kf.serialize(), "[g]\na=x\nb=2\nc=3\n\n[h]\n");
    }
}
