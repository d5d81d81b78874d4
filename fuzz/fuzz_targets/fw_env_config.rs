#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| outpost_boot::fuzzing::fw_env_config_parse(data));
