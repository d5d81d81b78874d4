//! Reads an ESP the way systemd-boot does at boot: Type #1 entries (`loader/entries/*.conf`),
//! UKIs (`EFI/Linux/*.efi`), `default` from `loader/loader.conf`, and optionally the
//! `LoaderEntryOneShot`/`LoaderEntryDefault` EFI variables from efivarfs. Entries systemd-boot
//! would skip are skipped here too (a `.conf` whose kernel is missing or built for another
//! architecture, a UKI without a usable `.osrel`), so the menu is the one the firmware shows.
//!
//! Not read: an XBOOTLDR partition, `auto-*` entries, entries from `LoaderEntries` (none of
//! them can hold an A/B slot's entry).

use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::menu::{self, Defaults, MenuEntry};
use super::name::EntryName;
use super::uki::{self, OsRelease};
use crate::atomic_file::read_bounded;
use crate::error::BootError;

/// Type #1 entries and loader.conf are a few lines; refuse anything absurd.
pub const MAX_CONF_LEN: usize = 64 * 1024;
/// The vendor GUID of systemd-boot's variables.
const LOADER_GUID: &str = "4a67b082-0a4c-41cf-b6c7-440b29bb8c4f";

pub const TYPE1_DIR: &str = "loader/entries";
pub const UKI_DIR: &str = "EFI/Linux";

/// The menu, sorted as systemd-boot sorts it, with each entry's path.
#[derive(Debug, Clone)]
pub struct Menu {
    pub entries: Vec<(PathBuf, MenuEntry)>,
    pub defaults: Defaults,
}

impl Menu {
    /// The entry systemd-boot boots without a keypress.
    pub fn default_entry(&self) -> Option<&(PathBuf, MenuEntry)> {
        let sorted: Vec<MenuEntry> = self.entries.iter().map(|(_, e)| e.clone()).collect();
        menu::default_index(&sorted, &self.defaults).map(|i| &self.entries[i])
    }
}

/// An ESP mounted (or copied) at `root`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Esp {
    pub root: PathBuf,
    /// efivarfs (`/sys/firmware/efi/efivars`), or `None` to ignore EFI variables.
    pub efivars: Option<PathBuf>,
}

impl Esp {
    pub fn scan(&self) -> Result<Menu, BootError> {
        let mut entries = Vec::new();
        for (path, file_name) in list(&self.root.join(TYPE1_DIR), "conf")? {
            let text = read_text(&path)?;
            if let Some(e) = self.type1(&file_name, &text) {
                entries.push((path, e));
            }
        }
        for (path, file_name) in list(&self.root.join(UKI_DIR), "efi")? {
            if let Some(osrel) = read_osrel(&path)? {
                let Some(name) = EntryName::parse(&file_name) else {
                    continue;
                };
                entries.push((
                    path,
                    MenuEntry {
                        file_name,
                        name,
                        sort_key: osrel.sort_key,
                        version: Some(osrel.version),
                        machine_id: None,
                    },
                ));
            }
        }
        entries.sort_by(|a, b| a.1.file_name.cmp(&b.1.file_name));
        entries.sort_by(|a, b| menu::compare(&a.1, &b.1));
        Ok(Menu {
            entries,
            defaults: self.defaults()?,
        })
    }

    /// A Type #1 entry as `config_entry_add_type1` takes it, or `None` if systemd-boot skips it.
    fn type1(&self, file_name: &str, text: &str) -> Option<MenuEntry> {
        let name = EntryName::parse(file_name)?;
        let (mut sort_key, mut version, mut machine_id, mut loader) = (None, None, None, None);
        for (key, value) in key_values(text) {
            match key {
                "sort-key" => sort_key = Some(value.to_owned()),
                "version" => version = Some(value.to_owned()),
                "machine-id" => machine_id = Some(value.to_owned()),
                "linux" | "efi" => loader = Some(value.to_owned()),
                "architecture" if !value.eq_ignore_ascii_case(efi_arch()) => return None,
                _ => {}
            }
        }
        // systemd-boot opens the kernel (or EFI program) and drops the entry if it is missing.
        let loader = loader?;
        let rel = loader.trim_start_matches(['/', '\\']).replace('\\', "/");
        if !self.root.join(rel).is_file() {
            return None;
        }
        Some(MenuEntry {
            file_name: file_name.to_owned(),
            name,
            sort_key,
            version,
            machine_id,
        })
    }

