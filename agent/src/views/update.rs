//! JSON documents of the update endpoints (`/v1/install`, `/v1/slots`, `/v1/slots/mark`),
//! served by the API and read by outpostctl. Field names follow RAUC's where it has one.

use serde::{Deserialize, Serialize};

/// `POST /v1/install` body.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstallRequest {
    /// Absolute path of the bundle on the device.
    pub bundle: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InstallState {
    /// No install since the agent started.
    Idle,
    Running,
    Succeeded,
    Failed,
}

/// `GET /v1/install`: the running install's progress, or the last one's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstallView {
    pub state: InstallState,
    /// 0..=100, never decreasing within one install.
    pub percent: u8,
    /// RAUC's step message ("Copying image to rootfs.1").
    pub step: String,
    pub bundle: Option<String>,
    /// Bundle `compatible` and `version`, once it is verified.
    pub compatible: Option<String>,
    pub version: Option<String>,
    /// One line; set when `state` is `failed`.
    pub error: Option<String>,
    pub started_ms: Option<i64>,
    pub finished_ms: Option<i64>,
    /// Slots written, with their byte counts, and slots made primary.
    pub written: Vec<WrittenSlot>,
    pub activated: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WrittenSlot {
    pub slot: String,
    pub bytes: u64,
}

impl InstallView {
    pub fn idle() -> Self {
        InstallView {
            state: InstallState::Idle,
            percent: 0,
            step: String::new(),
            bundle: None,
            compatible: None,
            version: None,
            error: None,
            started_ms: None,
            finished_ms: None,
            written: Vec::new(),
            activated: Vec::new(),
        }
    }
}

/// `GET /v1/slots`: what `rauc status` shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotsView {
    pub compatible: String,
    /// `grub`, `uboot`, `custom` or `rpi-tryboot`.
    pub bootloader: String,
    /// Booted slot (`rootfs.0`), `"external"`, or null when it cannot be determined.
    pub booted: Option<String>,
    /// Why `booted` is null.
    pub booted_error: Option<String>,
    /// The slot the bootloader boots next (RAUC's "Activated").
    pub primary: Option<String>,
    pub slots: Vec<SlotView>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotView {
    /// `<class>.<index>`.
    pub name: String,
    pub class: String,
    pub device: String,
    #[serde(rename = "type")]
    pub slot_type: String,
    pub bootname: Option<String>,
    pub parent: Option<String>,
    /// `booted`, `active` or `inactive`.
    pub state: String,
    /// `good`, `bad`, or null (no bootname, or the bootloader could not be read).
    pub boot_status: Option<String>,
    /// The central status file's keys for this slot.
    pub status: SlotStatusView,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotStatusView {
    pub bundle_compatible: Option<String>,
    pub bundle_version: Option<String>,
    pub bundle_description: Option<String>,
    pub bundle_build: Option<String>,
    pub bundle_hash: Option<String>,
    pub status: Option<String>,
    pub sha256: Option<String>,
    pub size: Option<u64>,
    pub installed_timestamp: Option<String>,
    pub installed_count: u64,
    pub activated_timestamp: Option<String>,
    pub activated_count: u64,
}

/// `POST /v1/slots/mark` body.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarkRequest {
    /// `good`, `bad` or `active`.
    pub state: String,
    /// `booted` (default), `other` or `<class>.<index>`.
    #[serde(default = "booted")]
    pub slot: String,
}

fn booted() -> String {
    "booted".to_owned()
}

/// `POST /v1/slots/mark` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarkView {
    pub slot: String,
    /// RAUC's message ("marked slot rootfs.1 as good").
    pub message: String,
}
