#![no_main]

// Byte 0 as in the entry point (bit 0: layout); unless bit 1 is set, the stored CRC-32 is
// rewritten to match so that mutations get past the CRC check into the parser.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut d = data.to_vec();
    if d.len() >= 9 && d[0] & 2 == 0 {
        let crc = crc32fast::hash(&d[if d[0] & 1 == 0 { 5 } else { 6 }..]);
        d[1..5].copy_from_slice(&crc.to_le_bytes());
    }
    outpost_boot::fuzzing::ubootenv_parse(&d);
});
