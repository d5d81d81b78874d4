//! A directory ESP for systemd-boot tests, and the real `bootctl` reading it.
//!
//! * [`uki`]: the smallest PE file systemd-boot and bootctl list as a Type #2 entry: a PE32+
//!   header and one `.osrel` section (no kernel: nothing here boots it).
//! * [`Esp`]: a temp ESP with `EFI/Linux/`, `loader/entries/` and writers for both entry types.
//! * [`bootctl_list`]: `bootctl --esp-path=ESP --no-variables list`, parsed.
//!
//! bootctl refuses a directory that is not a mount point on FAT. A private mount namespace
//! (`unshare -m`) with a bind mount of the directory onto itself makes it a mount point
//! without touching the host's mounts; `SYSTEMD_RELAX_ESP_CHECKS=1` lifts the FAT check.
//! Both need root (tests here run as root).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cmd::{have, run_stdout};

/// A PE32+ image (x86-64) whose only section is `.osrel` holding `osrel`.
pub fn uki(osrel: &str) -> Vec<u8> {
    const PE: usize = 0x40;
    const OPTIONAL: usize = 240; // PE32+ optional header with 16 data directories
    const RAW: usize = 0x200; // section data, file-aligned
    let table = PE + 4 + 20 + OPTIONAL;
    let mut b = vec![0u8; RAW];
    b[..2].copy_from_slice(b"MZ");
    b[0x3c..0x40].copy_from_slice(&(PE as u32).to_le_bytes());
    b[PE..PE + 4].copy_from_slice(b"PE\0\0");
    let coff = PE + 4;
    b[coff..coff + 2].copy_from_slice(&0x8664u16.to_le_bytes()); // Machine: x86-64
    b[coff + 2..coff + 4].copy_from_slice(&1u16.to_le_bytes()); // NumberOfSections
    b[coff + 16..coff + 18].copy_from_slice(&(OPTIONAL as u16).to_le_bytes());
    b[coff + 18..coff + 20].copy_from_slice(&0x2022u16.to_le_bytes()); // executable, DLL, large-address
    let opt = coff + 20;
    b[opt..opt + 2].copy_from_slice(&0x20bu16.to_le_bytes()); // PE32+
    b[opt + 32..opt + 36].copy_from_slice(&0x1000u32.to_le_bytes()); // SectionAlignment
    b[opt + 36..opt + 40].copy_from_slice(&(RAW as u32).to_le_bytes()); // FileAlignment
    b[opt + 68..opt + 70].copy_from_slice(&10u16.to_le_bytes()); // Subsystem: EFI application
    b[opt + 108..opt + 112].copy_from_slice(&16u32.to_le_bytes()); // NumberOfRvaAndSizes
    let data = osrel.as_bytes();
    let raw_size = data.len().div_ceil(RAW) * RAW;
    let s = table;
    b[s..s + 8].copy_from_slice(b".osrel\0\0");
    b[s + 8..s + 12].copy_from_slice(&(data.len() as u32).to_le_bytes()); // VirtualSize
    b[s + 12..s + 16].copy_from_slice(&0x1000u32.to_le_bytes()); // VirtualAddress
    b[s + 16..s + 20].copy_from_slice(&(raw_size as u32).to_le_bytes()); // SizeOfRawData
    b[s + 20..s + 24].copy_from_slice(&(RAW as u32).to_le_bytes()); // PointerToRawData
    b[s + 36..s + 40].copy_from_slice(&0x4000_0040u32.to_le_bytes()); // initialized, readable
    let image = 0x1000 + raw_size.div_ceil(0x1000) * 0x1000;
    b[opt + 56..opt + 60].copy_from_slice(&(image as u32).to_le_bytes()); // SizeOfImage
    b[opt + 60..opt + 64].copy_from_slice(&(RAW as u32).to_le_bytes()); // SizeOfHeaders
    b.extend_from_slice(data);
    b.resize(RAW + raw_size, 0);
    b
}

/// os-release text for a UKI of `version`.
pub fn osrel(version: &str) -> String {
    format!("ID=outpost\nNAME=Outpost\nVERSION_ID={version}\nPRETTY_NAME=\"Outpost {version}\"\n")
}

/// A temporary ESP directory.
pub struct Esp {
    _dir: tempfile::TempDir,
    pub root: PathBuf,
}

impl Default for Esp {
    fn default() -> Self {
        Self::new()
    }
}

