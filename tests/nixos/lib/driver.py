# Helpers prepended to the VM tests' scripts (tests/nixos/default.nix).
# Test driver API: nixos/lib/test-driver/src/test_driver/machine/__init__.py.
import json
import os
import pathlib
import shutil
import subprocess
import tempfile


def boot_image(machine, image: str, qemu_img: str) -> None:
    """Start `machine` on a qcow2 overlay of the disk image `image` (a raw file in the store).

    The overlay is made once per test (later starts keep the disk, like a real device); as in
    nixpkgs' appliance-repart-image test, NIX_DISK_IMAGE tells the VM's start script which disk
    to use. It is set only around this start, so other nodes keep their own disks.
    """
    disk = machine.state_dir / "outpost-disk.qcow2"
    if not disk.exists():
        subprocess.run(
            [qemu_img, "create", "-f", "qcow2", "-F", "raw", "-b", image, str(disk)],
            check=True,
        )
    os.environ["NIX_DISK_IMAGE"] = str(disk)
    try:
        # allow_reboot: a reboot by the guest (the agent's health gate) resets the VM
        # instead of ending QEMU.
        machine.start(allow_reboot=True)
    finally:
        del os.environ["NIX_DISK_IMAGE"]


def slots(machine) -> dict:
    """`outpostctl slots --json`: booted and primary slot, each slot's state."""
    return json.loads(machine.succeed("outpostctl slots --json"))


def await_guest_reboot(machine) -> None:
    """Wait until the guest restarts by itself (the kernel's "reboot: Restarting system" on
    the console), then let the next command reconnect. Console lines read so far are dropped
    first, so an earlier reboot does not count: call it while the guest is still up."""
    while not machine.last_lines.empty():
        machine.last_lines.get_nowait()
    machine.wait_for_console_text("reboot: Restarting system")
    machine.connected = False


OPENSSL_CNF = """\
[ req ]
distinguished_name = dn
[ dn ]
[ v3_ca ]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[ v3_signer ]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""


def release_pki(openssl: str) -> pathlib.Path:
    """A throwaway bundle CA and release signer, made at test time in the driver's temporary
    folder (never in the Nix store), like scripts/demo-update. Returns the folder: ca.pem is
    the devices' keyring, signer.pem/signer.key sign bundles."""
    d = pathlib.Path(tempfile.mkdtemp(prefix="outpost-release-"))
    (d / "openssl.cnf").write_text(OPENSSL_CNF)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-config", "openssl.cnf"]
    run = lambda *a: subprocess.run([openssl, *a], cwd=d, check=True, capture_output=True)
    run("req", "-x509", *ec, "-days", "2", "-extensions", "v3_ca",
        "-keyout", "ca.key", "-out", "ca.pem", "-subj", "/CN=Outpost test bundle CA")
    run("req", *ec, "-keyout", "signer.key", "-out", "signer.csr", "-subj", "/CN=Outpost test release")
    run("x509", "-req", "-days", "2", "-in", "signer.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-extfile", "openssl.cnf", "-extensions", "v3_signer", "-out", "signer.pem")
    return d


def sign_bundle(pki: pathlib.Path, contents: str, name: str, rauc: str, tool_path: str) -> pathlib.Path:
    """`rauc bundle` of a bundle-<board> folder (images/bundle.nix), signed by the test signer.
    tool_path: mksquashfs and friends, which rauc runs."""
    out = pki / name
    subprocess.run(
        [rauc, "bundle", f"--cert={pki / 'signer.pem'}", f"--key={pki / 'signer.key'}", contents, str(out)],
        check=True,
        env=dict(os.environ, PATH=f"{tool_path}:{os.environ.get('PATH', '')}"),
    )
    return out


def install(machine, pki: pathlib.Path, bundle: pathlib.Path, keyring: str) -> None:
    """Copy the keyring and a bundle onto /var and install it with `outpostctl install`."""
    machine.copy_from_host(str(pki / "ca.pem"), keyring)
    target = f"/var/lib/outpost-bundles/{bundle.name}"
    machine.copy_from_host(str(bundle), target)
    machine.succeed(f"outpostctl install {target}", timeout=900)
    machine.succeed(f"rm {target}")


def entries(machine) -> list:
    """File names in the ESP's loader/entries (the agent renames them; systemd-boot counts)."""
    return sorted(machine.succeed("ls /boot/loader/entries").split())


def os_version(machine) -> str:
    return machine.succeed(". /etc/os-release; echo $IMAGE_VERSION").strip()


# Tests with the hub VM (lib/hub.nix): `fleet` and `identity` are the paths lib/hub.nix names,
# on the hub and on the device.


def boot_with_hub(hub, device, image: str, qemu_img: str) -> None:
    """Start the hub VM and boot `device` from its disk image (boot_image), both up to
    multi-user.target."""
    hub.start()
    boot_image(device, image, qemu_img)
    hub.wait_for_unit("multi-user.target")
    device.wait_for_unit("multi-user.target")


def make_fleet(hub, fleet: str) -> None:
    """`outpost-hub init` on the hub: CA, hub.toml (port 8443, certificate for the name `hub`)
    and device-001's identity, made at run time. The test starts outpost-hub.service after."""
    hub.succeed(f"outpost-hub init --dir {fleet} --devices 1 --listen 0.0.0.0:8443 --san hub")


def hub_to_device(hub, device, source: str, target: str) -> None:
    """Copy `source` (a file or folder) from the hub VM to `target` on the device, through the
    driver's output folder, where nothing is left (no test key in the test's output)."""
    hub.copy_from_vm(source, "fleet")
    device.copy_from_host(str(hub.out_dir / "fleet" / os.path.basename(source)), target)
    shutil.rmtree(hub.out_dir / "fleet")


def carry_identity(hub, device, fleet: str, identity: str) -> None:
    """device-001's identity (hub-ca.pem, device.pem, device.key) from the fleet to `identity`
    on the device, the key readable by root only."""
    hub_to_device(hub, device, f"{fleet}/devices/device-001", identity)
    device.succeed(f"chmod 0700 {identity}", f"chmod 0600 {identity}/device.key")
