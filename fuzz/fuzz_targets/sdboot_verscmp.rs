#![no_main]

// `a NUL b NUL c`: strverscmp_improved must be a total order (entries are sorted with it).
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    outpost_boot::fuzzing::sdboot_verscmp(data);
});
