//! Entry points for fuzz targets (kept out of the public API). Each parses arbitrary bytes and,
//! when the parse succeeds, checks the codec's own invariant: serializing what was parsed gives
//! bytes that parse to the same value. A panic here is a codec bug, which is what a fuzzer is for.

use crate::grubenv::GrubEnv;
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
}
