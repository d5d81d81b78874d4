# boot: the qemu-x86_64 disk image, booted by OVMF and systemd-boot (not direct kernel boot):
#   1. systemd-boot starts the factory entry of slot A (outpost_1-A.conf), whose command line
#      names the slot; the store mounted is slot A's partition, read-only;
#   2. the agent is active and reports the slots from the layout: booted = primary = rootfs.0,
#      systemd-boot as bootloader, B a separate partition;
#   3. / is a tmpfs and /etc and /nix/store are read-only: nothing can be written outside /var;
#   4. after a reboot, a file on /var is still there and one on / is gone.
{ outpost, ... }:
{
  name = "outpost-boot";

  nodes.device = {
    imports = [ ./lib/boot-image.nix ];
  };

  testScript =
    { nodes, ... }:
    ''
      ${outpost.driver}

      boot_image(device, "${outpost.image nodes.device}", "${outpost.qemuImg}")
      device.wait_for_unit("multi-user.target")

      with subtest("systemd-boot booted slot A's factory entry; A's store is mounted read-only"):
          status = device.succeed("bootctl status")
          assert "outpost_1-A.conf" in status, status
          cmdline = device.succeed("cat /proc/cmdline").split()
          assert "outpost.slot=A" in cmdline, cmdline
          store = device.succeed("readlink -f /dev/outpost/store").strip()
          assert store == device.succeed("readlink -f /dev/disk/by-partlabel/outpost-store-a").strip()
          # The file system at /nix/store is that partition (boot.readOnlyNixStore may add a
          # read-only bind mount on top: compare device numbers).
          mounted = device.succeed("findmnt -fno MAJ:MIN /nix/store").strip()
          assert mounted == device.succeed(f"lsblk -dno MAJ:MIN {store}").strip(), (mounted, store)
          assert "ro" in device.succeed("findmnt -fno OPTIONS /nix/store").strip().split(",")
          device.fail("touch /nix/store/outpost-test")

      with subtest("the agent runs and reports the layout's slots"):
          device.wait_for_unit("outpost-agent.service")
          device.wait_until_succeeds("outpostctl slots --json")
          s = slots(device)
          assert s["bootloader"] == "systemd-boot", s
          assert s["booted"] == "rootfs.0" and s["primary"] == "rootfs.0", s
          by_name = {x["name"]: x for x in s["slots"]}
          assert by_name["rootfs.0"]["bootname"] == "A" and by_name["rootfs.1"]["bootname"] == "B", s
          assert by_name["rootfs.1"]["device"] == "/dev/disk/by-partlabel/outpost-store-b", s
          assert by_name["boot.1"]["parent"] == "rootfs.1", s
          assert by_name["rootfs.0"]["boot_status"] == "good", s
          # The factory image is not a trial: the gate has nothing to decide.
          device.succeed("outpostctl health --wait --timeout 2m")

      with subtest("only /var is writable and persistent"):
          assert device.succeed("findmnt -no FSTYPE /").strip() == "tmpfs"
          device.fail("touch /etc/outpost-test")
          device.succeed("mkdir -p /var/lib/outpost-test && echo kept > /var/lib/outpost-test/marker")
          device.succeed("echo lost > /marker")

      with subtest("after a reboot /var kept its file, / did not; still slot A"):
          device.reboot()
          device.wait_for_unit("multi-user.target")
          assert device.succeed("cat /var/lib/outpost-test/marker").strip() == "kept"
          device.fail("test -e /marker")
          assert "outpost.slot=A" in device.succeed("cat /proc/cmdline").split()
          device.wait_for_unit("outpost-agent.service")
          device.wait_until_succeeds("outpostctl slots --json")
          assert slots(device)["booted"] == "rootfs.0"
    '';
}
