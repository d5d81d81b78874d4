//! Entry points for fuzz targets (kept out of the public API). Each parses arbitrary bytes and,
//! when the parse succeeds, checks the codec's own invariant: serializing what was parsed gives
//! bytes that parse to the same value. A panic here is a codec bug, which is what a fuzzer is for.

use std::cmp::Ordering;

use crate::grubenv::GrubEnv;
use crate::systemd_boot::{glob, name::EntryName, uki, verscmp};
use crate::ubootenv::{Layout, UbootEnv};

/// grubenv: parse, and for accepted blocks `serialize(parse(b)) == b` exactly.
pub fn grubenv_parse(data: &[u8]) {
    if let Ok(env) = GrubEnv::parse(data) {
        let again = env.serialize();
        assert_eq!(
            again.as_deref().ok(),
            Some(data),
            "grubenv round trip changed bytes"
        );
    }
}

/// U-Boot env: first byte picks the layout, the rest is the image.
pub fn ubootenv_parse(data: &[u8]) {
    let Some((&sel, image)) = data.split_first() else {
        return;
    };
    let layout = if sel & 1 == 0 {
        Layout::Single
    } else {
        Layout::Redundant
    };
    if let Ok((env, flags)) = UbootEnv::parse(image, layout) {
        // Entries may shrink (skipped junk, duplicates), so the re-encoding always fits.
        let bytes = env.serialize(image.len(), layout, flags);
        let reparsed = bytes.as_deref().ok().map(|b| UbootEnv::parse(b, layout));
        assert_eq!(
            reparsed,
            Some(Ok((env, flags))),
            "U-Boot env round trip changed content"
        );
    }
}

/// fw_env.config text.
pub fn fw_env_config_parse(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = crate::fw_env_config::FwEnvConfig::parse(text);
    }
}

/// Splits fuzz input into `N` strings at NUL bytes (missing parts are empty, bytes after the
/// `N`th NUL are dropped), lossy UTF-8. No part contains a NUL: names, patterns and versions
/// come from file names and C strings, which cannot.
fn parts<const N: usize>(data: &[u8]) -> [String; N] {
    let mut it = data.split(|b| *b == 0);
    std::array::from_fn(|_| String::from_utf8_lossy(it.next().unwrap_or_default()).into_owned())
}

/// systemd-boot UKI: `.osrel` lookup in PE header bytes, then os-release parsing of the section
/// (when it lies inside the input) and of the whole input.
pub fn sdboot_uki(data: &[u8]) {
    let head = &data[..data.len().min(uki::HEADER_LEN)];
    if let Ok(Some(section)) = uki::osrel_section(head) {
        assert!(
            section.size > 0 && section.size <= uki::MAX_OSREL_LEN,
            "section size outside the bounds osrel_section promises: {section:?}"
        );
        let inside = usize::try_from(section.offset)
            .ok()
            .and_then(|at| data.get(at..at.checked_add(section.size)?));
        if let Some(bytes) = inside {
            os_release(bytes);
        }
    }
    os_release(data);
}

fn os_release(bytes: &[u8]) {
    if let Some(os) = uki::OsRelease::parse(bytes) {
        // systemd-boot skips UKIs without both; parse must never pick an empty one.
        assert!(!os.name.is_empty() && !os.version.is_empty(), "{os:?}");
        assert!(os.sort_key.as_deref() != Some(""), "{os:?}");
    }
}

/// `efi_fnmatch` glob: `pattern NUL name`. Never hangs or panics; `*` and the all-escaped
/// name match the name; a pattern without special characters matches only itself.
pub fn sdboot_glob(data: &[u8]) {
    let [pattern, name] = parts::<2>(data);
    let matched = glob::matches(&pattern, &name);
    assert!(glob::matches("*", &name));
    let escaped: String = name.chars().flat_map(|c| ['\\', c]).collect();
    assert!(
        glob::matches(&escaped, &name),
        "escaped {name:?} does not match it"
    );
    if !pattern.contains(['*', '?', '[', '\\']) {
        assert_eq!(matched, pattern == name, "literal {pattern:?} vs {name:?}");
    }
}

