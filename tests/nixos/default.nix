# NixOS VM tests, as flake checks (checks.x86_64-linux.<name>). They need a builder with KVM
# (the `kvm` and `nixos-test` system features). Run one with
#   nix build .#checks.x86_64-linux.agent-outbox -L
{ pkgs
, nixosModules
, packages
,
}:

let
  # pkgs.testers.runNixOSTest (pkgs/build-support/testers/default.nix) evaluates a test module
  # with nixos/lib/testing; node.pkgs is fixed, so packages reach the nodes as module args.
  runTest =
    file:
    pkgs.testers.runNixOSTest {
      imports = [ file ];
      defaults = {
        imports = [ nixosModules.agent ];
        _module.args.outpostPackages = packages;
      };
    };
in
{
  agent-outbox = runTest ./agent-outbox.nix;
}
