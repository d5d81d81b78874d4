"""Lays out the uefi image's ESP (tests/nixos/eval.nix --arg espFiles true, JSON on stdin) and
asks the real bootctl which entry systemd-boot would boot: the factory entries must be listed
and A must be the default; renamed as the agent's systemd-boot backend renames them
(docs/updates.md), a fresh trial of B must become the default and a failed one must not.
bootctl needs the ESP to be a mount point: it is bind-mounted onto itself in a private mount
namespace (unshare -m), as the agent's own bootctl tests do; so this runs as root only.
Exit status 1 on any finding."""
import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile


def menu(esp: pathlib.Path) -> tuple[list, str]:
    """(entry ids in menu order, the default's id) as `bootctl list` shows them."""
    script = f"mount --bind '{esp}' '{esp}' && bootctl --esp-path='{esp}' --no-variables --no-pager list"
    out = subprocess.run(
        ["unshare", "-m", "sh", "-c", script],
        env=dict(os.environ, SYSTEMD_RELAX_ESP_CHECKS="1"),
        check=True, capture_output=True, text=True,
    ).stdout
    ids, default, is_default = [], "", False
    for line in out.splitlines():
        if re.match(r"\s*title: ", line):
            is_default = "(default)" in line
        elif m := re.match(r"\s*id: (\S+)", line):
            ids.append(m.group(1))
            if is_default:
                default = m.group(1)
    return ids, default


def main() -> int:
    files = json.load(sys.stdin)
    findings = []
    with tempfile.TemporaryDirectory() as tmp:
        esp = pathlib.Path(tmp)
        for path, text in files.items():
            target = esp / path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            if text is None:
                # Binaries (systemd-boot, UKIs) only need to exist for the listing.
                target.write_bytes(b"MZ" + bytes(62))
            else:
                target.write_text(text)
        entries = esp / "loader/entries"

        def expect(what: str, ids: list, default: str) -> None:
            got = menu(esp)
            if sorted(got[0]) != sorted(ids) or got[1] != default:
                findings.append(f"{what}: bootctl lists {got[0]}, default {got[1]!r}; expected {ids}, default {default!r}")

        expect("factory", ["outpost_1-A.conf", "outpost_0-B.conf"], "outpost_1-A.conf")
        (entries / "outpost_0-B.conf").rename(entries / "outpost_2-B+3.conf")
        expect("B armed (set_primary)", ["outpost_1-A.conf", "outpost_2-B.conf"], "outpost_2-B.conf")
        (entries / "outpost_2-B+3.conf").rename(entries / "outpost_2-B+0-1.conf")
        expect("B failed (mark bad)", ["outpost_1-A.conf", "outpost_2-B.conf"], "outpost_1-A.conf")
    for f in findings:
        print(f"  {f}", file=sys.stderr)
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
