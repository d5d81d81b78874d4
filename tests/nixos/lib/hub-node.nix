# The hub VM of the tests: outpost-hub and its CLI. The fleet (CA, hub.toml, device identities)
# is made by `outpost-hub init` during the test, so no key is ever in the Nix store; the service
# is started by the test script once hub.toml exists.
{ fleet }:
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
}
