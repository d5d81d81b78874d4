//! What systemd-boot reads from a UKI to list and order it: the `.osrel` PE section (an
//! os-release file). Pure: [`osrel_section`] finds the section in the file's header bytes, the
//! caller reads it, [`OsRelease::parse`] picks the fields.
//!
//! A UKI without an `.osrel` section, or whose os-release gives no name or no version, is not
//! listed by systemd-boot at all (`bootspec_pick_name_version_sort_key`), so it never boots.

/// Header bytes a caller should read to find the section table (real UKIs need < 1 KiB).
pub const HEADER_LEN: usize = 8192;
/// Largest `.osrel` we read; os-release files are a few hundred bytes.
pub const MAX_OSREL_LEN: usize = 64 * 1024;
/// systemd refuses PE files with more sections than this.
const MAX_SECTIONS: usize = 96;

/// Where the `.osrel` section's bytes are in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Section {
    pub offset: u64,
    pub size: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeError {
    #[error("not a PE file (no MZ/PE signature)")]
    NotPe,
    #[error("PE header lies outside the first {HEADER_LEN} bytes")]
    HeaderOutOfRange,
    #[error("PE file has {0} sections (more than {MAX_SECTIONS})")]
    TooManySections(usize),
    #[error(".osrel section is {0} bytes (more than {MAX_OSREL_LEN})")]
    OsrelTooLarge(usize),
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        b.get(at..at.checked_add(2)?)?.try_into().ok()?,
    ))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        b.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

/// Finds `.osrel` from the first bytes of a PE file (up to [`HEADER_LEN`]). `Ok(None)`: a PE
/// file without (or with an empty) `.osrel`.
pub fn osrel_section(head: &[u8]) -> Result<Option<Section>, PeError> {
    if head.get(..2) != Some(b"MZ") {
        return Err(PeError::NotPe);
    }
    let pe = u32_at(head, 0x3c).ok_or(PeError::NotPe)? as usize;
    match head.get(pe..pe.saturating_add(4)) {
        Some(b"PE\0\0") => {}
        Some(_) => return Err(PeError::NotPe),
        None => return Err(PeError::HeaderOutOfRange),
    }
    let coff = pe + 4;
    let count = u16_at(head, coff + 2).ok_or(PeError::HeaderOutOfRange)? as usize;
    let optional = u16_at(head, coff + 16).ok_or(PeError::HeaderOutOfRange)? as usize;
    if count > MAX_SECTIONS {
        return Err(PeError::TooManySections(count));
    }
    let table = coff + 20 + optional;
    for i in 0..count {
        let at = table + i * 40;
        let entry = head.get(at..at + 40).ok_or(PeError::HeaderOutOfRange)?;
        if &entry[..8] != b".osrel\0\0" {
            continue;
        }
        // systemd-boot reads VirtualSize bytes at PointerToRawData.
        let size = u32_at(entry, 8).unwrap_or(0) as usize;
        let offset = u64::from(u32_at(entry, 20).unwrap_or(0));
        if size == 0 {
            return Ok(None);
        }
        if size > MAX_OSREL_LEN {
            return Err(PeError::OsrelTooLarge(size));
        }
        return Ok(Some(Section { offset, size }));
    }
    Ok(None)
}

/// The os-release fields systemd-boot uses, already picked as it picks them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OsRelease {
    /// `PRETTY_NAME`, else `IMAGE_ID`, `NAME`, `ID`.
    pub name: String,
    /// `IMAGE_VERSION`, else `VERSION`, `VERSION_ID`, `BUILD_ID`.
    pub version: String,
    /// `IMAGE_ID`, else `ID`.
    pub sort_key: Option<String>,
}

