# The outbox end to end on two VMs, with the agent as the NixOS module runs it:
#   1. the hub VM makes a fleet (CA, hub config, one device identity); the identity is carried to
#      the device VM at run time, so no key is ever in the Nix store;
#   2. the device agent starts while the hub service is down, and an application user (member of
#      the agent's group) publishes 25 records; a user outside the group is refused;
#   3. the device loses power (crash(): QEMU quits, no shutdown) and boots again;
#   4. the hub service starts, and every acknowledged record arrives exactly once with a valid
#      checksum; the device's outbox drains.
# Test driver API: nixos/lib/test-driver/src/test_driver/machine/__init__.py (crash, start,
# copy_from_vm, copy_from_host, wait_until_succeeds, out_dir).
{ lib, outpost, ... }:

let
  inherit (import ./lib/hub.nix) fleet identity hubNode hubClient identityFiles;
  socket = "/run/outpost/agent.sock";
in
{
  name = "outpost-agent-outbox";

  nodes.hub = hubNode;

  nodes.device =
    { pkgs, outpostPackages, ... }:
    {
      imports = [
        hubClient
        identityFiles
      ];
      environment.systemPackages = [
        pkgs.curl
        pkgs.jq
      ];
      users.users.app = {
        isNormalUser = true;
        extraGroups = [ "outpost" ];
      };
      services.outpost.agent = {
        enable = true;
        package = outpostPackages.outpost-agent;
        settings = {
          device_id = "device-001";
          outbox.streams.alarms.priority = "critical";
        };
      };
      # The identity arrives during the test; the script starts the agent after that.
      systemd.services.outpost-agent.wantedBy = lib.mkForce [ ];
    };

  testScript = ''
    ${outpost.driver}

    def publish(user: str, stream: str, body: dict) -> str:
        out = device.succeed(
            f"runuser -u {user} -- curl --silent --show-error --fail "
            f"--unix-socket ${socket} -H 'content-type: application/json' "
            f"--data-binary '{json.dumps(body)}' --write-out '\\n%{{http_code}}' "
            f"http://localhost/v1/outbox/{stream}"
        )
        answer, code = out.strip().rsplit("\n", 1)
        assert code == "202", f"publish answered {code}: {answer}"
        return json.loads(answer)["id"]

    start_all()
    hub.wait_for_unit("multi-user.target")
    device.wait_for_unit("multi-user.target")

    with subtest("the hub makes a fleet; the device identity travels outside the store"):
        make_fleet(hub, "${fleet}")
        carry_identity(hub, device, "${fleet}", "${identity}")
        device.succeed("grep -q /run/credentials/outpost-agent.service/device.key /etc/outpost/agent.toml")
        device.fail("grep -q ${identity} /etc/outpost/agent.toml")

    with subtest("the agent runs as confined root, ready before the hub exists"):
        device.succeed("systemctl start outpost-agent.service")
        device.wait_for_unit("outpost-agent.service")

        def show(prop: str) -> str:
            return device.succeed(f"systemctl show -P {prop} outpost-agent.service").strip()

        assert show("User") == "root"
        assert show("CapabilityBoundingSet") == "cap_sys_boot", show("CapabilityBoundingSet")
        assert show("DevicePolicy") == "closed"
        device.succeed("test -S ${socket}")
        assert device.succeed("stat -c %G:%a ${socket}").strip() == "outpost:660"

    ids: set[str] = set()
    with subtest("publish while the hub is down; only the agent's group may publish"):
        for n in range(20):
            ids.add(publish("app", "temperature", {"celsius": 18 + n / 10, "n": n}))
        for n in range(5):
            ids.add(publish("app", "alarms", {"door": "open", "n": n}))
        assert len(ids) == 25, f"expected 25 distinct ids, got {len(ids)}"
        device.fail(
            "runuser -u nobody -- curl --silent --fail --unix-socket ${socket} "
            "--data-binary '{}' http://localhost/v1/outbox/temperature"
        )

    with subtest("power cut: acknowledged records survive"):
        device.crash()
        device.start()
        device.wait_for_unit("multi-user.target")
        device.succeed("systemctl start outpost-agent.service")
        device.wait_for_unit("outpost-agent.service")

    with subtest("the hub comes up; every record arrives exactly once, checksums intact"):
        hub.succeed("systemctl start outpost-hub.service")
        hub.wait_for_unit("outpost-hub.service")
        hub.wait_until_succeeds(
            "test \"$(outpost-hub stats --config ${fleet}/hub.toml --json | jq '[.[].records] | add')\" = 25",
            timeout=300,
        )
        stats = json.loads(hub.succeed("outpost-hub stats --config ${fleet}/hub.toml --json"))
        assert all(s["checksums_bad"] == 0 for s in stats), stats
        per_stream = {s["stream"]: s["records"] for s in stats}
        assert per_stream == {"alarms": 5, "temperature": 20}, per_stream
        records = json.loads(hub.succeed("outpost-hub records --config ${fleet}/hub.toml --json"))
        assert len(records) == 25, f"{len(records)} stored rows for 25 records"
        assert {r["id"] for r in records} == ids, "stored ids differ from acknowledged ids"
        assert {r["device"] for r in records} == {"device-001"}

    with subtest("the device's outbox drains"):
        device.wait_until_succeeds(
            "test \"$(curl --silent --fail --unix-socket ${socket} http://localhost/v1/status "
            "| jq '[.. | objects | select(has(\"pending\")) | .pending] | first // 0')\" = 0",
            timeout=120,
        )
  '';
}