    fn defaults(&self) -> Result<Defaults, BootError> {
        let conf = self.root.join("loader/loader.conf");
        let mut d = Defaults::default();
        if conf.exists() {
            for (key, value) in key_values(&read_text(&conf)?) {
                // systemd-boot ignores other `@` names ("unsupported special entry identifier").
                if key == "default" && (!value.starts_with('@') || is_saved(value)) {
                    d.config = Some(value.to_owned());
                }
            }
        }
        if let Some(vars) = &self.efivars {
            d.oneshot = read_efivar(vars, "LoaderEntryOneShot")?;
            d.efivar = read_efivar(vars, "LoaderEntryDefault")?;
        }
        for (what, p) in [
            ("LoaderEntryOneShot", &d.oneshot),
            ("LoaderEntryDefault", &d.efivar),
            ("loader.conf default", &d.config),
        ] {
            if p.as_deref().is_some_and(is_saved) {
                // "@saved" boots whatever booted last: no file name can express a primary.
                return Err(BootError::Unmodelled {
                    what: format!("{what} {}", p.as_deref().unwrap_or_default()),
                });
            }
        }
        Ok(d)
    }
}

fn is_saved(pattern: &str) -> bool {
    pattern.eq_ignore_ascii_case("@saved")
}

/// `(path, file name)` of the non-hidden, non-`auto-` files ending in `.ext` in `dir`; a
/// missing directory has none.
fn list(dir: &Path, ext: &str) -> Result<Vec<(PathBuf, String)>, BootError> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(BootError::io("list", dir, e)),
    };
    let mut out = Vec::new();
    for item in rd {
        let item = item.map_err(|e| BootError::io("list", dir, e))?;
        let Ok(name) = item.file_name().into_string() else {
            continue;
        };
        let is_file = item.file_type().map(|t| t.is_file()).unwrap_or(false);
        if !is_file || name.starts_with('.') || name.starts_with("auto-") {
            continue;
        }
        if name.rsplit_once('.').map(|(_, e)| e) == Some(ext) {
            out.push((item.path(), name));
        }
    }
    Ok(out)
}

