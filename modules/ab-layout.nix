# outpost.ab: the A/B layout as the running system and the agent see it.
#
# Every board has two slots, A and B. A slot is a pair the agent installs together:
#
#   rootfs.N  the store partition outpost-store-a|b (read-only erofs of the system closure,
#             mounted at /nix/store); the agent's root slot, with the bootname A or B;
#   boot.N    what the firmware starts for that slot, a child of rootfs.N:
#               uefi         the slot's unified kernel image, a file on the ESP
#                            (/EFI/outpost/boot-a.efi), started by the systemd-boot entry
#                            loader/entries/outpost_<generation>-A[+LEFT[-DONE]].conf;
#               rpi-tryboot  the slot's FAT boot partition outpost-boot-a|b (partition 2|3:
#                            firmware, config.txt, kernel, initrd, cmdline).
#
# The agent's [update] section (bootloader, entries, slots) is derived here from the same
# labels the image builders use (images/uefi.nix, images/rpi-tryboot.nix), so the three cannot
# disagree; tests/nixos/eval.nix checks that the factory entries are what the agent's
# systemd-boot backend parses (agent/boot/src/systemd_boot, docs/updates.md "systemd-boot").
#
# Partitions are named after the slot, not the version (unlike systemd-sysupdate's
# store_<version>): the agent writes an image into a partition and never renames it. Which store
# a boot mounts therefore comes from the boot entry: its kernel command line carries
# `outpost.slot=A|B` (which the agent also reads to learn the booted slot, agent/update/src/
# booted.rs), and a udev rule links the store partition of that slot to /dev/outpost/store,
# which /nix/store mounts. The same image written to A or B works in either.
#
# The slot's system is found through /nix/store/.outpost-system, a link to the closure at the
# root of every store image (images/store.nix), so the command line of a slot's entry
# (`init=/nix/store/.outpost-system/init`) never changes when a new version is written into
# the slot: the initrd resolves init= inside /sysroot (nixos/modules/system/boot/systemd/
# initrd.nix, initrd-find-nixos-closure uses chroot-realpath).
{ config
, lib
, ...
}:

let
  cfg = config.outpost.ab;

  slotNames = [
    "A"
    "B"
  ];
  lower = lib.toLower;

  storeLabel = n: "${cfg.labels.storePrefix}-${lower n}";

  # Command line of a slot (every board): which slot this is, and how to find its system.
  cmdline =
    n:
    lib.concatStringsSep " " (
      [
        "init=${storeLink}/init"
        "outpost.slot=${n}"
      ]
      ++ config.boot.kernelParams
    );
  storeLink = "/nix/store/.outpost-system";

  # uefi: the ESP is mounted here (the agent's default `esp`), entries are Type #1 .conf files
  # (a fixed-name UKI per slot is written by installs; the entry, renamed for boot counting,
  # only points at it).
  espMount = "/boot";
  ukiPath = n: "/EFI/outpost/boot-${lower n}.efi";
  entriesDir = "loader/entries";
  # Factory entries: A blessed and above B (higher generation first in systemd-boot's menu).
  factoryGeneration = {
    A = 1;
    B = 0;
  };
  entryName = n: "${cfg.entryPrefix}_${toString factoryGeneration.${n}}-${n}.conf";
  # Boot Loader Specification Type #1 entry. No sort-key or version: the agent expresses the
  # primary slot by the file name alone (docs/updates.md, "How primary is expressed").
  entryText = n: ''
    title Outpost (slot ${n})
    efi ${ukiPath n}
    options ${cmdline n}
  '';

  # rpi-tryboot: partition numbers as autoboot.txt counts them.
  bootPartition = {
    A = 2;
    B = 3;
  };
  bootLabel = n: cfg.labels."boot${n}";

  index = n: if n == "A" then 0 else 1;
  rootSlot =
    n:
    {
      class = "rootfs";
      index = index n;
      device = "/dev/disk/by-partlabel/${storeLabel n}";
      type = "raw";
      bootname = n;
    }
    // lib.optionalAttrs (cfg.bootMethod == "rpi-tryboot") { boot_partition = bootPartition.${n}; };
  bootSlot = n: {
    class = "boot";
    index = index n;
    parent = "rootfs.${toString (index n)}";
  } // (
    if cfg.bootMethod == "uefi" then
      {
        device = "${espMount}${ukiPath n}";
        type = "raw";
      }
    else
      {
        device = "/dev/disk/by-partlabel/${bootLabel n}";
        type = "vfat";
      }
  );

  # The agent's [update] table (agent/src/config/update.rs, docs/configuration.md).
  update = {
    inherit (cfg) compatible;
    # A path literal (./bundle-ca.pem) is copied into the store (a public certificate), a
    # string names a file on the device.
    keyring = if builtins.isPath cfg.keyring then "${cfg.keyring}" else cfg.keyring;
    slots = lib.concatMap
      (n: [
        (rootSlot n)
        (bootSlot n)
      ])
      slotNames;
  }
  // (
    if cfg.bootMethod == "uefi" then
      {
        bootloader = "systemd-boot";
        esp = espMount;
        entries = entriesDir;
        entry_prefix = cfg.entryPrefix;
        boot_attempts = cfg.bootTries;
      }
    else
      {
        bootloader = "rpi-tryboot";
        autoboot = "/boot/firmware/autoboot.txt";
      }
  );

  # Links /dev/outpost/store to the store partition of the slot named on the command line.
  # IMPORT{cmdline} sets the property from /proc/cmdline (udev(7)); the rule runs after
  # 60-persistent-storage.rules, which sets ID_PART_ENTRY_NAME.
  storeRules = ''
    SUBSYSTEM=="block", ENV{ID_PART_ENTRY_NAME}=="${cfg.labels.storePrefix}-?", IMPORT{cmdline}="outpost.slot"
  ''
  + lib.concatMapStrings
    (n: ''
      SUBSYSTEM=="block", ENV{ID_PART_ENTRY_NAME}=="${storeLabel n}", ENV{outpost.slot}=="${n}", SYMLINK+="outpost/store"
    '')
    slotNames;

  label =
    description: default:
    lib.mkOption {
      type = lib.types.strMatching "[A-Za-z0-9_.-]{1,34}";
      inherit default description;
    };

  size =
    description: default:
    lib.mkOption {
      type = lib.types.strMatching "[0-9]+[KMGT]";
      inherit default description;
    };

  # A value this module derives from the layout (read-only), for the images and tests to read.
  derived =
    type: description:
    lib.mkOption {
      inherit type description;
      readOnly = true;
    };