impl Esp {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp ESP");
        let root = dir.path().join("esp");
        for sub in ["EFI/Linux", "loader/entries"] {
            std::fs::create_dir_all(root.join(sub)).expect("ESP dirs");
        }
        Self { _dir: dir, root }
    }

    /// `EFI/Linux/<file_name>`, a UKI with os-release `VERSION_ID=<version>`.
    pub fn add_uki(&self, file_name: &str, version: &str) -> PathBuf {
        let p = self.root.join("EFI/Linux").join(file_name);
        std::fs::write(&p, uki(&osrel(version))).expect("write UKI");
        p
    }

    /// `loader/entries/<file_name>` booting `/vmlinuz-<file_name>` (created too).
    pub fn add_type1(&self, file_name: &str, title: &str) -> PathBuf {
        let kernel = format!("vmlinuz-{title}");
        std::fs::write(self.root.join(&kernel), b"kernel").expect("write kernel");
        let p = self.root.join("loader/entries").join(file_name);
        std::fs::write(&p, format!("title {title}\nlinux /{kernel}\n")).expect("write entry");
        p
    }

    /// The names of the files in `EFI/Linux` or `loader/entries`, sorted.
    pub fn files(&self, sub: &str) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.root.join(sub))
            .expect("list ESP")
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    }
}

/// One entry as `bootctl list` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootctlEntry {
    /// The file name of `source:`.
    pub file_name: String,
    /// `id:` (bootctl drops the counter).
    pub id: String,
    pub is_default: bool,
    /// From `tries: N left[; M done]`; `None` without a counter.
    pub tries_left: Option<u32>,
    pub tries_done: Option<u32>,
}

/// Installs `systemd-boot` (bootctl) if it is missing; fails loudly rather than skipping.
pub fn ensure_bootctl() {
    if have("bootctl") {
        return;
    }
    let _ = Command::new("apt-get")
        .args(["install", "-y", "--no-install-recommends", "systemd-boot"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .output();
    assert!(
        have("bootctl"),
        "bootctl is missing and could not be installed (apt-get install systemd-boot)"
    );
}

/// `bootctl list` of the ESP at `esp`, in bootctl's (= the menu's) order.
pub fn bootctl_list(esp: &Path) -> Vec<BootctlEntry> {
    ensure_bootctl();
    let out = run_stdout(
        Command::new("unshare")
            .args([
                "-m",
                "sh",
                "-c",
                r#"mount --bind "$1" "$1" && exec bootctl --esp-path="$1" --no-variables --no-pager list"#,
                "sh",
            ])
            .arg(esp)
            .env("SYSTEMD_RELAX_ESP_CHECKS", "1"),
    );
    parse_list(&out)
}

/// Parses `bootctl list`'s text: blocks of `key: value` lines separated by blank lines.
pub fn parse_list(text: &str) -> Vec<BootctlEntry> {
    let mut out = Vec::new();
    for block in text.split("\n\n") {
        let field = |k: &str| {
            block.lines().find_map(|l| {
                let (key, v) = l.split_once(':')?;
                (key.trim() == k).then(|| v.trim().to_owned())
            })
        };
        let Some(source) = field("source") else {
            continue;
        };
        let tries = field("tries");
        let num = |s: &str, word: &str| -> Option<u32> {
            s.split(';')
                .find_map(|p| p.trim().strip_suffix(word)?.trim().parse().ok())
        };
        out.push(BootctlEntry {
            file_name: source.rsplit('/').next().unwrap_or_default().to_owned(),
            id: field("id").unwrap_or_default(),
            is_default: field("title").is_some_and(|t| t.contains("(default)")),
            tries_left: tries.as_deref().and_then(|t| num(t, "left")),
            tries_done: tries.as_deref().and_then(|t| num(t, "done")),
        });
    }
    out
}

/// The file name of the entry bootctl marks `(default)`.
pub fn bootctl_default(esp: &Path) -> Option<String> {
    bootctl_list(esp)
        .into_iter()
        .find(|e| e.is_default)
        .map(|e| e.file_name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bootctl_252_list_output() {
        let text = "         type: Boot Loader Specification Type #2 (.efi)\n        title: Outpost 2.0 (default) (not reported/new)\n           id: outpost_2-B.efi\n       source: /tmp/esp/EFI/Linux/outpost_2-B+2-1.efi\n        tries: 2 left; 1 done\n\n         type: Boot Loader Specification Type #1 (.conf)\n        title: A (not reported/new)\n           id: outpost_1-A.conf\n       source: /tmp/esp/loader/entries/outpost_1-A.conf\n";
        let v = parse_list(text);
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].file_name, "outpost_2-B+2-1.efi");
        assert_eq!(v[0].id, "outpost_2-B.efi");
        assert!(v[0].is_default && !v[1].is_default);
        assert_eq!((v[0].tries_left, v[0].tries_done), (Some(2), Some(1)));
        assert_eq!((v[1].tries_left, v[1].tries_done), (None, None));
    }
}
