# A test node that is the qemu-x86_64 board and boots the board's real disk image
# (images/uefi.nix) through OVMF and systemd-boot: no direct kernel boot, no host store, the
# store and /var from the image's partitions. The pattern is nixpkgs
# nixos/tests/appliance-repart-image.nix (directBoot off, mountHostNixStore off, useEFIBoot);
# options from nixos/modules/virtualisation/qemu-vm.nix. The test script boots the node with
# `boot_image()` from ./driver.py, which puts a copy-on-write overlay of the image under it.
#
# The image is built from this node's own configuration, so it contains the test driver's
# backdoor (nixos/modules/testing/test-instrumentation.nix) like any other test VM.
{ config
, lib
, pkgs
, outpostBoard
, outpostPackages
, ...
}:
{
  imports = [ outpostBoard ];

  virtualisation = {
    directBoot.enable = false;
    mountHostNixStore = false;
    useEFIBoot = true;
    # Our partitions, not qemu-vm's: it replaces fileSystems with virtualisation.fileSystems
    # (which keeps the driver's 9p shares), hence outpost.fileSystems (modules/filesystems.nix).
    useDefaultFilesystems = false;
    fileSystems = config.outpost.fileSystems;
    memorySize = lib.mkDefault 2048;
  };

  services.outpost.agent.package = outpostPackages.outpost-agent;
  # The test scripts read the agent's JSON answers with jq.
  environment.systemPackages = [ pkgs.jq ];

  # The test VMs run one version at a time; ota tests extend this node with others.
  system.image.version = lib.mkOverride 90 "1.0.0";
}
