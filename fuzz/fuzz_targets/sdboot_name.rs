#![no_main]

// Byte 0: a try count; the rest: a boot-counting entry file name (`stem+left-done.efi`).
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    outpost_boot::fuzzing::sdboot_name(data);
});
