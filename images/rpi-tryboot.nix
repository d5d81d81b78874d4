# GPT disk image for Raspberry Pi 4/5 booting straight from the Pi firmware with tryboot A/B.
#
#   1 outpost-autoboot  FAT, autoboot.txt only ([all] boot_partition=2, [tryboot] =3)
#   2 outpost-boot-a    FAT: firmware, config.txt, kernel, initrd, cmdline-a.txt, cmdline-b.txt
#   3 outpost-boot-b    FAT, empty until the first update (slot B's boot image)
#   4 outpost-store-a   erofs of the closure (slot A)
#   5 outpost-store-b   empty (slot B)
#   6 outpost-var       ext4, persistent
#
# The firmware boots partition 2 normally and partition 3 for one `reboot "0 tryboot"`; the
# agent's rpi-tryboot backend rewrites autoboot.txt (modules/ab-layout.nix derives its slots).
# One boot image serves either slot: config.txt picks the slot's command line with the
# `[boot_partition=N]` filter (Raspberry Pi config.txt conditional filters; needs a recent
# firmware, not verified on hardware), so `outpost.slot=` names the partition that booted.
# Needs a bootloader EEPROM with tryboot_a_b support (docs/images.md).
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
  parts = import ./partitions.nix { inherit config pkgs; };

  # The Pi bootloader reads FAT partitions of GPT type "Microsoft basic data" (or ESP).
  basicData = "ebd0a0a2-b9e5-4433-87c0-68b6b72699c7";

  autoboot = pkgs.writeTextDir "autoboot.txt" ''
    [all]
    tryboot_a_b=1
    boot_partition=${toString ab.bootPartitions.A}
    [tryboot]
    boot_partition=${toString ab.bootPartitions.B}
  '';

  cmdlineFile = n: "cmdline-${lib.toLower n}.txt";

  configTxt = pkgs.writeText "config.txt" ''
    [all]
    arm_64bit=1
    enable_uart=1
    kernel=${kernelFile}
    initramfs ${initrdFile} followkernel
    disable_overscan=1
    ${lib.concatMapStrings (n: ''
      [boot_partition=${toString ab.bootPartitions.${n}}]
      cmdline=${cmdlineFile n}
    '') [ "A" "B" ]}
    [all]
    ${config.outpost.rpi.extraConfigTxt}
  '';

  # One slot's boot partition: firmware blobs, device trees and overlays, kernel, initrd.
  bootFiles = pkgs.runCommand "outpost-rpi-boot-${config.system.image.version}" { } ''
    mkdir -p $out
    cp -r ${firmware}/. $out/
    chmod -R u+w $out
    rm -f $out/kernel*.img
    cp ${config.boot.kernelPackages.kernel}/${kernelFile} $out/${kernelFile}
    cp ${config.system.build.initialRamdisk}/${initrdFile} $out/${initrdFile}
    cp ${configTxt} $out/config.txt
    ${lib.concatMapStrings (n: ''
      echo ${lib.escapeShellArg ab.cmdlines.${n}} > $out/${cmdlineFile n}
    '') [ "A" "B" ]}
  '';

  bootPartition = label: {
    Type = basicData;
    Format = "vfat";
    Label = label;
    SizeMinBytes = ab.sizes.boot;
    SizeMaxBytes = ab.sizes.boot;
  };
in
{
  imports = [
    "${modulesPath}/image/repart.nix"
    ./bundle.nix
  ];

  options.outpost.rpi.extraConfigTxt = lib.mkOption {
    type = lib.types.lines;
    default = "";
    description = "Lines appended to config.txt on the boot partitions.";
  };

  config = lib.mkIf (ab.enable && ab.bootMethod == "rpi-tryboot") {
    system.build.outpostRpiBootFiles = bootFiles;
    system.build.outpostRpiConfigTxt = configTxt;

    # The boot partition image (split artifact) is the bundle's image of class boot.
    outpost.bundle.boot = {
      file = "${config.system.build.image}/${config.image.baseName}.boot.raw";
      name = "boot.vfat";
    };

    image.repart = {
      split = true;
      partitions = {
        "10-autoboot".repartConfig = {
          Type = basicData;
          Format = "vfat";
          Label = ab.labels.autoboot;
          SizeMinBytes = "32M";
          SizeMaxBytes = "32M";
          CopyFiles = "${autoboot}:/";
        };
        "20-boot-a".repartConfig = bootPartition ab.labels.bootA // {
          CopyFiles = "${bootFiles}:/";
          SplitName = "boot";
        };
        "30-boot-b".repartConfig = bootPartition ab.labels.bootB;
        "40-store-a" = parts.storeA;
        "50-store-b" = parts.storeB;
        "60-var" = parts.var;
      };
    };
  };
}
