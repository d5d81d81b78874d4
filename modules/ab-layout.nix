# outpost.ab: the A/B partition layout as the running system sees it.
#
# Layout (GPT on every board; partition numbers matter for the Raspberry Pi firmware):
#
#   uefi (x86_64, Jetson Orin):      rpi-tryboot (Raspberry Pi 4/5):
#     1 ESP  systemd-boot + UKIs       1 autoboot  FAT, autoboot.txt only
#     2 store slot A                   2 boot-a    FAT: firmware, config.txt, kernel, initrd
#     3 store slot B                   3 boot-b    FAT: same, for the other slot
#     4 var (persistent)               4 store slot A
#                                      5 store slot B
#                                      6 var (persistent)
#
# A store slot is a read-only erofs/squashfs image of the system closure, mounted at /nix/store.
# Following systemd-sysupdate (and blitz/sysupdate-playground modules/{partitions,filesystems}.nix)
# a store partition is named after the *version* it holds: "<storePrefix>_<version>", and an
# unused slot is named "_empty". Each boot entry (a UKI, or a boot-a/boot-b partition) carries a
# closure whose fstab mounts the store of its own version, so the slot to mount is never a
# runtime decision. The agent (or systemd-sysupdate with MatchPattern=<storePrefix>_@v) writes
# an update into the partition that holds neither the booted version nor a protected one, and
# renames it. The layout is published to the agent in /etc/outpost/slots.json.
#
# The image side (which files go into which partition) lives in images/uefi.nix and
# images/rpi-tryboot.nix; both read the labels and sizes from here.
{ config
, lib
, ...
}:

let
  cfg = config.outpost.ab;

  version = config.system.image.version;

  storeLabel = "${cfg.labels.storePrefix}_${version}";

  label =
    description: default:
    lib.mkOption {
      type = lib.types.strMatching "[A-Za-z0-9_.-]{1,36}";
      inherit default description;
    };

  size =
    description: default:
    lib.mkOption {
      type = lib.types.strMatching "[0-9]+[KMGT]";
      inherit default description;
    };

  slotsFile = {
    format = 1;
    boot_method = cfg.bootMethod;
    booted_version = version;
    store = {
      fs_type = cfg.storeFsType;
      match_pattern = "${cfg.labels.storePrefix}_@v";
      empty_label = cfg.labels.empty;
      size = cfg.sizes.store;
      booted_label = storeLabel;
    };
    var_label = cfg.labels.var;
  }
  // lib.optionalAttrs (cfg.bootMethod == "uefi") {
    esp = {
      label = cfg.labels.esp;
      uki_dir = "/EFI/Linux";
      uki_pattern = "${config.system.image.id}_@v+@l-@d.efi";
      tries = cfg.bootTries;
    };
  }
  // lib.optionalAttrs (cfg.bootMethod == "rpi-tryboot") {
    rpi = {
      autoboot_label = cfg.labels.autoboot;
      # bootname -> partition number, as autoboot.txt's boot_partition= counts them.
      boot_partitions = {
        A = {
          label = cfg.labels.bootA;
          number = 2;
        };
        B = {
          label = cfg.labels.bootB;
          number = 3;
        };
      };
      # The firmware reports the booted partition and whether this is a trial boot here.
      booted_partition_file = "/proc/device-tree/chosen/bootloader/partition";
      tryboot_file = "/proc/device-tree/chosen/bootloader/tryboot";
    };
  };
