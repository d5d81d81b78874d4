#![no_main]

// The reference-agent body (no header), then the same bytes as a stream name and a record id.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = outpost_proto::legacy::parse_and_verify(data, None);
    let s = String::from_utf8_lossy(data);
    let _ = outpost_proto::StreamName::parse(&s);
    let _ = outpost_proto::RecordId::parse(&s);
});
