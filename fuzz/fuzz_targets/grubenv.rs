#![no_main]

// grubenv blocks are exactly 1024 bytes: pad (with '#', as GRUB does) or cut to that size so
// that inserting and deleting bytes still yields a block the parser reads past its size check.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut block = data.to_vec();
    block.resize(outpost_boot::grubenv::BLOCK_SIZE, b'#');
    outpost_boot::fuzzing::grubenv_parse(&block);
});
