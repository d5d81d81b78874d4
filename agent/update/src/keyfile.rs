//! The subset of the GLib key-file format that RAUC's `system.conf` and `central.raucs` use:
//! a reader and a writer that emits what `g_key_file_to_data` emits.
//!
//! outpost-bundle has its own (private) reader for manifests; this one also writes, and is
//! kept separate so the bundle crate's strictness rules stay its own.
//!
//! Accepted: `#` comments, blank lines, `[group]` headers, `key=value` lines. Stricter than
//! GLib on purpose: a duplicated group or key is an error (GLib merges or overwrites silently,
//! which would make two readers of one file disagree).

/// One `[group]`, keys in file order, values still escaped (raw).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub name: String,
    pub entries: Vec<(String, String)>,
}

/// A parsed key file: groups in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyFile {
    pub groups: Vec<Group>,
}

/// Why a key file is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyFileError {
    #[error("not valid UTF-8")]
    NotUtf8,
    #[error("line {0}: key outside of any group")]
    KeyOutsideGroup(usize),
    #[error("line {0}: malformed line")]
    Malformed(usize),
    #[error("line {0}: invalid group or key name")]
    BadName(usize),
    #[error("duplicate group [{0}]")]
    DuplicateGroup(String),
    #[error("duplicate key '{key}' in group [{group}]")]
    DuplicateKey { group: String, key: String },
    #[error("invalid escape sequence in value '{0}'")]
    BadEscape(String),
}

impl KeyFile {
    pub fn parse(data: &[u8]) -> Result<Self, KeyFileError> {
        let text = std::str::from_utf8(data).map_err(|_| KeyFileError::NotUtf8)?;
        let mut kf = KeyFile::default();
        for (idx, raw) in text.split('\n').enumerate() {
            let line_no = idx + 1;
            let line = raw.strip_suffix('\r').unwrap_or(raw).trim_start();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some(rest) = line.strip_prefix('[') {
                let name = rest
                    .trim_end()
                    .strip_suffix(']')
                    .ok_or(KeyFileError::Malformed(line_no))?;
                if !valid_name(name) {
                    return Err(KeyFileError::BadName(line_no));
                }
                if kf.group(name).is_some() {
                    return Err(KeyFileError::DuplicateGroup(name.to_string()));
                }
                kf.groups.push(Group {
                    name: name.to_string(),
                    entries: Vec::new(),
                });
                continue;
            }
            let (key, value) = line
                .split_once('=')
                .ok_or(KeyFileError::Malformed(line_no))?;
            // GLib trims blanks around the key and before the value.
            let key = key.trim_end();
            if !valid_name(key) || key.contains('=') {
                return Err(KeyFileError::BadName(line_no));
            }
            let group = kf
                .groups
                .last_mut()
                .ok_or(KeyFileError::KeyOutsideGroup(line_no))?;
            if group.raw(key).is_some() {
                return Err(KeyFileError::DuplicateKey {
                    group: group.name.clone(),
                    key: key.to_string(),
                });
            }
            group
                .entries
                .push((key.to_string(), value.trim_start().to_string()));
        }
        Ok(kf)
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
    /// blank line, no trailing blank line.
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
    /// The raw (escaped) value of `key`.
    pub fn raw(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// `g_key_file_get_string`.
    pub fn string(&self, key: &str) -> Result<Option<String>, KeyFileError> {
        self.raw(key).map(unescape).transpose()
    }

    /// `g_key_file_set_string`: replaces in place, or appends.
    pub fn set_string(&mut self, key: &str, value: &str) {
        self.set_raw(key, escape(value));
    }

    pub fn set_raw(&mut self, key: &str, raw: String) {
        match self.entries.iter_mut().find(|(k, _)| k == key) {
            Some(entry) => entry.1 = raw,
            None => self.entries.push((key.to_string(), raw)),
        }
    }
}

/// `g_key_file_get_string` unescaping: `\s \n \t \r \\`.
pub fn unescape(raw: &str) -> Result<String, KeyFileError> {
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

fn valid_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(|c| c == '[' || c == ']' || c.is_control())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_what_glib_writes() {
        let text = "[slot.rootfs.1]\nbundle.compatible=Test\nsize=3\n\n[slot.appfs.1]\nstatus=ok\n";
        let kf = KeyFile::parse(text.as_bytes()).unwrap();
        assert_eq!(kf.serialize(), text);
    }

    #[test]
    fn escapes_like_glib() {
        assert_eq!(escape(" a b\n\\"), "\\sa b\\n\\\\");
        assert_eq!(unescape(&escape(" a\tb\r")).unwrap(), " a\tb\r");
        assert!(unescape("a\\q").is_err());
    }

    #[test]
    fn rejects_ambiguous_input() {
        assert_eq!(
            KeyFile::parse(b"k=v"),
            Err(KeyFileError::KeyOutsideGroup(1))
        );
        assert!(KeyFile::parse(b"[a]\n[a]\n").is_err());
        assert!(KeyFile::parse(b"[a]\nk=1\nk=2\n").is_err());
        assert!(KeyFile::parse(b"[a]\nnovalue\n").is_err());
        assert!(KeyFile::parse(&[b'[', 0xff, b']']).is_err());
    }

    #[test]
    fn set_replaces_in_place_and_appends_new_keys() {
        let mut kf = KeyFile::parse(b"[g]\na=1\nb=2\n").unwrap();
        let g = kf.group_mut("g");
        g.set_string("a", "x");
        g.set_string("c", "3");
        assert_eq!(kf.serialize(), "[g]\na=x\nb=2\nc=3\n");
    }
}
