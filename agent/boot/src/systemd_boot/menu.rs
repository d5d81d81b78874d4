//! The boot menu as systemd-boot builds it, and the entry it boots without a keypress. Pure:
//! [`super::esp`] reads the ESP into [`MenuEntry`]s and [`Defaults`].
//!
//! Order (`config_entry_compare` in systemd-boot 252's boot.c):
//! 1. entries with 0 tries left last;
//! 2. entries with a sort key (UKI: os-release `IMAGE_ID`/`ID`; Type #1: `sort-key`) before
//!    those without; between two with sort keys: sort key ascending, machine id, then
//!    **version descending** (UKI: os-release `IMAGE_VERSION`/`VERSION`/`VERSION_ID`/`BUILD_ID`);
//! 3. id (the file name, lower-cased) descending, by [`verscmp`];
//! 4. more tries left first, then fewer tries done.
//!
//! Default (`config_default_entry_select`): the first entry in that order matching
//! `LoaderEntryOneShot`, else `LoaderEntryDefault`, else loader.conf `default`; else the first
//! entry. A pattern match does **not** skip entries with 0 tries left (bootctl 252 confirms:
//! `default outpost_*-b*` boots a `+0` B), which is why the backend never writes a pattern.

use std::cmp::Ordering;

use super::glob;
use super::name::EntryName;
use super::verscmp;

/// One bootable entry as systemd-boot lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MenuEntry {
    /// The file name on the ESP, counter included (`outpost_3-b+2-1.efi`).
    pub file_name: String,
    pub name: EntryName,
    pub sort_key: Option<String>,
    pub version: Option<String>,
    pub machine_id: Option<String>,
}

impl MenuEntry {
    /// The id bootctl shows and newer systemd-boot uses: lower-cased, counter dropped.
    pub fn id(&self) -> String {
        self.name.blessed().file_name().to_lowercase()
    }

    /// The id systemd-boot 252 itself matches patterns against: the whole file name.
    fn id_with_counter(&self) -> String {
        self.file_name.to_lowercase()
    }

    fn tries_left(&self) -> Option<u32> {
        self.name.counter.map(|c| c.left)
    }
}

/// The patterns that choose the default entry, strongest first. `None` where unset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Defaults {
    /// `LoaderEntryOneShot` EFI variable.
    pub oneshot: Option<String>,
    /// `LoaderEntryDefault` EFI variable.
    pub efivar: Option<String>,
    /// `default` in `loader/loader.conf`.
    pub config: Option<String>,
}

/// systemd-boot's comparison: `Less` means `a` is listed (and preferred) before `b`.
pub fn compare(a: &MenuEntry, b: &MenuEntry) -> Ordering {
    let exhausted = |e: &MenuEntry| e.tries_left() == Some(0);
    exhausted(a)
        .cmp(&exhausted(b))
        .then_with(|| a.sort_key.is_none().cmp(&b.sort_key.is_none()))
        .then_with(|| match (&a.sort_key, &b.sort_key) {
            (Some(ka), Some(kb)) => ka
                .cmp(kb)
                .then_with(|| a.machine_id.cmp(&b.machine_id))
                .then_with(|| {
                    verscmp::compare(
                        b.version.as_deref().unwrap_or(""),
                        a.version.as_deref().unwrap_or(""),
                    )
                }),
            _ => Ordering::Equal,
        })
        .then_with(|| verscmp::compare(&b.id(), &a.id()))
        .then_with(|| match (a.name.counter, b.name.counter) {
            (Some(ca), Some(cb)) => cb.left.cmp(&ca.left).then(ca.done.cmp(&cb.done)),
            _ => Ordering::Equal,
        })
}

/// Sorts `entries` into menu order. Ties keep file-name order, so the result is deterministic.
pub fn sort(entries: &mut [MenuEntry]) {
    entries.sort_by(|a, b| a.file_name.cmp(&b.file_name));
    entries.sort_by(compare);
}

/// Index of the entry systemd-boot boots by default in a sorted menu; `None` if it is empty.
pub fn default_index(sorted: &[MenuEntry], d: &Defaults) -> Option<usize> {
    for pattern in [&d.oneshot, &d.efivar, &d.config].into_iter().flatten() {
        let pattern = pattern.to_lowercase();
        let hit = sorted.iter().position(|e| {
            glob::matches(&pattern, &e.id()) || glob::matches(&pattern, &e.id_with_counter())
        });
        if hit.is_some() {
            return hit;
        }
    }
    (!sorted.is_empty()).then_some(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(file: &str, sort_key: Option<&str>, version: Option<&str>) -> MenuEntry {
        MenuEntry {
            file_name: file.to_owned(),
            name: EntryName::parse(file).unwrap(),
            sort_key: sort_key.map(str::to_owned),
            version: version.map(str::to_owned),
            machine_id: None,
        }
    }

    fn order(mut v: Vec<MenuEntry>) -> Vec<String> {
        sort(&mut v);
        v.into_iter().map(|e| e.file_name).collect()
    }

    #[test]
    fn exhausted_entries_go_last_and_ids_sort_newest_first() {
        assert_eq!(
            order(vec![
                e("outpost_1-A.efi", None, None),
                e("outpost_2-B+0-3.efi", None, None),
                e("outpost_3-A+3.efi", None, None),
            ]),
            [
                "outpost_3-A+3.efi",
                "outpost_1-A.efi",
                "outpost_2-B+0-3.efi"
            ]
        );
    }

    #[test]
    fn an_os_release_version_outranks_the_file_name() {
        let newer_os = e("outpost_1-B.efi", Some("outpost"), Some("2.0"));
        let newer_name = e("outpost_3-A+3.efi", Some("outpost"), Some("1.0"));
        assert_eq!(
            order(vec![newer_name.clone(), newer_os.clone()]),
            ["outpost_1-B.efi", "outpost_3-A+3.efi"]
        );
        // Only a sort key on both sides brings the version in; with it on one side, that
        // side goes first.
        let keyless = e("outpost_9-A.efi", None, Some("9"));
        assert_eq!(
            order(vec![keyless, newer_os]),
            ["outpost_1-B.efi", "outpost_9-A.efi"]
        );
    }

    #[test]
    fn patterns_pick_the_first_match_even_if_exhausted() {
        let mut v = vec![
            e("outpost_1-A.efi", None, None),
            e("outpost_2-B+0-3.efi", None, None),
        ];
        sort(&mut v);
        let d = |config: &str| Defaults {
            config: Some(config.to_owned()),
            ..Defaults::default()
        };
        assert_eq!(default_index(&v, &Defaults::default()), Some(0));
        assert_eq!(default_index(&v, &d("outpost_*")), Some(0));
        assert_eq!(default_index(&v, &d("*-b.efi")), Some(1), "bootctl's id");
        assert_eq!(
            default_index(&v, &d("*-B+0-3.EFI")),
            Some(1),
            "sd-boot 252's id"
        );
        assert_eq!(default_index(&v, &d("nothing")), Some(0));
        let oneshot = Defaults {
            oneshot: Some("*-b*".into()),
            ..d("*-a*")
        };
        assert_eq!(default_index(&v, &oneshot), Some(1));
        assert_eq!(default_index(&[], &Defaults::default()), None);
    }
}
