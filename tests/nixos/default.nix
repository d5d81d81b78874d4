# NixOS VM tests, as flake checks (checks.x86_64-linux.<name>). They need a builder with KVM
# (the `kvm` and `nixos-test` system features). Run one with
#   nix build .#checks.x86_64-linux.boot -L
#
# Every test but agent-outbox boots the qemu-x86_64 board's real disk image through OVMF and
# systemd-boot (./lib/boot-image.nix, ./lib/driver.py); those with a hub VM share ./lib/hub.nix.
{ pkgs
, nixosModules
, boardModules
, packages
,
}:

let
  # pkgs.testers.runNixOSTest (pkgs/build-support/testers/default.nix) evaluates a test module
  # with nixos/lib/testing; node.pkgs is fixed (read-only nixpkgs options), so packages reach
  # the nodes as module arguments, and the board through specialArgs (it is imported).
  runTest =
    file:
    pkgs.testers.runNixOSTest {
      imports = [ file ];
      defaults = {
        imports = [ nixosModules.default ];
        _module.args.outpostPackages = packages;
      };
      node.specialArgs.outpostBoard = boardModules.qemu-x86_64;
      # For the test scripts: the driver helpers and where a node's disk image is.
      _module.args.outpost = {
        driver = builtins.readFile ./lib/driver.py;
        qemuImg = "${pkgs.qemu_kvm}/bin/qemu-img";
        image = node: "${node.system.build.image}/${node.image.fileName}";
        # Run by the test driver (on the build host): a throwaway release key, `rauc bundle`.
        tools = {
          openssl = "${pkgs.openssl.bin}/bin/openssl";
          rauc = "${pkgs.rauc}/bin/rauc";
          path = pkgs.lib.makeBinPath [ pkgs.squashfsTools ];
        };
      };
    };
in
{
  agent-outbox = runTest ./agent-outbox.nix;
  boot = runTest ./boot.nix;
  identity = runTest ./identity.nix;
  ota-commit = runTest ./ota-commit.nix;
  ota-rollback = runTest ./ota-rollback.nix;
  outbox-partition = runTest ./outbox-partition.nix;
  k3s-workloads = runTest ./k3s-workloads.nix;
}
