//! A verity bundle whose payload was changed after signing: the install fails at the changed
//! block, and the slot holds only bytes that passed their dm-verity check before it (a prefix
//! of the real image) and its old content after; the slot is never activated.

use outpost_boot::Bootloader;
use outpost_bundle::squashfs::SquashfsError;
use outpost_bundle::verity::VerityError;
use outpost_bundle::BundleError;
use outpost_testkit::noise;
use outpost_update::install::{Error, InstallError, InstallOptions};
use outpost_update::{Booted, SlotId};

use crate::fixture::{fixture, BundleSpec, Device};

/// Several copy pieces long, so verified pieces may be written before the tampered one.
const IMAGE_LEN: usize = 3 * 1024 * 1024 + 1000;
const SLOT_LEN: u64 = 4 * 1024 * 1024;
/// Where in the image the payload is changed.
const TAMPER_AT: usize = 2 * 1024 * 1024 + 600_000;

#[test]
fn tampered_verity_block_stops_the_install_with_only_verified_bytes_written() {
    let f = fixture();
    let spec = BundleSpec {
        name: "verity-large",
        format: "verity",
        seed: 7,
        rootfs_len: IMAGE_LEN,
        ..Default::default()
    };
    let bundle = f.bundle(&spec);
    let image = noise(spec.seed, IMAGE_LEN);
    let mut bytes = std::fs::read(&bundle).unwrap();
    // The image is incompressible, so squashfs stores it verbatim: find it in the payload.
    let needle = &image[TAMPER_AT..TAMPER_AT + 64];
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("image bytes in the payload");
    bytes[at] ^= 0x01;
    let bad = bundle.with_file_name("verity-large-tampered.raucb");
    std::fs::write(&bad, &bytes).unwrap();

    let tmp = tempfile::tempdir().unwrap();
    let dev = Device::new(tmp.path(), SLOT_LEN, true);
    let old = dev.slot_bytes("rootfs-1");
    let booted = Booted::Slot(SlotId::parse("rootfs.0").unwrap());
    let err = dev
        .install(&bad, &booted, &InstallOptions::default(), &mut |_| {})
        .expect_err("a tampered block must fail the install");
    let block = at as u64 / 4096;
    assert!(
        matches!(
            &err,
            Error::Failed(InstallError::Write { source, .. })
                if matches!(**source, BundleError::Squashfs(SquashfsError::Verity(
                    VerityError::DataBlockMismatch(n)
                )) if n == block)
        ),
        "{err}"
    );

    // The slot: the real image up to some point, then the old bytes. That point lies before
    // the tampered 4 KiB block starts: nothing from it or after it was written.
    let slot = dev.slot_bytes("rootfs-1");
    let written = slot.iter().zip(&image).take_while(|(s, i)| s == i).count();
    let block_start_in_image = TAMPER_AT - at % 4096;
    assert!(
        written <= block_start_in_image,
        "{written} bytes match the image, the tampered block starts at {block_start_in_image}"
    );
    assert!(
        slot[written..] == old[written..],
        "the slot differs from its old content after the verified prefix"
    );
    // How much of the verified prefix was written depends on timing (workers stop at the first
    // failure); whatever it was, the slot was marked bad before and is not activated.
    let grub = dev.grub();
    assert_eq!(
        grub.primary().unwrap().map(|s| s.to_string()),
        Some("A".into())
    );
}
