#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| outpost_bundle::fuzzing::trailer_and_cms(data));
