# All Outpost NixOS modules. Each is inert until its enable option is set.
# services.outpost.agent.package defaults to pkgs.outpost-agent: add the flake's
# overlays.default to nixpkgs.overlays, or set the package option.
{
  imports = [
    ./agent.nix
    ./immutable.nix
    ./ab-layout.nix
    ./k3s.nix
  ];
}
