use std::fs;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use outpost_boot::fw_env_config::FwEnvConfig;
use outpost_boot::uboot::UbootBackend;
use outpost_boot::ubootenv::{Layout, UbootEnv, UbootEnvError};
use outpost_boot::{BootError, Bootloader, SlotState};

use crate::{ab, p, run, slot, stdout};

const SIZE: usize = 0x2000;

struct Setup {
    _dir: tempfile::TempDir,
    dir: PathBuf,
    config: PathBuf,
}

impl Setup {
    /// `lines` are fw_env.config lines with `@` standing for the temp dir.
    fn new(lines: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_owned();
        let text: String = lines
            .iter()
            .map(|l| format!("{}\n", l.replace('@', p(&path))))
            .collect();
        let config = path.join("fw_env.config");
        fs::write(&config, text).unwrap();
        fs::write(path.join("defenv"), "").unwrap();
        Self {
            _dir: dir,
            dir: path,
            config,
        }
    }

    fn single() -> Self {
        let s = Self::new(&["# single env in its own file", "@/uboot.env 0x0 0x2000"]);
        fs::write(s.dir.join("uboot.env"), vec![0u8; SIZE]).unwrap();
        s
    }

    /// Two copies in one 16 KiB file, the way many boards lay out a raw env partition.
    fn redundant() -> Self {
        let s = Self::new(&["@/env.img 0x0 0x2000", "@/env.img 0x2000 0x2000"]);
        fs::write(s.dir.join("env.img"), vec![0u8; 2 * SIZE]).unwrap();
        s
    }

    fn backend(&self) -> UbootBackend {
        let cfg = FwEnvConfig::parse(&fs::read_to_string(&self.config).unwrap()).unwrap();
        UbootBackend::new(cfg, ab())
    }

    fn printenv(&self) -> String {
        stdout("fw_printenv", &["-c", p(&self.config)])
    }

