# GPT disk image for Raspberry Pi 4/5 booting straight from the Pi firmware with tryboot A/B.
#
# Partition 1 holds only autoboot.txt; the firmware then boots partition 2 (slot A) normally and
# partition 3 (slot B) for one `reboot "0 tryboot"`. Committing slot B means rewriting
# autoboot.txt with boot_partition=3 (the agent's job; see modules/ab-layout.nix slots.json).
# Needs a bootloader EEPROM with tryboot_a_b support (see docs/nix.md).
#
# Followed: nixpkgs nixos/modules/image/repart.nix (options; repartConfig accepts any repart.d
# key, so a whole folder is copied with CopyFiles=), nixos/modules/installer/sd-card/
# sd-image-aarch64.nix (firmware files from pkgs.raspberrypifw, kernel file name from
# config.system.boot.loader.kernelFile) and the firmware's autoboot.txt format.
{ config
, lib
, pkgs
, modulesPath
, ...
}:

let
  ab = config.outpost.ab;
  inherit (config.system.boot.loader) kernelFile initrdFile;
  firmware = "${pkgs.raspberrypifw}/share/raspberrypi/boot";

  # The Pi bootloader reads FAT partitions of GPT type "Microsoft basic data" (or ESP).
  basicData = "ebd0a0a2-b9e5-4433-87c0-68b6b72699c7";

  autoboot = pkgs.writeTextDir "autoboot.txt" ''
    [all]
    tryboot_a_b=1
    boot_partition=2
    [tryboot]
    boot_partition=3
  '';

  configTxt = pkgs.writeText "config.txt" ''
    [all]
    arm_64bit=1
    enable_uart=1
    kernel=${kernelFile}
    initramfs ${initrdFile} followkernel
    disable_overscan=1
    ${config.outpost.rpi.extraConfigTxt}
  '';

  cmdlineTxt = pkgs.writeText "cmdline.txt" "init=${config.system.build.toplevel}/init ${toString config.boot.kernelParams}\n";

  # One slot's boot partition: firmware blobs, device trees and overlays, kernel, initrd.
  bootFiles = pkgs.runCommand "outpost-rpi-boot-${config.system.image.version}" { } ''
    mkdir -p $out
    cp -r ${firmware}/. $out/
    chmod -R u+w $out
    rm -f $out/kernel*.img
    cp ${config.boot.kernelPackages.kernel}/${kernelFile} $out/${kernelFile}
    cp ${config.system.build.initialRamdisk}/${initrdFile} $out/${initrdFile}
    cp ${configTxt} $out/config.txt
    cp ${cmdlineTxt} $out/cmdline.txt
  '';
in
{
  imports = [ "${modulesPath}/image/repart.nix" ];

  options.outpost.rpi.extraConfigTxt = lib.mkOption {
    type = lib.types.lines;
    default = "";
    description = "Lines appended to config.txt on the boot partitions.";
  };

  config = lib.mkIf (ab.enable && ab.bootMethod == "rpi-tryboot") {
    system.build.outpostRpiBootFiles = bootFiles;

    image.repart = {
      split = true;
      partitions = {
        "10-autoboot" = {
          repartConfig = {
            Type = basicData;
            Format = "vfat";
            Label = ab.labels.autoboot;
            SizeMinBytes = "32M";
            SizeMaxBytes = "32M";
            CopyFiles = "${autoboot}:/";
          };
        };

        "20-boot-a" = {
          repartConfig = {
            Type = basicData;
            Format = "vfat";
            Label = ab.labels.bootA;
            SizeMinBytes = ab.sizes.boot;
            SizeMaxBytes = ab.sizes.boot;
            CopyFiles = "${bootFiles}:/";
            SplitName = "boot";
          };
        };

        "30-boot-b" = {
          repartConfig = {
            Type = basicData;
            Format = "vfat";
            Label = ab.labels.bootB;
            SizeMinBytes = ab.sizes.boot;
            SizeMaxBytes = ab.sizes.boot;
          };
        };

        "40-store-a" = {
          storePaths = [ config.system.build.toplevel ];
          nixStorePrefix = "/";
          repartConfig = {
            Type = "linux-generic";
            Format = ab.storeFsType;
            Label = ab.storeLabel;
            ReadOnly = "yes";
            Minimize = "off";
            SizeMinBytes = ab.sizes.store;
            SizeMaxBytes = ab.sizes.store;
            SplitName = "store";
          };
        };

        "50-store-b" = {
          repartConfig = {
            Type = "linux-generic";
            Label = ab.labels.empty;
            SizeMinBytes = ab.sizes.store;
            SizeMaxBytes = ab.sizes.store;
          };
        };

        "60-var" = {
          repartConfig = {
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
