# The hub VM of the tests and a device's link to it (agent-outbox, identity, ota-rollback,
# outbox-partition). The fleet (CA, hub.toml, device identities) is made by `outpost-hub init`
# during the test and the device's identity is carried over then (lib/driver.py make_fleet,
# carry_identity), so no key is ever in the Nix store; the test script starts the hub service
# once hub.toml exists.
rec {
  # On the hub: the fleet `outpost-hub init` makes.
  fleet = "/var/lib/fleet";
  # On the device: its identity from the fleet (hub-ca.pem, device.pem, device.key).
  identity = "/var/lib/outpost-identity";

  # The hub node: outpost-hub and its CLI.
  hubNode =
    { pkgs, outpostPackages, ... }:
    {
      environment.systemPackages = [
        outpostPackages.outpost-hub
        pkgs.jq
      ];
      networking.firewall.allowedTCPPorts = [ 8443 ];
      systemd.services.outpost-hub = {
        description = "Outpost hub (test)";
        serviceConfig = {
          ExecStart = "${outpostPackages.outpost-hub}/bin/outpost-hub serve --config ${fleet}/hub.toml";
          Restart = "on-failure";
        };
      };
    };

  # A device module: the agent uploads to the hub node, trusting the fleet's CA, and retries
  # quickly (the tests keep the hub down or cut the link).
  hubClient = {
    services.outpost.agent = {
      settings.uploader = {
        backoff_base_ms = 200;
        backoff_cap_ms = 2000;
      };
      hub = {
        url = "https://hub:8443";
        caFile = "${identity}/hub-ca.pem";
      };
    };
  };

  # With hubClient: the device's certificate and key are the files in `identity` (an agent that
  # enrolls, [identity], gets its certificate from the hub instead).
  identityFiles.services.outpost.agent.hub = {
    certFile = "${identity}/device.pem";
    keyFile = "${identity}/device.key";
  };
}
