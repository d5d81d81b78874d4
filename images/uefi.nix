# GPT disk image for UEFI boards (x86_64, qemu-x86_64, Jetson Orin), built with systemd-repart.
#
#   1 outpost-esp      systemd-boot as the removable-media loader, loader.conf (no `default`),
#                      loader/entries/outpost_1-A.conf + outpost_0-B.conf, and one UKI per slot
#                      at /EFI/outpost/boot-a.efi and boot-b.efi (B's is a copy until the first
#                      update: the agent writes a file slot in place and never creates it)
#   2 outpost-store-a  erofs of the closure (slot A)
#   3 outpost-store-b  empty (slot B)
#   4 outpost-var      ext4, persistent
#
# Followed: nixpkgs nixos/modules/image/repart.nix (options), nixos/tests/appliance-repart-image.nix
# (systemd-boot as /EFI/BOOT/BOOT<ARCH>.EFI, Type #1 entries written as files), and the UKI from
# nixos/modules/system/boot/uki.nix (config.system.build.uki, config.system.boot.loader.ukiFile).
# Entries and UKI paths come from modules/ab-layout.nix, which derives the agent's [update] from
# the same values.
#
# Result: config.system.build.image/<image.baseName>.raw, plus the store slot alone
# (<image.baseName>.store.raw, split = true) for the update bundle (images/bundle.nix).
{ config
, lib
, pkgs
, modulesPath
, ...
}:

let
  ab = config.outpost.ab;
  inherit (pkgs.stdenv.hostPlatform) efiArch;
  # The entry's `options` replace the UKI's embedded command line (systemd-stub without Secure
  # Boot), so the UKI only carries kernel and initrd; the command line is the slot's.
  uki = "${config.system.build.uki}/${config.system.boot.loader.ukiFile}";
  parts = import ./partitions.nix { inherit config pkgs; };

  # No `default`: the agent expresses the primary slot by entry names alone; a default pattern
  # matching one slot would win over a failed trial (agent/boot/src/systemd_boot/mod.rs).
  loaderConf = pkgs.writeText "loader.conf" ''
    timeout 0
    editor no
  '';
in
{
  imports = [
    "${modulesPath}/image/repart.nix"
    ./bundle.nix
  ];

  config = lib.mkIf (ab.enable && ab.bootMethod == "uefi") {
    outpost.bundle.boot = {
      file = uki;
      name = "boot.efi";
    };

    image.repart = {
      split = true;
      # OVMF and most UEFI firmware read 512-byte sectors.
      sectorSize = 512;
      partitions = {
        "10-esp" = {
          contents = {
            "/EFI/BOOT/BOOT${lib.toUpper efiArch}.EFI".source =
              "${pkgs.systemd}/lib/systemd/boot/efi/systemd-boot${efiArch}.efi";
            "/loader/loader.conf".source = loaderConf;
          }
          // lib.mapAttrs' (_: path: lib.nameValuePair path { source = uki; }) ab.ukiPaths
          // lib.mapAttrs'
            (name: text: lib.nameValuePair "/loader/entries/${name}" { source = pkgs.writeText name text; })
            ab.entries;
          repartConfig = {
            Type = "esp";
            Format = "vfat";
            Label = ab.labels.esp;
            SizeMinBytes = ab.sizes.esp;
            SizeMaxBytes = ab.sizes.esp;
          };
        };
        "20-store-a" = parts.storeA;
        "30-store-b" = parts.storeB;
        "40-var" = parts.var;
      };
    };
  };
}
