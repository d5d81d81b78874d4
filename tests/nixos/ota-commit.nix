# ota-commit: a v2 bundle built from the same configuration with another version installs into
# slot B, the VM reboots through systemd-boot into B, and the health gate commits it:
#   1. boot the v1 image (slot A); sign the v2 bundle contents with a release key made now;
#   2. `outpostctl install`: slot B written (store partition + its UKI file), B's entry renamed
#      to a trial with 3 tries above A (outpost_2-B+3.conf);
#   3. reboot: systemd-boot boots B as a counted trial, which runs v2 (IMAGE_VERSION, cmdline);
#   4. the gate's checks pass: B is committed (outpost_2-B.conf, no counter), slots say so;
#   5. reboot again: still B and v2 (committed, not a trial).
{ outpost, ... }:

let
  keyring = "/var/lib/outpost-update/bundle-ca.pem";
in
{
  name = "outpost-ota-commit";

  nodes.device = {
    imports = [
      ./lib/boot-image.nix
      ./lib/versions.nix
    ];
    outpost.ab.keyring = keyring;
    outpost.test.versions."2.0.0" = { };
  };

  testScript =
    { nodes, ... }:
    ''
      ${outpost.driver}

      pki = release_pki("${outpost.tools.openssl}")
      v2 = sign_bundle(pki, "${nodes.device.system.build.outpostBundles."2.0.0"}", "v2.raucb", "${outpost.tools.rauc}", "${outpost.tools.path}")

      boot_image(device, "${outpost.image nodes.device}", "${outpost.qemuImg}")
      device.wait_for_unit("outpost-agent.service")
      device.wait_until_succeeds("outpostctl slots --json")
      assert os_version(device) == "1.0.0"
      assert entries(device) == ["outpost_0-B.conf", "outpost_1-A.conf"], entries(device)

      with subtest("v2 installs into slot B, armed as a trial above A"):
          install(device, pki, v2, "${keyring}")
          s = slots(device)
          assert s["booted"] == "rootfs.0" and s["primary"] == "rootfs.1", s
          assert entries(device) == ["outpost_1-A.conf", "outpost_2-B+3.conf"], entries(device)

      with subtest("reboot: systemd-boot tries B, which runs v2"):
          device.reboot()
          device.wait_for_unit("multi-user.target")
          assert "outpost.slot=B" in device.succeed("cat /proc/cmdline").split()
          assert os_version(device) == "2.0.0"
          # systemd-boot booted a counted entry (nixpkgs nixos/tests/systemd-boot.nix checks the same).
          device.succeed("test -e /sys/firmware/efi/efivars/LoaderBootCountPath-4a67b082-0a4c-41cf-b6c7-440b29bb8c4f")

      with subtest("the health gate commits B"):
          device.wait_until_succeeds("outpostctl health --wait --timeout 1m", timeout=600)
          device.wait_until_succeeds("test -e /boot/loader/entries/outpost_2-B.conf", timeout=60)
          assert entries(device) == ["outpost_1-A.conf", "outpost_2-B.conf"], entries(device)
          s = slots(device)
          assert s["booted"] == "rootfs.1" and s["primary"] == "rootfs.1", s
          assert {x["name"]: x for x in s["slots"]}["rootfs.1"]["boot_status"] == "good", s

      with subtest("committed: the next boot is B with v2 again"):
          device.reboot()
          device.wait_for_unit("multi-user.target")
          assert "outpost.slot=B" in device.succeed("cat /proc/cmdline").split()
          assert os_version(device) == "2.0.0"
          assert entries(device) == ["outpost_1-A.conf", "outpost_2-B.conf"], entries(device)
    '';
}
