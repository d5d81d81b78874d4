#![no_main]

// A UKI's first bytes: the `.osrel` section lookup in the PE header, then os-release parsing of
// the section (when it lies inside the input) and of the whole input.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    outpost_boot::fuzzing::sdboot_uki(data);
});
