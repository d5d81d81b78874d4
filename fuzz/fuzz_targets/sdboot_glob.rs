#![no_main]

// `pattern NUL name`: systemd-boot's efi_fnmatch glob (loader.conf `default`).
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    outpost_boot::fuzzing::sdboot_glob(data);
});