in
{
  options.outpost.ab = {
    enable = lib.mkEnableOption "the Outpost A/B partition layout (read-only store slots, persistent /var)";

    bootMethod = lib.mkOption {
      type = lib.types.enum [
        "uefi"
        "rpi-tryboot"
      ];
      description = ''
        How a slot is chosen at boot. `uefi`: systemd-boot picks a unified kernel image (UKI)
        from the ESP, with boot counting (`boot.uki.tries`) for automatic rollback; used on
        x86_64 and on Jetson Orin (its firmware is EDK2 UEFI). `rpi-tryboot`: the Raspberry Pi
        firmware boots partition 2 or 3 according to autoboot.txt, and `reboot "0 tryboot"`
        tries the other one once.
      '';
    };

    storeFsType = lib.mkOption {
      type = lib.types.enum [
        "erofs"
        "squashfs"
      ];
      default = "erofs";
      description = "Read-only file system of the store slots.";
    };

    bootTries = lib.mkOption {
      type = lib.types.ints.between 1 9;
      default = 3;
      description = "uefi: boots a new UKI gets before systemd-boot falls back (boot.uki.tries).";
    };

    healthUnits = lib.mkOption {
      type = lib.types.listOf lib.types.str;
      default = lib.optional config.services.outpost.agent.enable "outpost-agent.service";
      defaultText = lib.literalExpression ''[ "outpost-agent.service" ] # when the agent is enabled'';
      description = ''
        uefi: units that must be up before boot-complete.target, i.e. before
        systemd-bless-boot marks the running UKI good. A boot where one of them fails is not
        blessed, and after {option}`outpost.ab.bootTries` such boots systemd-boot falls back.
      '';
    };

    labels = {
      esp = label "GPT name of the EFI system partition (uefi)." "outpost-esp";
      autoboot = label "GPT name of partition 1 holding autoboot.txt (rpi-tryboot)." "outpost-autoboot";
      bootA = label "GPT name of boot partition A, number 2 (rpi-tryboot)." "outpost-boot-a";
      bootB = label "GPT name of boot partition B, number 3 (rpi-tryboot)." "outpost-boot-b";
      storePrefix = label "Store slots are named <storePrefix>_<version>." "outpost-store";
      empty = label "Name of a store slot that holds nothing yet." "_empty";
      var = label "GPT name of the persistent /var partition." "outpost-var";
    };

    sizes = {
      esp = size "ESP size (holds two or three UKIs)." "512M";
      boot = size "Size of each Raspberry Pi boot partition." "256M";
      store = size "Size of each store slot; every future version must fit." "3G";
      var = size "Initial size of /var in the image." "1G";
    };

    storeLabel = lib.mkOption {
      type = lib.types.str;
      readOnly = true;
      description = "GPT name of the store slot holding this system: <storePrefix>_<version>.";
    };

    slots = lib.mkOption {
      type = lib.types.attrs;
      readOnly = true;
      description = "The layout as published to the agent in /etc/outpost/slots.json.";
    };
  };

  config = lib.mkIf cfg.enable (
    lib.mkMerge [
      {
        outpost.ab = {
          inherit storeLabel;
          slots = slotsFile;
        };

        assertions = [
          {
            assertion = version != null;
            message = "outpost.ab: set system.image.version; store slots are named after it.";
          }
          {
            # GPT names hold 36 UTF-16 characters; keep 2 spare for longer future versions
            # (same margin as nixpkgs nixos/modules/image/repart.nix warns about).
            assertion = builtins.stringLength storeLabel <= 34;
            message = "outpost.ab: store label ${storeLabel} is longer than 34 characters.";
          }
        ];

        fileSystems."/nix/store" = {
          device = "/dev/disk/by-partlabel/${storeLabel}";
          fsType = cfg.storeFsType;
          options = [ "ro" ];
          neededForBoot = true;
        };

        fileSystems."/var" = {
          device = "/dev/disk/by-partlabel/${cfg.labels.var}";
          fsType = "ext4";
          options = [
            "noatime"
            "nodev"
            "nosuid"
          ];
          neededForBoot = true;
          # x-systemd.growfs: the file system grows when its partition was enlarged.
          autoResize = true;
        };

        boot.initrd.supportedFilesystems.${cfg.storeFsType} = true;
        boot.initrd.systemd.enable = true;

        environment.etc."outpost/slots.json".text = builtins.toJSON slotsFile;
      }

      (lib.mkIf (cfg.bootMethod == "uefi") {
        # nixos/modules/system/boot/uki.nix: the UKI is named <name>_<version>+<tries>.efi, which
        # makes systemd-boot count down tries and systemd-bless-boot drop the counter once
        # boot-complete.target is reached.
        boot.uki.tries = cfg.bootTries;
        # The ESP is mounted only for updates; the running system needs nothing from it.
        fileSystems."/boot" = {
          device = "/dev/disk/by-partlabel/${cfg.labels.esp}";
          fsType = "vfat";
          options = [
            "umask=0077"
            "noauto"
            "x-systemd.automount"
            "x-systemd.idle-timeout=60"
          ];
        };
        systemd.targets.boot-complete = {
          requires = cfg.healthUnits;
          after = cfg.healthUnits;
        };
        # The image installs systemd-boot itself (images/uefi.nix); nothing is installed at
        # activation time on a device without a mutable /boot.
        boot.loader.grub.enable = false;
      })

      (lib.mkIf (cfg.bootMethod == "rpi-tryboot") {
        # The Pi firmware loads kernel and initrd itself (config.txt on the boot partition);
        # no U-Boot and no extlinux.
        boot.loader.grub.enable = false;
        boot.loader.generic-extlinux-compatible.enable = false;
      })
    ]
  );
}
