//! `GetSlotStatus`'s dictionaries from the same [`SlotsView`] `GET /v1/slots` serves, with
//! RAUC's key names and types (`convert_slot_status_to_dict` in RAUC's `src/service.c`):
//! strings everywhere except `size` (`t`) and `installed.count`/`activated.count` (`u`).
//! As in RAUC, `sha256`+`size`, `installed.*` and `activated.*` come in pairs, and a key whose
//! value is unknown is left out rather than sent empty. Not sent: `description` (no slot
//! descriptions in our configuration) and `mountpoint` (slots are never mounted: images are
//! written raw), `installed.transaction` (not recorded).

use outpost_dbus::rauc::{SlotEntry, Value};

use crate::views::{SlotView, SlotsView};

pub fn entries(view: &SlotsView) -> Vec<SlotEntry> {
    view.slots
        .iter()
        .map(|s| (s.name.clone(), keys(s)))
        .collect()
}

fn keys(s: &SlotView) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let mut str_key = |k: &str, v: Option<&String>| {
        if let Some(v) = v {
            out.push((k.to_owned(), Value::Str(v.clone())));
        }
    };
    str_key("class", Some(&s.class));
    str_key("device", Some(&s.device));
    str_key("type", Some(&s.slot_type));
    str_key("bootname", s.bootname.as_ref());
    str_key("state", Some(&s.state));
    str_key("parent", s.parent.as_ref());
    str_key("boot-status", s.boot_status.as_ref());
    let st = &s.status;
    str_key("bundle.compatible", st.bundle_compatible.as_ref());
    str_key("bundle.version", st.bundle_version.as_ref());
    str_key("bundle.description", st.bundle_description.as_ref());
    str_key("bundle.build", st.bundle_build.as_ref());
    str_key("bundle.hash", st.bundle_hash.as_ref());
    str_key("status", st.status.as_ref());
    if let (Some(sha), Some(size)) = (&st.sha256, st.size) {
        out.push(("sha256".into(), Value::Str(sha.clone())));
        out.push(("size".into(), Value::U64(size)));
    }
    // RAUC keeps the counts as guint32 in its status file; ours are u64 on disk.
    let count = |n: u64| Value::U32(u32::try_from(n).unwrap_or(u32::MAX));
    if let Some(ts) = &st.installed_timestamp {
        out.push(("installed.timestamp".into(), Value::Str(ts.clone())));
        out.push(("installed.count".into(), count(st.installed_count)));
    }
    if let Some(ts) = &st.activated_timestamp {
        out.push(("activated.timestamp".into(), Value::Str(ts.clone())));
        out.push(("activated.count".into(), count(st.activated_count)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::views::SlotStatusView;

    #[test]
    fn keys_come_in_rauc_pairs_with_rauc_types() {
        let slot = SlotView {
            name: "rootfs.1".into(),
            class: "rootfs".into(),
            device: "/dev/sda3".into(),
            slot_type: "ext4".into(),
            bootname: Some("B".into()),
            parent: None,
            state: "inactive".into(),
            boot_status: Some("good".into()),
            status: SlotStatusView {
                status: Some("ok".into()),
                sha256: Some("ab".into()),
                size: Some(5),
                installed_timestamp: Some("2026-01-01T00:00:00Z".into()),
                installed_count: u64::MAX,
                ..Default::default()
            },
        };
        let k = keys(&slot);
        let get = |name: &str| k.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
        assert_eq!(get("size"), Some(Value::U64(5)));
        assert_eq!(get("installed.count"), Some(Value::U32(u32::MAX)));
        assert_eq!(get("boot-status"), Some(Value::Str("good".into())));
        assert_eq!(get("parent"), None);
        assert_eq!(get("activated.count"), None, "no timestamp, no count");
    }
}