/// `strverscmp_improved`: `a NUL b NUL c`. A total order, as `sort_by` requires (Rust's sort
/// may panic on a comparator that is not one): reflexive, antisymmetric, transitive.
pub fn sdboot_verscmp(data: &[u8]) {
    let [a, b, c] = parts::<3>(data);
    for x in [&a, &b, &c] {
        assert_eq!(verscmp::compare(x, x), Ordering::Equal, "{x:?}");
    }
    let ab = verscmp::compare(&a, &b);
    let bc = verscmp::compare(&b, &c);
    assert_eq!(ab, verscmp::compare(&b, &a).reverse(), "{a:?} {b:?}");
    if ab == bc || bc == Ordering::Equal {
        assert_eq!(verscmp::compare(&a, &c), ab, "{a:?} {b:?} {c:?}");
    } else if ab == Ordering::Equal {
        assert_eq!(verscmp::compare(&a, &c), bc, "{a:?} {b:?} {c:?}");
    }
}

/// Boot-counting entry names: byte 0 is a try count, the rest a file name. Every name the
/// codec accepts or produces by a transition spells itself back.
pub fn sdboot_name(data: &[u8]) {
    let Some((&tries, rest)) = data.split_first() else {
        return;
    };
    let Some(entry) = EntryName::parse(&String::from_utf8_lossy(rest)) else {
        return;
    };
    let bad = matches!(entry.counter, Some(c) if c.left == 0);
    assert_eq!(
        entry.assessment() == crate::systemd_boot::Assessment::Bad,
        bad
    );
    for next in [
        entry.clone(),
        entry.with_tries(u32::from(tries)),
        entry.marked_bad(),
        entry.after_boot_attempt(),
    ] {
        let spelled = next.file_name();
        assert_eq!(
            EntryName::parse(&spelled).as_ref(),
            Some(&next),
            "{spelled:?} does not parse back"
        );
    }
    // A blessed name drops the counter; a stem ending in `+<digits>` then reads as a counter
    // (systemd's names have the same ambiguity), so only require that it parses.
    assert!(EntryName::parse(&entry.blessed().file_name()).is_some());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cheap stand-in for a fuzzer run: random byte flips of valid inputs (xorshift, fixed seed).
    #[test]
    fn mutated_inputs_never_panic_and_round_trip() {
        let mut grub = GrubEnv::new();
        grub.set("ORDER", "A B").unwrap();
        grub.set("note", "a\\b\nc").unwrap();
        let grub = grub.serialize().unwrap();
        let mut uenv = UbootEnv::new();
        uenv.set("BOOT_ORDER", "A B").unwrap();
        let mut single = vec![0u8];
        single.extend(uenv.serialize(64, Layout::Single, 0).unwrap());
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..3000 {
            let mut g = grub.clone();
            let mut u = single.clone();
            for _ in 0..(next() % 4) {
                let i = next() as usize % g.len();
                g[i] = b"#=\\\n\0Ax"[next() as usize % 7];
                let j = next() as usize % u.len();
                u[j] = next() as u8;
            }
            grubenv_parse(&g);
            ubootenv_parse(&u);
            // Truncations exercise the size bounds.
            let cut = next() as usize % u.len();
            ubootenv_parse(&u[..cut]);
            fw_env_config_parse(&g[..cut.min(g.len())]);
        }
        grubenv_parse(&grub);
        ubootenv_parse(&single);
    }

    #[test]
    fn systemd_boot_entry_points_hold_on_sample_inputs() {
        sdboot_glob(b"outpost_*\0outpost_3-b+2.efi");
        sdboot_glob(b"[!a-c]?\\*\0dx*");
        sdboot_glob(b"");
        sdboot_verscmp(b"1.0~rc1\x002.0\x00a-1^2");
        sdboot_verscmp(b"outpost_10-a\x00outpost_9-b\x00outpost_9-b");
        sdboot_name(b"\x03outpost_3-b+2-1.efi");
        sdboot_name(b"\x00x+5+0.conf");
        sdboot_name(b"\x01outpost_1-a.efi");
        let os = b"ID=outpost\nVERSION_ID=\"3\"\nPRETTY_NAME='Outpost 3'\n";
        sdboot_uki(os);
        // A minimal PE: MZ, e_lfanew 0x40, PE signature, one `.osrel` section at 0x200.
        let mut pe = vec![0u8; 0x200];
        pe[..2].copy_from_slice(b"MZ");
        pe[0x3c] = 0x40;
        pe[0x40..0x44].copy_from_slice(b"PE\0\0");
        pe[0x46] = 1; // one section
        let entry = 0x40 + 4 + 20;
        pe[entry..entry + 8].copy_from_slice(b".osrel\0\0");
        pe[entry + 8..entry + 12].copy_from_slice(&(os.len() as u32).to_le_bytes());
        pe[entry + 20..entry + 24].copy_from_slice(&0x200u32.to_le_bytes());
        pe.extend_from_slice(os);
        assert!(matches!(uki::osrel_section(&pe), Ok(Some(_))));
        sdboot_uki(&pe);
    }
}
