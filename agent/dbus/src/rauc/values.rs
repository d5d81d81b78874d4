//! RAUC's `a{sv}` dictionaries: the plain [`Value`] the backend fills slot status with, and
//! the `InspectBundle` layout (`r_manifest_to_dict` in RAUC's `src/manifest.c`, the same
//! nesting as `rauc info --output-format=json-2`).

use std::collections::BTreeMap;

use zbus::zvariant::{Array, Dict, Signature, Value as ZValue};

use super::backend::{BundleDescription, ImageDescription, SlotEntry};

/// A value of a RAUC status dictionary. RAUC's types matter to its clients: GLib's
/// `g_variant_dict_lookup(.., "u", ..)` finds nothing when the type differs, so
/// `installed.count`/`activated.count` must be [`Value::U32`] and `size` [`Value::U64`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Str(String),
    U32(u32),
    U64(u64),
}

impl Value {
    fn into_zvariant(self) -> ZValue<'static> {
        match self {
            Value::Str(s) => ZValue::from(s),
            Value::U32(n) => ZValue::from(n),
            Value::U64(n) => ZValue::from(n),
        }
    }
}

/// A dictionary in wire form: `a{sv}`, sorted by key (GLib does not care; tests do).
pub type VarDict = BTreeMap<String, ZValue<'static>>;

pub fn slot_status(entries: Vec<SlotEntry>) -> Vec<(String, VarDict)> {
    entries
        .into_iter()
        .map(|(name, fields)| {
            let dict = fields
                .into_iter()
                .map(|(k, v)| (k, v.into_zvariant()))
                .collect();
            (name, dict)
        })
        .collect()
}

fn dict_value(d: VarDict) -> ZValue<'static> {
    ZValue::Dict(Dict::from(d))
}

fn put(d: &mut VarDict, key: &str, v: Option<impl Into<ZValue<'static>>>) {
    if let Some(v) = v {
        d.insert(key.to_owned(), v.into());
    }
}

/// `InspectBundle`'s answer. Keys as RAUC 1.9+ sends them: `manifest-hash s`, `update a{sv}`
/// (`compatible version description build`), `bundle a{sv}` (`format`, and for verity
/// `verity-hash verity-salt s`, `verity-size t`), `images aa{sv}` (`slot-class variant
/// filename checksum s`, `size t`, `hooks as`, `adaptive as`), `meta a{sa{ss}}`. Not sent:
/// `hooks`/`handler` (outpost-agent runs no bundle hooks or handlers and refuses such
/// bundles at install) and the ≥1.13 artifact keys.
/// Fails only if a value's type does not match its container's, which the code here rules
/// out; it is a `Result` rather than a panic all the same.
pub fn inspect(b: BundleDescription) -> Result<VarDict, zbus::zvariant::Error> {
    let mut root = VarDict::new();
    root.insert("manifest-hash".into(), b.manifest_hash.into());

    let mut update = VarDict::new();
    update.insert("compatible".into(), b.compatible.into());
    put(&mut update, "version", b.version);
    put(&mut update, "description", b.description);
    put(&mut update, "build", b.build);
    root.insert("update".into(), dict_value(update));

    let mut bundle = VarDict::new();
    bundle.insert("format".into(), b.format.into());
    put(&mut bundle, "verity-hash", b.verity_hash);
    put(&mut bundle, "verity-salt", b.verity_salt);
    put(&mut bundle, "verity-size", b.verity_size);
    root.insert("bundle".into(), dict_value(bundle));

    let mut images = Array::new(&Signature::dict(Signature::Str, Signature::Variant));
    for i in b.images {
        images.append(dict_value(image(i)))?;
    }
    root.insert("images".into(), ZValue::Array(images));

    let groups = Signature::dict(Signature::Str, Signature::Str);
    let mut meta = Dict::new(&Signature::Str, &groups);
    for (group, kvs) in b.meta {
        let kvs: BTreeMap<String, String> = kvs.into_iter().collect();
        meta.append(ZValue::from(group), ZValue::Dict(Dict::from(kvs)))?;
    }
    root.insert("meta".into(), ZValue::Dict(meta));
    Ok(root)
}

fn image(i: ImageDescription) -> VarDict {
    let mut d = VarDict::new();
    d.insert("slot-class".into(), i.slot_class.into());
    put(&mut d, "variant", i.variant);
    put(&mut d, "filename", i.filename);
    put(&mut d, "checksum", i.checksum);
    put(&mut d, "size", i.size);
    // RAUC always sends `hooks` (maybe empty) and `adaptive` only when set.
    d.insert("hooks".into(), ZValue::Array(Array::from(i.hooks)));
    if !i.adaptive.is_empty() {
        d.insert("adaptive".into(), ZValue::Array(Array::from(i.adaptive)));
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_values_keep_rauc_types() {
        let out = slot_status(vec![(
            "rootfs.1".into(),
            vec![
                ("installed.count".into(), Value::U32(3)),
                ("size".into(), Value::U64(1 << 40)),
                ("status".into(), Value::Str("ok".into())),
            ],
        )]);
        let d = &out[0].1;
        assert_eq!(d["installed.count"].value_signature().to_string(), "u");
        assert_eq!(d["size"].value_signature().to_string(), "t");
        assert_eq!(d["status"].value_signature().to_string(), "s");
    }

    #[test]
    fn inspect_nests_like_rauc() {
        let d = inspect(BundleDescription {
            manifest_hash: "ab".into(),
            compatible: "C".into(),
            version: Some("1".into()),
            format: "verity".into(),
            verity_size: Some(4096),
            images: vec![ImageDescription {
                slot_class: "rootfs".into(),
                size: Some(7),
                ..Default::default()
            }],
            meta: vec![("x".into(), vec![("k".into(), "v".into())])],
            ..Default::default()
        })
        .unwrap();
        let sig = |k: &str| d[k].value_signature().to_string();
        assert_eq!(sig("manifest-hash"), "s");
        assert_eq!(sig("update"), "a{sv}");
        assert_eq!(sig("bundle"), "a{sv}");
        assert_eq!(sig("images"), "aa{sv}");
        assert_eq!(sig("meta"), "a{sa{ss}}");
    }
}