    /// fw_setenv one variable; `-f defenv` lets it start from an empty env when none is valid.
    fn setenv(&self, name: &str, value: &str) {
        run(
            "fw_setenv",
            &[
                "-c",
                p(&self.config),
                "-f",
                p(&self.dir.join("defenv")),
                name,
                value,
            ],
        );
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// `fw_printenv` lines for our parse of the env.
fn our_print(b: &UbootBackend) -> String {
    b.load()
        .unwrap()
        .env
        .vars()
        .map(|(k, v)| {
            format!(
                "{}={}\n",
                String::from_utf8_lossy(k),
                String::from_utf8_lossy(v)
            )
        })
        .collect()
}

fn read_at(path: &Path, offset: u64, len: usize) -> Vec<u8> {
    let mut buf = vec![0u8; len];
    fs::File::open(path)
        .unwrap()
        .read_exact_at(&mut buf, offset)
        .unwrap();
    buf
}

/// The data area up to and including the terminating empty entry (libubootenv leaves the
/// padding after it uninitialised, so only this part is comparable byte for byte).
fn data_part(image: &[u8], header: usize) -> &[u8] {
    let data = &image[header..];
    let end = data.windows(2).position(|w| w == [0, 0]).unwrap();
    &data[..end + 2]
}

#[test]
fn we_read_what_fw_setenv_wrote_single() {
    let s = Setup::single();
    s.setenv("BOOT_ORDER", "A B");
    s.setenv("BOOT_A_LEFT", "3");
    s.setenv("bootcmd", "run distro_bootcmd; echo x=y");
    let b = s.backend();
    assert_eq!(our_print(&b), s.printenv());
    assert_eq!(b.primary().unwrap(), Some(slot("A")));
    // Our encoding of what we parsed equals theirs up to the padding.
    let theirs = fs::read(s.path("uboot.env")).unwrap();
    let ours = b
        .load()
        .unwrap()
        .env
        .serialize(SIZE, Layout::Single, 0)
        .unwrap();
    assert_eq!(data_part(&ours, 4), data_part(&theirs, 4));
}

#[test]
fn fw_printenv_reads_what_we_wrote_single() {
    let s = Setup::single();
    s.setenv("BOOT_ORDER", "A B");
    s.setenv("BOOT_A_LEFT", "3");
    s.setenv("BOOT_B_LEFT", "3");
    let b = s.backend();
    b.set_state(&slot("B"), SlotState::Bad).unwrap();
    assert_eq!(s.printenv(), "BOOT_A_LEFT=3\nBOOT_B_LEFT=0\nBOOT_ORDER=A\n");
    b.set_primary(&slot("B")).unwrap();
    assert_eq!(
        s.printenv(),
        "BOOT_A_LEFT=3\nBOOT_B_LEFT=3\nBOOT_ORDER=B A\n"
    );
    assert_eq!(
        stdout("fw_printenv", &["-c", p(&s.config), "-n", "BOOT_ORDER"]),
        "B A\n"
    );
    // A whole-file single env is replaced atomically: no temp left behind.
    assert!(!s.path(".uboot.env.outpost-tmp").exists());
}

/// RAUC 1.8 makes these fw_setenv calls for install → mark-good; the resulting envs must match.
#[test]
fn backend_matches_raucs_fw_setenv_sequence() {
    let ours = Setup::single();
    let theirs = Setup::single();
    for s in [&ours, &theirs] {
        s.setenv("BOOT_ORDER", "A B");
        s.setenv("BOOT_A_LEFT", "3");
        s.setenv("BOOT_B_LEFT", "3");
    }
    let b = ours.backend();
    b.set_state(&slot("B"), SlotState::Bad).unwrap();
    theirs.setenv("BOOT_ORDER", "A");
    theirs.setenv("BOOT_B_LEFT", "0");
    assert_eq!(ours.printenv(), theirs.printenv());
    b.set_primary(&slot("B")).unwrap();
    theirs.setenv("BOOT_B_LEFT", "3");
    theirs.setenv("BOOT_ORDER", "B A");
    assert_eq!(ours.printenv(), theirs.printenv());
    // Boot script decremented B once; the health gate commits it.
    ours.setenv("BOOT_B_LEFT", "2");
    assert_eq!(b.attempts_left(&slot("B")).unwrap(), Some(2));
    b.set_state(&slot("B"), SlotState::Good).unwrap();
    theirs.setenv("BOOT_B_LEFT", "3");
    assert_eq!(ours.printenv(), theirs.printenv());
    let a = fs::read(ours.path("uboot.env")).unwrap();
    let t = fs::read(theirs.path("uboot.env")).unwrap();
    assert_eq!(data_part(&a, 4), data_part(&t, 4));
}

#[test]
fn state_and_primary_follow_raucs_rules() {
    let s = Setup::single();
    s.setenv("BOOT_ORDER", "A B");
    s.setenv("BOOT_A_LEFT", "0");
    s.setenv("BOOT_B_LEFT", "a"); // hex: 10 attempts
    let b = s.backend();
    assert_eq!(b.primary().unwrap(), Some(slot("B")));
    assert_eq!(b.attempts_left(&slot("B")).unwrap(), Some(10));
    assert_eq!(b.state(&slot("A")).unwrap(), SlotState::Bad);
    s.setenv("BOOT_ORDER", "A");
    assert_eq!(b.state(&slot("B")).unwrap(), SlotState::Bad);
    assert_eq!(b.primary().unwrap(), None);
    run("fw_setenv", &["-c", p(&s.config), "BOOT_ORDER"]); // delete
    assert!(matches!(b.primary(), Err(BootError::MissingVar { .. })));
    // set_primary without BOOT_ORDER falls back to the configured slots, as RAUC does.
    b.set_primary(&slot("B")).unwrap();
    assert_eq!(
        stdout("fw_printenv", &["-c", p(&s.config), "-n", "BOOT_ORDER"]),
        "B A\n"
    );
    let custom = s.backend().with_attempts(5, 0xc);
    custom.set_primary(&slot("A")).unwrap();
    custom.set_state(&slot("B"), SlotState::Good).unwrap();
    assert!(s
        .printenv()
        .contains("BOOT_A_LEFT=c\nBOOT_B_LEFT=5\nBOOT_ORDER=A B\n"));
}

#[test]
fn redundant_env_alternates_copies_and_fw_tools_agree() {
    let s = Setup::redundant();
    s.setenv("BOOT_ORDER", "A B"); // copy 1 (flags 1) — copy 0 was invalid
    s.setenv("BOOT_A_LEFT", "3"); // copy 0 (flags 2)
    s.setenv("BOOT_B_LEFT", "3"); // copy 1 (flags 3)
    let img = s.path("env.img");
    assert_eq!(read_at(&img, 4, 1), [2]);
    assert_eq!(read_at(&img, SIZE as u64 + 4, 1), [3]);
    let b = s.backend();
    assert_eq!(our_print(&b), s.printenv());

    // We write copy 0 with flags 4; fw_printenv follows.
    b.set_state(&slot("B"), SlotState::Bad).unwrap();
    assert_eq!(read_at(&img, 4, 1), [4]);
    assert_eq!(s.printenv(), "BOOT_A_LEFT=3\nBOOT_B_LEFT=0\nBOOT_ORDER=A\n");
    // fw_setenv continues from our copy: it writes copy 1 with flags 5, and we read that.
    s.setenv("BOOT_A_LEFT", "2");
    assert_eq!(read_at(&img, SIZE as u64 + 4, 1), [5]);
    assert_eq!(b.attempts_left(&slot("A")).unwrap(), Some(2));
    assert_eq!(our_print(&b), s.printenv());
}

#[test]
fn redundant_env_with_a_corrupt_copy_falls_back_for_both() {
    let s = Setup::redundant();
    s.setenv("BOOT_ORDER", "A B"); // copy 1, flags 1
    s.setenv("BOOT_A_LEFT", "3"); // copy 0, flags 2
    s.setenv("BOOT_B_LEFT", "3"); // copy 1, flags 3 (current)
    let img = s.path("env.img");
    // Corrupt the current copy (copy 1): one data byte flipped, CRC now wrong.
    let mut byte = read_at(&img, SIZE as u64 + 6, 1);
    byte[0] ^= 0x20;
    fs::OpenOptions::new()
        .write(true)
        .open(&img)
        .unwrap()
        .write_all_at(&byte, SIZE as u64 + 6)
        .unwrap();

    let old = "BOOT_A_LEFT=3\nBOOT_ORDER=A B\n";
    assert_eq!(s.printenv(), old);
    let b = s.backend();
    assert_eq!(our_print(&b), old);
    // Our next write replaces the corrupt copy with flags 3 (copy 0's 2 + 1).
    b.set_primary(&slot("B")).unwrap();
    assert_eq!(read_at(&img, SIZE as u64 + 4, 1), [3]);
    assert_eq!(
        s.printenv(),
        "BOOT_A_LEFT=3\nBOOT_B_LEFT=3\nBOOT_ORDER=B A\n"
    );
}

#[test]
fn flag_counter_wrap_is_read_like_libubootenv() {
    let s = Setup::redundant();
    let img = s.path("env.img");
    let mut old = UbootEnv::new();
    old.set("which", "old").unwrap();
    let mut new = UbootEnv::new();
    new.set("which", "new").unwrap();
    let f = fs::OpenOptions::new().write(true).open(&img).unwrap();
    f.write_all_at(&old.serialize(SIZE, Layout::Redundant, 0xff).unwrap(), 0)
        .unwrap();
    f.write_all_at(
        &new.serialize(SIZE, Layout::Redundant, 0x00).unwrap(),
        SIZE as u64,
    )
    .unwrap();
    assert_eq!(s.printenv(), "which=new\n");
    assert_eq!(our_print(&s.backend()), "which=new\n");
    // Next write goes to copy 0 with flags 1.
    let b = s.backend();
    let mut loaded = b.load().unwrap();
    loaded.env.set("which", "newer").unwrap();
    b.store(&loaded).unwrap();
    assert_eq!(read_at(&img, 4, 1), [1]);
    assert_eq!(s.printenv(), "which=newer\n");
}

#[test]
fn power_cut_during_redundant_write_leaves_the_old_copy() {
    let s = Setup::redundant();
    s.setenv("BOOT_ORDER", "A B");
    s.setenv("BOOT_A_LEFT", "3");
    s.setenv("BOOT_B_LEFT", "3"); // current: copy 1
    let before = s.printenv();
    let img = s.path("env.img");
    // Our write targets copy 0 (flags 4). Cut it two ways: only the head reached the disk
    // (new CRC over old data), or everything but the head (old CRC over new data).
    let b = s.backend();
    let mut loaded = b.load().unwrap();
    loaded.env.set("BOOT_ORDER", "B A").unwrap();
    let image = loaded.env.serialize(SIZE, Layout::Redundant, 4).unwrap();
    let f = fs::OpenOptions::new().write(true).open(&img).unwrap();
    let pristine = read_at(&img, 0, SIZE);
    f.write_all_at(&image[..24], 0).unwrap();
    assert_eq!(s.printenv(), before);
    assert_eq!(our_print(&b), before);
    f.write_all_at(&pristine, 0).unwrap();
    f.write_all_at(&image[5..], 5).unwrap();
    assert_eq!(s.printenv(), before);
    assert_eq!(our_print(&b), before);
    // A whole write afterwards wins.
    b.set_primary(&slot("B")).unwrap();
    assert!(s.printenv().contains("BOOT_ORDER=B A"));
}

#[test]
fn power_cut_before_rename_keeps_the_old_single_env() {
    let s = Setup::single();
    s.setenv("BOOT_ORDER", "A B");
    let before = s.printenv();
    let env_file = s.path("uboot.env");
    let mut e = UbootEnv::new();
    e.set("BOOT_ORDER", "B A").unwrap();
    let temp = outpost_boot::atomic_file::write_temp(
        &env_file,
        &e.serialize(SIZE, Layout::Single, 0).unwrap(),
    )
    .unwrap();
    fs::write(&temp, b"partial").unwrap();
    assert_eq!(s.printenv(), before);
    assert_eq!(our_print(&s.backend()), before);
}

#[test]
fn single_env_inside_a_larger_file_is_written_in_place() {
    let s = Setup::new(&["@/disk.img 0x1000 0x2000"]);
    let disk = s.path("disk.img");
    fs::write(&disk, vec![0x5a; 0x4000]).unwrap();
    s.setenv("BOOT_ORDER", "A B");
    s.setenv("BOOT_A_LEFT", "3");
    s.setenv("BOOT_B_LEFT", "3");
    s.backend().set_primary(&slot("B")).unwrap();
    assert_eq!(
        s.printenv(),
        "BOOT_A_LEFT=3\nBOOT_B_LEFT=3\nBOOT_ORDER=B A\n"
    );
    // Bytes outside the env are untouched.
    let bytes = fs::read(&disk).unwrap();
    assert!(bytes[..0x1000]
        .iter()
        .chain(&bytes[0x3000..])
        .all(|&b| b == 0x5a));
}

#[test]
fn an_invalid_env_is_an_error_not_a_silent_default() {
    let s = Setup::single();
    let b = s.backend();
    assert!(matches!(
        b.primary(),
        Err(BootError::UbootEnv(UbootEnvError::BadCrc { .. }))
    ));
    assert!(b.set_primary(&slot("A")).is_err());
    assert_eq!(fs::read(s.path("uboot.env")).unwrap(), vec![0u8; SIZE]);
    let r = Setup::redundant();
    assert!(matches!(
        r.backend().primary(),
        Err(BootError::UbootEnv(UbootEnvError::NoValidCopy { .. }))
    ));
}

#[test]
fn fw_printenv_reads_an_env_we_created_from_scratch() {
    let s = Setup::single();
    let mut e = UbootEnv::new();
    e.set("BOOT_ORDER", "A B").unwrap();
    e.set("BOOT_A_LEFT", "3").unwrap();
    e.set("BOOT_B_LEFT", "3").unwrap();
    fs::write(
        s.path("uboot.env"),
        e.serialize(SIZE, Layout::Single, 0).unwrap(),
    )
    .unwrap();
    assert_eq!(
        s.printenv(),
        "BOOT_A_LEFT=3\nBOOT_B_LEFT=3\nBOOT_ORDER=A B\n"
    );
    // And fw_setenv accepts it as valid (no default env needed: -f is not passed).
    run("fw_setenv", &["-c", p(&s.config), "extra", "1"]);
    assert_eq!(s.backend().primary().unwrap(), Some(slot("A")));
}
