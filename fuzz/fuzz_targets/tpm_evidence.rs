#![no_main]

// The TPM structures a hub parses from an enrolling device (round one and two of
// outpost-attest): TPMT_PUBLIC, TPMS_ATTEST and TPMT_SIGNATURE. The first byte picks the split.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let at = usize::from(split).min(rest.len());
    let (a, b) = rest.split_at(at);
    if let Ok(public) = outpost_attest::TpmPublic::parse(a, "fuzz") {
        let _ = public.name();
        let _ = public.p256_point();
        let _ = public.check_attestation_key();
        let _ = public.check_device_key();
        let _ = public.check_endorsement_key();
        let _ = outpost_attest::ek_device_id(&public);
        let _ = outpost_attest::verify_signature(&public, b"message", b);
    }
    let _ = outpost_attest::CertifyInfo::parse(rest);
});
