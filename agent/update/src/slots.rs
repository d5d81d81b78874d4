//! The slot model (RAUC's `[slot.<class>.<index>]`) and the pure choice of install targets.
//!
//! RAUC 1.8 semantics (`src/install.c` `determine_slot_states`, `determine_target_install_group`):
//! the booted slot is `booted`, a slot whose parent is the booted slot is `active`, every other
//! slot is `inactive`. For each root class (class of a slot without parent) the first inactive
//! member is chosen, and every slot whose root is a chosen slot joins the target group. The
//! booted slot and its children are therefore never targets: they are not inactive, and no
//! inactive root has them as children.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use outpost_boot::SlotName;

/// `<class>.<index>`, e.g. `rootfs.1`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SlotId {
    class: String,
    index: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlotConfigError {
    #[error("invalid slot name '{0}': expected <class>.<index>")]
    BadName(String),
    #[error("slot {0} is configured twice")]
    DuplicateSlot(SlotId),
    #[error("bootname '{0}' is set on more than one slot")]
    DuplicateBootname(String),
    #[error("slot {slot}: parent '{parent}' is not a configured slot")]
    UnknownParent { slot: SlotId, parent: String },
    #[error("slot {0}: its parent chain loops")]
    ParentLoop(SlotId),
    #[error("unsupported slot type '{0}'")]
    UnknownType(String),
}

impl SlotId {
    /// Parses `class.index`; both parts non-empty, no further dots (RAUC splits on every dot).
    pub fn parse(name: &str) -> Result<Self, SlotConfigError> {
        let bad = || SlotConfigError::BadName(name.to_string());
        let (class, index) = name.split_once('.').ok_or_else(bad)?;
        let ok = |s: &str| !s.is_empty() && !s.contains('.') && !s.chars().any(char::is_whitespace);
        if !ok(class) || !ok(index) {
            return Err(bad());
        }
        Ok(SlotId {
            class: class.to_string(),
            index: index.to_string(),
        })
    }

    pub fn class(&self) -> &str {
        &self.class
    }

    pub fn index(&self) -> &str {
        &self.index
    }
}

impl fmt::Display for SlotId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.class, self.index)
    }
}

/// RAUC slot types (`type=`). Only the block types are written by copying the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotType {
    Raw,
    Ext4,
    Vfat,
    Nand,
    Nor,
    Ubivol,
    Ubifs,
    Jffs2,
    BootEmmc,
    BootMbrSwitch,
    BootGptSwitch,
    BootRawFallback,
}

const SLOT_TYPES: &[(&str, SlotType)] = &[
    ("raw", SlotType::Raw),
    ("ext4", SlotType::Ext4),
    ("vfat", SlotType::Vfat),
    ("nand", SlotType::Nand),
    ("nor", SlotType::Nor),
    ("ubivol", SlotType::Ubivol),
    ("ubifs", SlotType::Ubifs),
    ("jffs2", SlotType::Jffs2),
    ("boot-emmc", SlotType::BootEmmc),
    ("boot-mbr-switch", SlotType::BootMbrSwitch),
    ("boot-gpt-switch", SlotType::BootGptSwitch),
    ("boot-raw-fallback", SlotType::BootRawFallback),
];

impl SlotType {
    pub fn parse(s: &str) -> Result<Self, SlotConfigError> {
        SLOT_TYPES
            .iter()
            .find(|(n, _)| *n == s)
            .map(|(_, t)| *t)
            .ok_or_else(|| SlotConfigError::UnknownType(s.to_string()))
    }

    pub fn as_str(self) -> &'static str {
        SLOT_TYPES
            .iter()
            .find(|(_, t)| *t == self)
            .map(|(n, _)| *n)
            .unwrap_or("raw")
    }

    /// Whether an image is installed by streaming it verbatim onto the device (RAUC's
    /// `img_to_raw` / `img_to_fs` for filesystem images). The others need mkfs, flash tools
    /// or partition-table switching, which this engine does not do.
    pub fn is_block_copy(self) -> bool {
        matches!(self, SlotType::Raw | SlotType::Ext4 | SlotType::Vfat)
    }
}

/// One configured slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    pub id: SlotId,
    pub device: PathBuf,
    pub slot_type: SlotType,
    pub bootname: Option<SlotName>,
    pub parent: Option<SlotId>,
    pub readonly: bool,
}

/// Whether a slot is running (RAUC's `ST_BOOTED/ACTIVE/INACTIVE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotActivity {
    Booted,
    Active,
    Inactive,
}

impl SlotActivity {
    pub fn as_str(self) -> &'static str {
        match self {
            SlotActivity::Booted => "booted",
            SlotActivity::Active => "active",
            SlotActivity::Inactive => "inactive",
        }
    }
}

