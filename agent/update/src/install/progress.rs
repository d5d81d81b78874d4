//! Install progress as RAUC reports it: a percentage and the current step's message.
//!
//! Weights: every image byte is one unit; every other step (bootloader or status write) is
//! worth 1% of the image bytes, so a bundle of tiny images still moves the bar per step.

use super::plan::{Plan, Step};

/// One progress report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// 0..=100, never decreasing within one install.
    pub percent: u8,
    /// What is being done ("Copying image to rootfs.1").
    pub step: String,
}

pub(crate) struct ProgressMeter<'a> {
    sink: &'a mut dyn FnMut(Progress),
    total: u64,
    done: u64,
    small: u64,
    step: String,
    last: Option<u8>,
}

impl<'a> ProgressMeter<'a> {
    pub fn new(plan: &Plan, sink: &'a mut dyn FnMut(Progress)) -> Self {
        let bytes: u64 = plan.images.iter().map(|i| i.size).sum();
        let small = (bytes / 100).max(1);
        let others = plan
            .steps
            .iter()
            .filter(|s| !matches!(s, Step::WriteImage { .. }))
            .count() as u64;
        ProgressMeter {
            sink,
            total: bytes + others * small,
            done: 0,
            small,
            step: String::new(),
            last: None,
        }
    }

    /// Starts a step; the previous non-write step counts as done.
    pub fn begin(&mut self, step: String) {
        if !self.step.is_empty() && !self.step.starts_with("Copying") {
            self.done += self.small;
        }
        self.step = step;
        self.emit(true);
    }

    pub fn bytes(&mut self, n: u64) {
        self.done += n;
        self.emit(false);
    }

    pub fn finish(&mut self, step: &str) {
        self.done = self.total;
        self.step = step.to_string();
        self.emit(true);
    }

    fn emit(&mut self, always: bool) {
        let percent = (self.done.min(self.total) * 100 / self.total.max(1)) as u8;
        if always || self.last != Some(percent) {
            self.last = Some(percent);
            (self.sink)(Progress {
                percent,
                step: self.step.clone(),
            });
        }
    }
}