in
{
  # The agent's options are set here ([update]); imported modules are deduplicated by path, so
  # importing this module alone works too.
  imports = [
    ./filesystems.nix
    ./agent.nix
  ];

  options.outpost.ab = {
    enable = lib.mkEnableOption "the Outpost A/B layout (two slots of store + boot files, persistent /var)";

    bootMethod = lib.mkOption {
      type = lib.types.enum [
        "uefi"
        "rpi-tryboot"
      ];
      description = ''
        How a slot is chosen at boot. `uefi`: systemd-boot boots the entry of a slot (with boot
        counting) on x86_64 and Jetson Orin (EDK2 UEFI); the agent's `systemd-boot` backend
        renames the entries. `rpi-tryboot`: the Raspberry Pi firmware boots partition 2 or 3
        as autoboot.txt says; the agent's `rpi-tryboot` backend rewrites autoboot.txt.
      '';
    };

    compatible = lib.mkOption {
      type = lib.types.strMatching "[A-Za-z0-9._-]+";
      example = "outpost-rpi4";
      description = ''
        The agent's `[update] compatible`: a bundle installs only if its manifest names the
        same string. One per board (images/default.nix sets `outpost-<board>`).
      '';
    };

    keyring = lib.mkOption {
      type = lib.types.either lib.types.path (lib.types.strMatching "/.*");
      default = "/etc/outpost/bundle-ca.pem";
      description = ''
        PEM file of the CA certificate(s) that sign update bundles (public: it may be a path
        in the image, or a file provisioned on /var). The agent reads it at each install.
      '';
    };

    entryPrefix = lib.mkOption {
      type = lib.types.strMatching "[A-Za-z0-9_.-]{1,64}";
      default = "outpost";
      description = "uefi: boot entries are named <entryPrefix>_<generation>-<A|B>[+LEFT[-DONE]].conf.";
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
      description = "uefi: boots a freshly installed slot gets before systemd-boot falls back (the agent's boot_attempts).";
    };

    healthUnits = lib.mkOption {
      type = lib.types.listOf lib.types.str;
      default = lib.optional config.services.outpost.agent.enable "outpost-health.service";
      defaultText = lib.literalExpression ''[ "outpost-health.service" ] # when the agent is enabled'';
      description = ''
        uefi: units that must succeed before boot-complete.target, i.e. before
        systemd-bless-boot may bless the running entry. outpost-health.service waits for the
        agent's health gate, which commits (or fails) the slot itself.
      '';
    };

    labels = {
      esp = label "GPT name of the EFI system partition (uefi)." "outpost-esp";
      autoboot = label "GPT name of partition 1 holding autoboot.txt (rpi-tryboot)." "outpost-autoboot";
      bootA = label "GPT name of boot partition A, number 2 (rpi-tryboot)." "outpost-boot-a";
      bootB = label "GPT name of boot partition B, number 3 (rpi-tryboot)." "outpost-boot-b";
      storePrefix = label "Store slots are named <storePrefix>-a and <storePrefix>-b." "outpost-store";
      var = label "GPT name of the persistent /var partition." "outpost-var";
    };

    sizes = {
      esp = size "ESP size (systemd-boot and one UKI per slot)." "512M";
      boot = size "Size of each Raspberry Pi boot partition." "256M";
      store = size "Size of each store slot; every future version must fit." "3G";
      var = size "Initial size of /var in the image." "1G";
    };

    # Read-only: derived from the options above.
    storeLabels = derived (lib.types.attrsOf lib.types.str) "GPT names of the store slots, by bootname.";
    update = derived lib.types.attrs "The agent's [update] table derived from this layout (set as services.outpost.agent.settings.update).";
    entries = derived (lib.types.attrsOf lib.types.str) "uefi: the factory boot entries, file name (in loader/entries) to text.";
    ukiPaths = derived (lib.types.attrsOf lib.types.str) "uefi: path of each slot's UKI on the ESP, by bootname.";
    cmdlines = derived (lib.types.attrsOf lib.types.str) "Kernel command line of each slot, by bootname.";
    bootPartitions = derived (lib.types.attrsOf lib.types.int) "rpi-tryboot: partition number of each slot's boot partition, by bootname.";
    storeLink = derived lib.types.str "Link to the system closure at the root of every store image.";
  };

  config = lib.mkIf cfg.enable (
    lib.mkMerge [
      {
        outpost.ab = {
          storeLabels = lib.genAttrs slotNames storeLabel;
          inherit update storeLink;
          entries = lib.listToAttrs (map (n: lib.nameValuePair (entryName n) (entryText n)) slotNames);
          ukiPaths = lib.genAttrs slotNames ukiPath;
          cmdlines = lib.genAttrs slotNames cmdline;
          bootPartitions = bootPartition;
        };

        # The agent learns its slots, bootloader and keyring from the layout; a fleet may still
        # override single keys (e.g. keyring) through outpost.ab options.
        services.outpost.agent.settings.update = lib.mkIf config.services.outpost.agent.enable update;

        outpost.fileSystems."/nix/store" = {
          device = "/dev/outpost/store";
          fsType = cfg.storeFsType;
          options = [ "ro" ];
          neededForBoot = true;
        };

        outpost.fileSystems."/var" = {
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
        # Both stages: after switch-root udev runs again, and /nix/store's device unit must
        # keep its link (nixos/modules/services/hardware/udev.nix).
        boot.initrd.services.udev.rules = storeRules;
        services.udev.extraRules = storeRules;
      }

      (lib.mkIf (cfg.bootMethod == "uefi") {
        # Mounted for the whole boot, not on demand: the agent's unit (ProtectSystem=strict,
        # ReadWritePaths=-/boot) gets its mount namespace at start and must find the ESP there
        # (an automount triggered later would not show up inside it). Only the agent and
        # systemd-bless-boot write to it, one rename at a time.
        outpost.fileSystems.${espMount} = {
          device = "/dev/disk/by-partlabel/${cfg.labels.esp}";
          fsType = "vfat";
          options = [
            "umask=0077"
            "noatime"
          ];
        };
        # systemd-bless-boot blesses the entry only after boot-complete.target, which needs
        # the health gate; the agent's gate renames the entry itself first, and
        # systemd-bless-boot then finds it done.
        systemd.targets.boot-complete = {
          requires = cfg.healthUnits;
          after = cfg.healthUnits;
        };
        # The image installs systemd-boot and the entries (images/uefi.nix); nothing is
        # installed at activation time on a device without a mutable /boot.
        boot.loader.grub.enable = false;
      })

      (lib.mkIf (cfg.bootMethod == "rpi-tryboot") {
        # autoboot.txt lives on partition 1, where the agent's rpi-tryboot backend expects it.
        # Mounted for the whole boot, for the same reason as the ESP on uefi.
        outpost.fileSystems."/boot/firmware" = {
          device = "/dev/disk/by-partlabel/${cfg.labels.autoboot}";
          fsType = "vfat";
          options = [
            "umask=0077"
            "noatime"
          ];
        };
        # The Pi firmware loads kernel and initrd itself (config.txt on the boot partition);
        # no U-Boot and no extlinux.
        boot.loader.grub.enable = false;
        boot.loader.generic-extlinux-compatible.enable = false;
      })
    ]
  );
}
