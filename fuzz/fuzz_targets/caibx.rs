#![no_main]

// casync blob indexes (.caibx) as a device reads them from a bundle or a server.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(index) = outpost_casync::Index::parse(data) {
        let total: u64 = index.chunks().map(|c| c.len).sum();
        assert_eq!(total, index.blob_size());
        assert_eq!(
            outpost_casync::Index::parse(&index.to_bytes()).as_ref(),
            Ok(&index)
        );
    }
});
