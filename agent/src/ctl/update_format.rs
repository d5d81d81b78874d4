//! Readable renderings of bundle info, install results and slots (after `rauc info` and
//! `rauc status`, so the output is familiar to RAUC users).

use std::fmt::Write;

use outpost_bundle::BundleInfo;
use outpost_proto::time::rfc3339_millis;

use super::format::bytes;
use crate::views::{InstallView, SlotView, SlotsView};

fn quoted(v: Option<&str>) -> String {
    format!("'{}'", v.unwrap_or(""))
}

pub fn info(i: &BundleInfo) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Compatible:     '{}'", i.compatible);
    let _ = writeln!(out, "Version:        {}", quoted(i.version.as_deref()));
    let _ = writeln!(out, "Description:    {}", quoted(i.description.as_deref()));
    let _ = writeln!(out, "Build:          {}", quoted(i.build.as_deref()));
    let _ = writeln!(out, "Bundle Format:  {}", i.format);
    let _ = writeln!(out, "Manifest Hash:  {}", i.manifest_hash);
    let _ = writeln!(out);
    let n = i.images.len();
    let _ = writeln!(out, "{n} Image{}:", if n == 1 { "" } else { "s" });
    for img in &i.images {
        match &img.variant {
            Some(v) => _ = writeln!(out, "  [{}.{v}]", img.class),
            None => _ = writeln!(out, "  [{}]", img.class),
        }
        let _ = writeln!(
            out,
            "\tFilename:  {}",
            img.filename.as_deref().unwrap_or("(none)")
        );
        let _ = writeln!(
            out,
            "\tChecksum:  {}",
            img.sha256.as_deref().unwrap_or("(none)")
        );
        match img.size {
            Some(s) => _ = writeln!(out, "\tSize:      {} ({s} bytes)", bytes(s)),
            None => _ = writeln!(out, "\tSize:      (none)"),
        }
        let h = img.hooks;
        let hooks: Vec<&str> = [
            (h.pre_install, "pre-install"),
            (h.install, "install"),
            (h.post_install, "post-install"),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, n)| *n)
        .collect();
        if !hooks.is_empty() {
            let _ = writeln!(out, "\tHooks:     {}", hooks.join(" "));
        }
        if !img.adaptive.is_empty() {
            let _ = writeln!(out, "\tAdaptive:  {}", img.adaptive.join(" "));
        }
    }
    let _ = writeln!(out);
    let v = &i.verification;
    let _ = writeln!(
        out,
        "Signature:      valid (purpose {}, payload checked by {})",
        v.purpose, v.payload_check
    );
    if let Some(root) = &v.verity_root_hash {
        let _ = writeln!(out, "Verity root:    {root}");
    }
    let _ = writeln!(out, "Signer:         {}", i.signer.subject);
    let _ = writeln!(out, "Issuer:         {}", i.signer.issuer);
    if let Some(t) = i.signer.signing_time {
        let _ = writeln!(out, "Signing time:   {}", rfc3339_millis(t as i64 * 1000));
    }
    let _ = writeln!(out, "Certificate chain:");
    for (n, c) in i.signer.chain.iter().enumerate() {
        let _ = writeln!(out, " {n} {c}");
    }
    out
}

pub fn install_done(v: &InstallView) -> String {
    let mut out = String::new();
    let what = match (&v.compatible, &v.version) {
        (Some(c), Some(ver)) => format!("'{c}' {ver}"),
        (Some(c), None) => format!("'{c}'"),
        _ => v.bundle.clone().unwrap_or_default(),
    };
    let _ = writeln!(out, "Installing done: {what}");
    for w in &v.written {
        let _ = writeln!(out, "  wrote {} to {}", bytes(w.bytes), w.slot);
    }
    match v.activated.as_slice() {
        [] => _ = writeln!(out, "  no slot activated (activate_installed = false)"),
        slots => _ = writeln!(out, "  {} boots next", slots.join(", ")),
    }
    out
}

fn slot_line(out: &mut String, s: &SlotView, indent: &str, primary: Option<&str>) {
    let mark = match (s.state.as_str(), primary == Some(s.name.as_str())) {
        (_, true) => "o",
        ("booted", _) => "x",
        _ => " ",
    };
    let _ = writeln!(
        out,
        "{indent}{mark} [{}] ({}, {}, {})",
        s.name, s.device, s.slot_type, s.state
    );
    let pad = format!("{indent}      ");
    if let Some(b) = &s.bootname {
        let _ = writeln!(out, "{pad}bootname: {b}");
    }
    if s.bootname.is_some() {
        let _ = writeln!(
            out,
            "{pad}boot status: {}",
            s.boot_status.as_deref().unwrap_or("unknown")
        );
    }
    let st = &s.status;
    if st.status.is_some() || st.bundle_version.is_some() {
        let _ = writeln!(out, "{pad}slot status:");
        let _ = writeln!(
            out,
            "{pad}    status:      {}",
            st.status.as_deref().unwrap_or("-")
        );
        if let Some(c) = &st.bundle_compatible {
            let _ = writeln!(out, "{pad}    compatible:  {c}");
        }
        if let Some(v) = &st.bundle_version {
            let _ = writeln!(out, "{pad}    version:     {v}");
        }
        if let Some(b) = &st.bundle_build {
            let _ = writeln!(out, "{pad}    build:       {b}");
        }
        if let (Some(h), Some(n)) = (&st.sha256, st.size) {
            let _ = writeln!(out, "{pad}    checksum:    {h} ({n} bytes)");
        }
        if let Some(t) = &st.installed_timestamp {
            let _ = writeln!(
                out,
                "{pad}    installed:   {t} (count {})",
                st.installed_count
            );
        }
        if let Some(t) = &st.activated_timestamp {
            let _ = writeln!(
                out,
                "{pad}    activated:   {t} (count {})",
                st.activated_count
            );
        }
    }
}

pub fn slots(v: &SlotsView) -> String {
    let mut out = String::new();
    let named = |id: Option<&str>| -> String {
        let Some(id) = id else {
            return "(none)".to_owned();
        };
        match v
            .slots
            .iter()
            .find(|s| s.name == id)
            .and_then(|s| s.bootname.as_ref())
        {
            Some(b) => format!("{id} ({b})"),
            None => id.to_owned(),
        }
    };
    let _ = writeln!(out, "=== System Info ===");
    let _ = writeln!(out, "Compatible:  {}", v.compatible);
    match (&v.booted, &v.booted_error) {
        (Some(b), _) => _ = writeln!(out, "Booted from: {}", named(Some(b))),
        (None, Some(e)) => _ = writeln!(out, "Booted from: unknown ({e})"),
        (None, None) => _ = writeln!(out, "Booted from: unknown"),
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "=== Bootloader ===");
    let _ = writeln!(out, "Bootloader:  {}", v.bootloader);
    let _ = writeln!(out, "Activated:   {}", named(v.primary.as_deref()));
    let _ = writeln!(out);
    let _ = writeln!(out, "=== Slot States ===");
    // Roots first, each followed by its children, as rauc status does.
    for root in v.slots.iter().filter(|s| s.parent.is_none()) {
        slot_line(&mut out, root, "", v.primary.as_deref());
        for child in v
            .slots
            .iter()
            .filter(|s| s.parent.as_deref() == Some(&root.name))
        {
            slot_line(&mut out, child, "    ", v.primary.as_deref());
        }
        let _ = writeln!(out);
    }
    out.push_str("legend: x booted, o activated (boots next)\n");
    out
}
