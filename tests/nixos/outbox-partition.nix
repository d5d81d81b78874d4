# outbox-partition: the device (booted from its image) loses its network, keeps publishing, and
# the hub ends up with every record exactly once:
#   1. the hub VM makes a fleet; the device identity is carried over at run time (no key in
#      the Nix store); one record on another stream goes through, so the link is known to work;
#   2. the device's network link is cut (QEMU set_link off: Machine.block());
#   3. 50 records are published with `outpostctl publish`; the hub receives none of them and the
#      device holds them;
#   4. the link is restored: the hub holds exactly the 50 records, each id once, checksums good,
#      and still exactly 50 after further upload rounds; the outbox drains.
{ lib, outpost, ... }:

let
  inherit (import ./lib/hub.nix) fleet identity hubNode hubClient identityFiles;
in
{
  name = "outpost-outbox-partition";

  nodes.hub = hubNode;

  nodes.device = {
    imports = [
      ./lib/boot-image.nix
      hubClient
      identityFiles
    ];
    # The identity arrives during the test; the script starts the agent after that.
    systemd.services.outpost-agent.wantedBy = lib.mkForce [ ];
  };

  testScript =
    { nodes, ... }:
    ''
      ${outpost.driver}

      def hub_records() -> list:
          return json.loads(hub.succeed("outpost-hub records --config ${fleet}/hub.toml --stream readings --json"))

      boot_with_hub(hub, device, "${outpost.image nodes.device}", "${outpost.qemuImg}")

      with subtest("fleet and identity; one record proves the link"):
          make_fleet(hub, "${fleet}")
          hub.succeed("systemctl start outpost-hub.service")
          hub.wait_for_open_port(8443)
          carry_identity(hub, device, "${fleet}", "${identity}")
          device.succeed("systemctl start outpost-agent.service")
          device.wait_for_unit("outpost-agent.service")
          device.succeed("outpostctl publish probe '{\"link\": \"up\"}'")
          hub.wait_until_succeeds(
              "outpost-hub records --config ${fleet}/hub.toml --stream probe --json | jq -e 'length == 1'", timeout=120
          )

      with subtest("network cut: 50 records are accepted and kept on the device"):
          device.block()
          for n in range(1, 51):
              device.succeed(f"outpostctl publish readings '{{\"n\": {n}}}'")
          # Several upload attempts fail meanwhile (backoff capped at 2 s).
          device.sleep(15)
          assert hub_records() == [], "records crossed a cut link"
          device.succeed("outpostctl outbox --json | jq -e '.totals.pending >= 50'")

      with subtest("link restored: the hub holds every record exactly once"):
          device.unblock()
          hub.wait_until_succeeds(
              "outpost-hub records --config ${fleet}/hub.toml --stream readings --json | jq -e 'length == 50'", timeout=300
          )
          device.wait_until_succeeds(
              "outpostctl outbox --json | jq -e '.totals.pending == 0'",
              timeout=120,
          )
          # More upload rounds: nothing is sent twice.
          device.sleep(10)
          records = hub_records()
          assert len(records) == 50, f"{len(records)} rows for 50 records"
          assert len({r["id"] for r in records}) == 50, "a record id is stored twice"
          assert sorted(r["payload"]["n"] for r in records) == list(range(1, 51))
          stats = json.loads(hub.succeed("outpost-hub stats --config ${fleet}/hub.toml --json"))
          assert all(s["checksums_bad"] == 0 for s in stats), stats
    '';
}
