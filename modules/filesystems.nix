# outpost.fileSystems: the file systems of an Outpost device, collected from modules/immutable.nix
# and modules/ab-layout.nix, and given to NixOS's fileSystems.
#
# Why a separate option: the NixOS VM tests boot the real disk image, and qemu-vm.nix replaces
# fileSystems with virtualisation.fileSystems (mkVMOverride). A test node sets
# virtualisation.fileSystems = config.outpost.fileSystems, which it could not take from
# config.fileSystems without an infinite recursion (tests/nixos/lib/boot-image.nix).
{ config, lib, ... }:
{
  options.outpost.fileSystems = lib.mkOption {
    type = lib.types.attrsOf lib.types.anything;
    default = { };
    internal = true;
    description = "File systems of the Outpost layout, as fileSystems entries.";
  };

  config.fileSystems = config.outpost.fileSystems;
}