impl OsRelease {
    /// `None` when systemd-boot would skip the UKI (no name or no version).
    pub fn parse(bytes: &[u8]) -> Option<Self> {
        let text = String::from_utf8_lossy(bytes);
        let mut get = std::collections::HashMap::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((k, v)) = line.split_once('=') else {
                continue;
            };
            // A later assignment wins, as in systemd-boot's loop.
            get.insert(k.trim().to_owned(), unquote(v.trim()).to_owned());
        }
        let pick = |keys: &[&str]| {
            keys.iter()
                .find_map(|k| get.get(*k).filter(|v| !v.is_empty()).cloned())
        };
        Some(Self {
            name: pick(&["PRETTY_NAME", "IMAGE_ID", "NAME", "ID"])?,
            version: pick(&["IMAGE_VERSION", "VERSION", "VERSION_ID", "BUILD_ID"])?,
            sort_key: pick(&["IMAGE_ID", "ID"]),
        })
    }
}

fn unquote(v: &str) -> &str {
    for q in ['"', '\''] {
        if let Some(inner) = v.strip_prefix(q).and_then(|s| s.strip_suffix(q)) {
            return inner;
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    /// DOS stub, PE signature, COFF header with one section named `.osrel`.
    fn pe(osrel_size: u32, offset: u32) -> Vec<u8> {
        let mut b = vec![0u8; 0x200];
        b[..2].copy_from_slice(b"MZ");
        b[0x3c..0x40].copy_from_slice(&0x40u32.to_le_bytes());
        b[0x40..0x44].copy_from_slice(b"PE\0\0");
        b[0x46..0x48].copy_from_slice(&1u16.to_le_bytes());
        let table = 0x44 + 20;
        b[table..table + 8].copy_from_slice(b".osrel\0\0");
        b[table + 8..table + 12].copy_from_slice(&osrel_size.to_le_bytes());
        b[table + 20..table + 24].copy_from_slice(&offset.to_le_bytes());
        b
    }

    #[test]
    fn finds_osrel_and_refuses_garbage() {
        assert_eq!(
            osrel_section(&pe(12, 0x200)).unwrap(),
            Some(Section {
                offset: 0x200,
                size: 12
            })
        );
        assert_eq!(osrel_section(&pe(0, 0x200)).unwrap(), None);
        assert_eq!(
            osrel_section(&pe(1 << 20, 0x200)),
            Err(PeError::OsrelTooLarge(1 << 20))
        );
        assert_eq!(osrel_section(b"ELF"), Err(PeError::NotPe));
        let mut far = pe(12, 0x200);
        far[0x3c..0x40].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(osrel_section(&far), Err(PeError::HeaderOutOfRange));
        let mut many = pe(12, 0x200);
        many[0x46..0x48].copy_from_slice(&500u16.to_le_bytes());
        assert_eq!(osrel_section(&many), Err(PeError::TooManySections(500)));
        let mut cut = pe(12, 0x200);
        // 20 sections, the first not `.osrel`: the table runs past the header bytes.
        cut[0x46..0x48].copy_from_slice(&20u16.to_le_bytes());
        cut[0x58..0x60].copy_from_slice(b".text\0\0\0");
        assert_eq!(osrel_section(&cut), Err(PeError::HeaderOutOfRange));
    }

    #[test]
    fn picks_fields_as_systemd_boot() {
        let o = OsRelease::parse(b"ID=outpost\nVERSION_ID=\"2.0\"\nNAME='Outpost'\n").unwrap();
        assert_eq!(o.name, "Outpost");
        assert_eq!(o.version, "2.0");
        assert_eq!(o.sort_key.as_deref(), Some("outpost"));
        let o = OsRelease::parse(b"IMAGE_ID=img\nIMAGE_VERSION=7\nID=x\nVERSION_ID=1\n").unwrap();
        assert_eq!(
            (o.version.as_str(), o.sort_key.as_deref()),
            ("7", Some("img"))
        );
        assert_eq!(OsRelease::parse(b"ID=outpost\n"), None, "no version");
        assert_eq!(OsRelease::parse(b"VERSION_ID=1\n"), None, "no name");
    }
}
