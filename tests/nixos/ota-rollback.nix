# ota-rollback: a v3 whose required health check fails is rolled back to v2 without any manual
# step, and the failure reaches the hub:
#   1. the hub VM makes a fleet; the device (v1 image) gets its identity at run time;
#   2. v2 is installed into B, booted and committed (as in ota-commit);
#   3. v3 (the same system, plus a required self-test that exits 3, listed as fatal) is installed
#      into A and armed: outpost_3-A+3.conf;
#   4. reboot: A runs v3, the gate fails at once, marks A bad and reboots the VM itself;
#   5. systemd-boot skips A (0 tries left) and boots B: v2 again, A's entry stays bad;
#   6. the hub holds the outpost.health records: v3 `failed` and `rolled-back` to B.
{ outpost, ... }:

let
  inherit (import ./lib/hub.nix) fleet identity hubNode hubClient identityFiles;
  keyring = "/var/lib/outpost-update/bundle-ca.pem";
in
{
  name = "outpost-ota-rollback";

  nodes.hub = hubNode;

  nodes.device =
    { pkgs, ... }:
    {
      imports = [
        ./lib/boot-image.nix
        ./lib/versions.nix
        hubClient
        identityFiles
      ];
      outpost.ab.keyring = keyring;
      outpost.test.versions = {
        "2.0.0" = { };
        "3.0.0" = {
          services.outpost.agent.settings.health.checks = [
            {
              # Fails for good, after a while: the test sees v3 running before the reboot.
              name = "selftest";
              kind = "command";
              command = [
                "${pkgs.bash}/bin/sh"
                "-c"
                "sleep 30; echo 'v3 self-test: broken' >&2; exit 3"
              ];
              fatal_exit_codes = [ 3 ];
              timeout = "60s";
            }
          ];
        };
      };
      # The identity arrives during the test: until then the agent is skipped, not failed (a
      # missing LoadCredential= source fails the unit, and repeated failures reboot the device).
      systemd.services.outpost-agent.unitConfig.ConditionPathExists = "${identity}/device.key";
    };

  testScript =
    { nodes, ... }:
    let
      bundles = nodes.device.system.build.outpostBundles;
    in
    ''
      ${outpost.driver}

      pki = release_pki("${outpost.tools.openssl}")
      v2 = sign_bundle(pki, "${bundles."2.0.0"}", "v2.raucb", "${outpost.tools.rauc}", "${outpost.tools.path}")
      v3 = sign_bundle(pki, "${bundles."3.0.0"}", "v3.raucb", "${outpost.tools.rauc}", "${outpost.tools.path}")

      boot_with_hub(hub, device, "${outpost.image nodes.device}", "${outpost.qemuImg}")

      with subtest("fleet and device identity, carried at run time"):
          make_fleet(hub, "${fleet}")
          hub.succeed("systemctl start outpost-hub.service")
          carry_identity(hub, device, "${fleet}", "${identity}")
          device.succeed("systemctl start outpost-agent.service")
          device.wait_until_succeeds("outpostctl slots --json")

      with subtest("v2 into B, booted and committed"):
          install(device, pki, v2, "${keyring}")
          device.reboot()
          device.wait_for_unit("multi-user.target")
          assert os_version(device) == "2.0.0"
          device.wait_until_succeeds("outpostctl health --wait --timeout 1m", timeout=600)
          device.wait_until_succeeds("test -e /boot/loader/entries/outpost_2-B.conf", timeout=60)

      with subtest("v3 into A, armed as a trial"):
          install(device, pki, v3, "${keyring}")
          assert entries(device) == ["outpost_2-B.conf", "outpost_3-A+3.conf"], entries(device)

      with subtest("v3 fails its gate; the agent marks A bad and reboots by itself"):
          device.reboot()
          device.wait_for_unit("multi-user.target")
          assert os_version(device) == "3.0.0"
          # Nothing is done from here on: the gate decides, the VM reboots on its own.
          await_guest_reboot(device)
          device.wait_for_unit("multi-user.target")

      with subtest("systemd-boot fell back to B: v2, and A stays bad"):
          assert "outpost.slot=B" in device.succeed("cat /proc/cmdline").split()
          assert os_version(device) == "2.0.0"
          assert "outpost_2-B.conf" in entries(device), entries(device)
          assert any(e.startswith("outpost_3-A+0-") for e in entries(device)), entries(device)
          device.wait_until_succeeds("outpostctl slots --json")
          s = slots(device)
          assert s["booted"] == "rootfs.1" and s["primary"] == "rootfs.1", s
          assert {x["name"]: x for x in s["slots"]}["rootfs.0"]["boot_status"] == "bad", s

      with subtest("the hub holds the failure and the rollback"):
          def decisions() -> list:
              return json.loads(hub.succeed(
                  "outpost-hub records --config ${fleet}/hub.toml --stream outpost.health --json"
              ))
          hub.wait_until_succeeds(
              "outpost-hub records --config ${fleet}/hub.toml --stream outpost.health --json "
              "| jq -e 'map(.payload.result) | index(\"rolled-back\") != null'",
              timeout=300,
          )
          by_result = {r["payload"]["result"]: r["payload"] for r in decisions()}
          assert by_result["failed"]["slot"] == "rootfs.0", by_result
          assert "selftest" in (by_result["failed"]["reason"] or ""), by_result
          assert by_result["rolled-back"]["booted_slot"] == "rootfs.1", by_result
          assert by_result["committed"]["slot"] == "rootfs.1", by_result
    '';
}