/// What the system booted from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Booted {
    Slot(SlotId),
    /// `rauc.external` (or NFS root): no slot is running, every slot is inactive.
    External,
}

/// All configured slots, validated: unique names and bootnames, parents exist, no loops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotTable {
    slots: Vec<Slot>,
}

impl SlotTable {
    pub fn new(slots: Vec<Slot>) -> Result<Self, SlotConfigError> {
        for (i, s) in slots.iter().enumerate() {
            if slots[..i].iter().any(|o| o.id == s.id) {
                return Err(SlotConfigError::DuplicateSlot(s.id.clone()));
            }
            if let Some(b) = &s.bootname {
                if slots[..i].iter().any(|o| o.bootname.as_ref() == Some(b)) {
                    return Err(SlotConfigError::DuplicateBootname(b.to_string()));
                }
            }
            if let Some(p) = &s.parent {
                if !slots.iter().any(|o| &o.id == p) {
                    return Err(SlotConfigError::UnknownParent {
                        slot: s.id.clone(),
                        parent: p.to_string(),
                    });
                }
            }
        }
        let table = SlotTable { slots };
        for s in &table.slots {
            table.root_checked(s)?;
        }
        Ok(table)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Slot> {
        self.slots.iter()
    }

    pub fn get(&self, id: &SlotId) -> Option<&Slot> {
        self.slots.iter().find(|s| &s.id == id)
    }

    pub fn has_class(&self, class: &str) -> bool {
        self.slots.iter().any(|s| s.id.class() == class)
    }

    /// Bootnames in configuration order, for the bootloader backends.
    pub fn bootnames(&self) -> Vec<SlotName> {
        self.slots
            .iter()
            .filter_map(|s| s.bootname.clone())
            .collect()
    }

    /// RAUC's match of the booted identifier: a bootname, a slot name, or a device path.
    pub fn find_booted(&self, ident: &str) -> Option<&Slot> {
        self.slots.iter().find(|s| {
            s.bootname.as_ref().is_some_and(|b| b.as_str() == ident)
                || s.id.to_string() == ident
                || s.device.as_os_str() == ident
        })
    }

    /// The top of `slot`'s parent chain.
    pub fn root<'a>(&'a self, slot: &'a Slot) -> &'a Slot {
        // `new` checked that every chain ends at a root.
        self.root_checked(slot).unwrap_or(slot)
    }

    fn root_checked<'a>(&'a self, slot: &'a Slot) -> Result<&'a Slot, SlotConfigError> {
        let mut cur = slot;
        for _ in 0..=self.slots.len() {
            match cur.parent.as_ref().and_then(|p| self.get(p)) {
                Some(parent) => cur = parent,
                None => return Ok(cur),
            }
        }
        Err(SlotConfigError::ParentLoop(slot.id.clone()))
    }

    /// RAUC 1.8 `determine_slot_states`.
    pub fn activity(&self, slot: &Slot, booted: &Booted) -> SlotActivity {
        let Booted::Slot(b) = booted else {
            return SlotActivity::Inactive;
        };
        if &slot.id == b {
            SlotActivity::Booted
        } else if slot.parent.as_ref() == Some(b) {
            SlotActivity::Active
        } else {
            SlotActivity::Inactive
        }
    }

    /// RAUC 1.8 `determine_target_install_group`: class → slot to install into. Roots of the
    /// booted slot's group are never inactive, so neither they nor their children appear.
    pub fn target_group(&self, booted: &Booted) -> BTreeMap<String, &Slot> {
        let mut chosen_roots: Vec<&Slot> = Vec::new();
        for root in self.slots.iter().filter(|s| s.parent.is_none()) {
            let class = root.id.class();
            if chosen_roots.iter().any(|c| c.id.class() == class) {
                continue;
            }
            let pick = self.slots.iter().find(|s| {
                s.parent.is_none()
                    && s.id.class() == class
                    && self.activity(s, booted) == SlotActivity::Inactive
                    && !self.in_booted_group(s, booted)
            });
            chosen_roots.extend(pick);
        }
        let mut group = BTreeMap::new();
        for s in &self.slots {
            let root = self.root(s);
            // Defence in depth: even with odd configs, nothing of the booted group is a target.
            if chosen_roots.iter().any(|c| c.id == root.id) && !self.in_booted_group(s, booted) {
                group.entry(s.id.class().to_string()).or_insert(s);
            }
        }
        group
    }

    /// Whether `slot` is the booted slot or shares its root (is running or mounted from it).
    pub fn in_booted_group(&self, slot: &Slot, booted: &Booted) -> bool {
        let Booted::Slot(b) = booted else {
            return false;
        };
        let Some(booted_slot) = self.get(b) else {
            return false;
        };
        &slot.id == b || self.root(slot).id == self.root(booted_slot).id
    }
}

#[cfg(test)]
pub(crate) mod tests;
