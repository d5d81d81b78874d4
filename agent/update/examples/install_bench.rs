//! `scripts/bench-install`'s measuring tool: one install of BUNDLE with RAUC's own
//! `system.conf` (the same file `rauc install` uses in the same run), booted slot forced, and
//! the wall time of verify + write + activate printed as seconds.
//!
//!     install_bench SYSTEM_CONF BUNDLE BOOTED_SLOT
//!
//! With `OUTPOST_BENCH_STEPS=1` it also prints to stderr how long each step took (opening
//! and verifying the bundle, then each progress step), the profile behind docs/updates.md.

use std::path::Path;
use std::process::ExitCode;
use std::time::{Instant, SystemTime};

use outpost_bundle::{Bundle, Keyring, Purpose, VerifyOptions};
use outpost_update::backend::open_bootloader;
use outpost_update::booted::booted_from_cmdline;
use outpost_update::install::{install, Environment};
use outpost_update::{InstallOptions, SystemConfig};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [conf, bundle, booted] = args.as_slice() else {
        eprintln!("usage: install_bench SYSTEM_CONF BUNDLE BOOTED_SLOT");
        return ExitCode::from(2);
    };
    match run(Path::new(conf), Path::new(bundle), booted) {
        Ok(secs) => {
            println!("{secs:.3}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("install_bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(conf: &Path, bundle: &Path, booted: &str) -> Result<f64, Box<dyn std::error::Error>> {
    let conf = SystemConfig::parse(
        &std::fs::read(conf)?,
        conf.parent().unwrap_or(Path::new("/")),
    )?;
    let keyring = Keyring::from_pem(&std::fs::read(
        conf.keyring_path
            .as_ref()
            .ok_or("system.conf has no [keyring] path")?,
    )?)?;
    let mut opts = VerifyOptions::at(SystemTime::now());
    if let Some(p) = conf.check_purpose.as_deref() {
        opts.purpose = Purpose::from_rauc_name(p).ok_or("bad check-purpose")?;
    }
    let booted = booted_from_cmdline(&format!("rauc.slot={booted}"), &conf.slots, &|p| {
        p.to_path_buf()
    })?;
    let bootloader = open_bootloader(&conf, Path::new("/etc/fw_env.config"))?;
    let steps = std::env::var_os("OUTPOST_BENCH_STEPS").is_some();
    let start = Instant::now();
    let verified = Bundle::open(bundle, &keyring, &opts)?;
    let mut last = ("Opening and verifying the bundle".to_string(), start);
    let mut lap = |step: &str| {
        let now = Instant::now();
        if steps && step != last.0 {
            eprintln!("{:>8.1} ms  {}", (now - last.1).as_secs_f64() * 1e3, last.0);
            last = (step.to_string(), now);
        }
    };
    let env = Environment {
        bootloader: &*bootloader,
        status_file: conf.status_file(),
        now: &SystemTime::now,
    };
    install(
        &verified,
        &conf.compatible,
        &conf.slots,
        &booted,
        &InstallOptions::from_config(&conf),
        &env,
        &mut |p| lap(&p.step),
    )?;
    lap("");
    Ok(start.elapsed().as_secs_f64())
}
