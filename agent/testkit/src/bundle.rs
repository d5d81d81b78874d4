//! Bundles made with the real `rauc bundle`.

use std::path::Path;
use std::process::Command;

use crate::cmd::run;
use crate::pki::Pki;

/// A `manifest.raucm`: `[update]`, `[bundle] format=`, and one `[image.CLASS] filename=` per
/// image, in the layout `rauc bundle` users write by hand.
pub struct Manifest<'a> {
    pub compatible: &'a str,
    pub version: &'a str,
    pub description: &'a str,
    pub build: &'a str,
    /// `plain` or `verity`.
    pub format: &'a str,
    /// `(slot class, file name)`.
    pub images: &'a [(&'a str, &'a str)],
}

impl Manifest<'_> {
    pub fn text(&self) -> String {
        let mut text = format!(
            "[update]\ncompatible={}\nversion={}\ndescription={}\nbuild={}\n\n\
             [bundle]\nformat={}\n",
            self.compatible, self.version, self.description, self.build, self.format
        );
        for (class, file) in self.images {
            text.push_str(&format!("\n[image.{class}]\nfilename={file}\n"));
        }
        text
    }
}

/// Writes `manifest` into the content folder `content` (which holds the image files) and
/// runs `rauc bundle` signed by `pki`'s signer `signer`, replacing `out`. The manifest is
/// written fresh each time: `rauc bundle` rewrites it in place.
pub fn rauc_bundle(content: &Path, manifest: &Manifest<'_>, pki: &Pki, signer: &str, out: &Path) {
    std::fs::create_dir_all(content).unwrap();
    std::fs::write(content.join("manifest.raucm"), manifest.text()).unwrap();
    let _ = std::fs::remove_file(out);
    run(Command::new("rauc")
        .arg("bundle")
        .arg(format!("--cert={}", pki.cert(signer).display()))
        .arg(format!("--key={}", pki.key(signer).display()))
        .arg(content)
        .arg(out));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_text_has_rauc_layout() {
        let m = Manifest {
            compatible: "C",
            version: "1",
            description: "d",
            build: "b",
            format: "plain",
            images: &[("rootfs", "rootfs.img"), ("appfs", "appfs.img")],
        };
        assert_eq!(
            m.text(),
            "[update]\ncompatible=C\nversion=1\ndescription=d\nbuild=b\n\n[bundle]\nformat=plain\n\n\
             [image.rootfs]\nfilename=rootfs.img\n\n[image.appfs]\nfilename=appfs.img\n"
        );
    }
}
