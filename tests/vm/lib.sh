# Shared settings for the VM test scripts. Sourced, never run.
# Everything the VM tests download or build lives under $OUTPOST_VM_CACHE, so a second run
# reuses the Debian packages and (if its inputs did not change) the disk image.

set -euo pipefail

VM_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$VM_DIR/../.." && pwd)"
OUTPOST_VM_CACHE="${OUTPOST_VM_CACHE:-$HOME/.cache/outpost-vm}"
DEB_DIR="$OUTPOST_VM_CACHE/debs"
# The boot variant: `grub` (a standalone GRUB running RAUC's A/B script over grubenv) or
# `sdboot` (systemd-boot with Type #1 loader entries counting tries in their file names). Each
# has its own image (and bundle CA) in $VM_IMAGE_DIR; the scenarios run on either.
VM_BOOT="${OUTPOST_VM_BOOT:-grub}"
case "$VM_BOOT" in
    grub | sdboot) ;;
    *) printf '[vm] error: OUTPOST_VM_BOOT must be grub or sdboot, not %s\n' "$VM_BOOT" >&2; exit 1 ;;
esac
VM_IMAGE_DIR="$OUTPOST_VM_CACHE/image-$VM_BOOT"
# Binaries for the guest: a release build in its own target dir so it never waits on (or
# invalidates) the main debug build.
VM_TARGET_DIR="${VM_TARGET_DIR:-${CARGO_TARGET_DIR_VM:-/work/targets/vm}}"
# `release` (default) or `debug`: CI reuses the debug build it already made (stripped of
# debug info in the image; boots take ~30 s longer than with release binaries).
VM_PROFILE="${OUTPOST_VM_PROFILE:-release}"

log() { printf '[vm %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { printf '[vm] error: %s\n' "$*" >&2; exit 1; }

need() {
    local missing=()
    for tool in "$@"; do command -v "$tool" >/dev/null || missing+=("$tool"); done
    ((${#missing[@]} == 0)) || die "missing tools: ${missing[*]} (run scripts/setup, or apt-get install the packages listed in tests/vm/README.md)"
}

# The root of an extracted Debian package (from fetch-debs), e.g. "$(pkg_root busybox-static)".
pkg_root() {
    local dir="$DEB_DIR/$1.root"
    [[ -d $dir ]] || die "package $1 is not extracted: run tests/vm/fetch-debs"
    printf '%s\n' "$dir"
}
