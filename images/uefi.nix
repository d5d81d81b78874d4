# GPT disk image for UEFI boards (x86_64, Jetson Orin), built with systemd-repart.
#
# Followed: nixpkgs nixos/modules/image/repart.nix (options), nixos/tests/appliance-repart-image.nix
# (systemd-boot as the removable-media loader, kernel from config.system.build), the UKI from
# nixos/modules/system/boot/uki.nix (config.system.build.uki, config.system.boot.loader.ukiFile),
# and blitz/sysupdate-playground modules/partitions.nix (versioned store slot + "_empty" slot).
#
# Result: config.system.build.image/<image.fileName>, plus with split = true the store slot
# alone (the update artifact: <name>_<version>.store.raw) next to it.
{ config
, lib
, pkgs
, modulesPath
, ...
}:

let
  ab = config.outpost.ab;
  efiArch = pkgs.stdenv.hostPlatform.efiArch;
  inherit (config.system.boot.loader) ukiFile;
in
{
  imports = [ "${modulesPath}/image/repart.nix" ];

  config = lib.mkIf (ab.enable && ab.bootMethod == "uefi") {
    image.repart = {
      split = true;
      partitions = {
        "10-esp" = {
          contents = {
            "/EFI/BOOT/BOOT${lib.toUpper efiArch}.EFI".source =
              "${pkgs.systemd}/lib/systemd/boot/efi/systemd-boot${efiArch}.efi";
            # Type #2 boot loader entry: systemd-boot finds UKIs in /EFI/Linux by itself.
            "/EFI/Linux/${ukiFile}".source = "${config.system.build.uki}/${ukiFile}";
            "/loader/loader.conf".source = pkgs.writeText "loader.conf" ''
              timeout 0
              editor no
            '';
          };
          repartConfig = {
            Type = "esp";
            Format = "vfat";
            Label = ab.labels.esp;
            SizeMinBytes = ab.sizes.esp;
            SizeMaxBytes = ab.sizes.esp;
          };
        };

        "20-store-a" = {
          storePaths = [ config.system.build.toplevel ];
          # The partition's root is the store itself (it is mounted at /nix/store).
          nixStorePrefix = "/";
          repartConfig = {
            Type = "linux-generic";
            Format = ab.storeFsType;
            Label = ab.storeLabel;
            ReadOnly = "yes";
            # A fixed size, so that slot B (same size) can take any later version.
            Minimize = "off";
            SizeMinBytes = ab.sizes.store;
            SizeMaxBytes = ab.sizes.store;
            SplitName = "store";
          };
        };

        "30-store-b" = {
          repartConfig = {
            Type = "linux-generic";
            Label = ab.labels.empty;
            SizeMinBytes = ab.sizes.store;
            SizeMaxBytes = ab.sizes.store;
          };
        };

        "40-var" = {
          repartConfig = {
            # The "var" type keeps it apart from the store slots for a later systemd-repart run
            # that grows it to the end of the disk.
            Type = "var";
            Format = "ext4";
            Label = ab.labels.var;
            SizeMinBytes = ab.sizes.var;
            FactoryReset = "yes";
          };
        };
      };
    };
  };
}