fn read_text(path: &Path) -> Result<String, BootError> {
    let bytes = read_bounded(path, MAX_CONF_LEN)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// `key value` lines as systemd-boot splits them: first blank separates, `#` comments.
fn key_values(text: &str) -> impl Iterator<Item = (&str, &str)> {
    text.lines().filter_map(|l| {
        let l = l.trim();
        if l.is_empty() || l.starts_with('#') {
            return None;
        }
        let (k, v) = l.split_once([' ', '\t'])?;
        Some((k, v.trim()))
    })
}

/// The UKI's os-release, or `None` when systemd-boot would not list it.
fn read_osrel(path: &Path) -> Result<Option<OsRelease>, BootError> {
    let mut f = File::open(path).map_err(|e| BootError::io("open", path, e))?;
    let mut head = Vec::new();
    (&mut f)
        .take(uki::HEADER_LEN as u64)
        .read_to_end(&mut head)
        .map_err(|e| BootError::io("read", path, e))?;
    let Ok(Some(section)) = uki::osrel_section(&head) else {
        return Ok(None);
    };
    f.seek(SeekFrom::Start(section.offset))
        .map_err(|e| BootError::io("seek", path, e))?;
    let mut osrel = Vec::new();
    f.take(section.size as u64)
        .read_to_end(&mut osrel)
        .map_err(|e| BootError::io("read", path, e))?;
    if osrel.len() != section.size {
        return Ok(None);
    }
    Ok(OsRelease::parse(&osrel))
}

/// An efivarfs string variable: 4 attribute bytes, then NUL-terminated UTF-16LE.
fn read_efivar(dir: &Path, name: &str) -> Result<Option<String>, BootError> {
    let path = dir.join(format!("{name}-{LOADER_GUID}"));
    let bytes = match read_bounded(&path, 4096) {
        Ok(b) => b,
        Err(BootError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Ok(None)
        }
        Err(e) => return Err(e),
    };
    let units: Vec<u16> = bytes
        .get(4..)
        .unwrap_or_default()
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .take_while(|u| *u != 0)
        .collect();
    let value = String::from_utf16(&units).map_err(|_| BootError::NotUtf8 {
        name: path.display().to_string(),
    })?;
    Ok((!value.is_empty()).then_some(value))
}

/// systemd-boot's `EFI_MACHINE_TYPE_NAME` for the architecture this agent runs on.
fn efi_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "x64",
        "x86" => "ia32",
        "aarch64" => "aa64",
        "arm" => "arm",
        "riscv64" => "riscv64",
        "loongarch64" => "loongarch64",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn esp() -> (tempfile::TempDir, Esp) {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join(TYPE1_DIR)).unwrap();
        let esp = Esp {
            root: dir.path().to_owned(),
            efivars: None,
        };
        (dir, esp)
    }

    fn write(root: &Path, rel: &str, text: &str) {
        let p = root.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }

    #[test]
    fn skips_what_systemd_boot_skips() {
        let (_d, esp) = esp();
        let r = &esp.root;
        write(r, "vmlinuz", "k");
        write(r, "loader/entries/ok+3.conf", "title ok\nlinux /vmlinuz\n");
        write(
            r,
            "loader/entries/nokernel.conf",
            "title x\nlinux /missing\n",
        );
        write(r, "loader/entries/noloader.conf", "title x\n");
        write(
            r,
            "loader/entries/arch.conf",
            "linux /vmlinuz\narchitecture foo\n",
        );
        write(r, "loader/entries/auto-x.conf", "linux /vmlinuz\n");
        write(r, "loader/entries/.hidden.conf", "linux /vmlinuz\n");
        write(r, "EFI/Linux/garbage.efi", "not a PE file");
        let menu = esp.scan().unwrap();
        let names: Vec<_> = menu
            .entries
            .iter()
            .map(|(_, e)| e.file_name.as_str())
            .collect();
        assert_eq!(names, ["ok+3.conf"]);
        assert_eq!(menu.default_entry().unwrap().1.file_name, "ok+3.conf");
    }

    #[test]
    fn reads_defaults_from_loader_conf_and_efivars() {
        let (_d, mut esp) = esp();
        write(
            &esp.root,
            "loader/loader.conf",
            "timeout 0\ndefault a*\n# default x\ndefault b*\n",
        );
        let vars = tempfile::tempdir().unwrap();
        let mut var = vec![7, 0, 0, 0];
        for u in "Outpost*".encode_utf16().chain([0]) {
            var.extend(u.to_le_bytes());
        }
        fs::write(
            vars.path()
                .join(format!("LoaderEntryDefault-{LOADER_GUID}")),
            var,
        )
        .unwrap();
        esp.efivars = Some(vars.path().to_owned());
        let d = esp.defaults().unwrap();
        assert_eq!(d.config.as_deref(), Some("b*"));
        assert_eq!(d.efivar.as_deref(), Some("Outpost*"));
        assert_eq!(d.oneshot, None);

        write(&esp.root, "loader/loader.conf", "default @saved\n");
        assert!(matches!(
            esp.defaults(),
            Err(BootError::Unmodelled { what }) if what.contains("@saved")
        ));
    }
}
