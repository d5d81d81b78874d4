# outpost.immutable: the device OS is an image, not a NixOS installation.
#
#   /            tmpfs (nothing survives a reboot unless it is under /var)
#   /nix/store   read-only store slot (modules/ab-layout.nix mounts it)
#   /etc         read-only overlay built from the image (system.etc.overlay, mutable = false)
#   /var         the one persistent, writable partition
#
# No Nix daemon, no nixos-rebuild, no switch-to-configuration, no mutable users: the system
# changes only by booting another image. This spells out what nixpkgs'
# nixos/modules/profiles/image-based-appliance.nix and profiles/perlless.nix set (read both),
# plus the prerequisites from nixos/tests/activation/etc-overlay-immutable.nix, so each setting
# is visible here and the module evaluates without modulesPath.
{ config
, lib
, pkgs
, utils
, ...
}:

let
  cfg = config.outpost.immutable;

  base = {
    outpost.fileSystems."/" = {
      device = "none";
      fsType = "tmpfs";
      options = [
        "mode=0755"
        "size=${cfg.rootSize}"
      ];
    };

    # Read-only store (the default, stated because the design depends on it).
    boot.readOnlyNixStore = true;

    # /etc as an overlay of the image; users are fixed at build time.
    boot.initrd.systemd.enable = true;
    system.etc.overlay = {
      enable = true;
      mutable = false;
    };
    services.userborn.enable = lib.mkDefault true;
    users.mutableUsers = false;
    # Devices are reached through the agent, not by logging in.
    users.allowNoPasswordLogin = lib.mkDefault true;

    # Nothing on the device can build or switch systems.
    nix.enable = false;
    system.switch.enable = false;
    system.disableInstallerTools = true;

    # Trim what only makes sense on a mutable, interactive machine.
    environment.defaultPackages = lib.mkDefault [ ];
    documentation.enable = lib.mkDefault false;
    programs.command-not-found.enable = false;

    networking.useNetworkd = lib.mkDefault true;
    services.resolved.enable = lib.mkDefault true;
    services.timesyncd.enable = lib.mkDefault true;

    # The journal is kept on /var, so logs of a failed boot survive for the next one.
    services.journald.extraConfig = "Storage=persistent";
  };

  etcDirs = {
    # Mount points for persistentEtcDirs come from the image (a read-only /etc cannot get new
    # folders at run time); the sources are created on /var before the bind mounts.
    environment.etc = lib.listToAttrs (
      map (d: lib.nameValuePair "${d}/.keep" { text = ""; }) cfg.persistentEtcDirs
    );
    outpost.fileSystems = lib.listToAttrs (
      map
        (
          d:
          lib.nameValuePair "/etc/${d}" {
            device = "/var/lib/outpost-etc/${d}";
            fsType = "none";
            options = [
              "bind"
              "x-systemd.requires-mounts-for=/var"
            ];
          }
        )
        cfg.persistentEtcDirs
    );
    systemd.services.outpost-etc-dirs = lib.mkIf (cfg.persistentEtcDirs != [ ]) {
      description = "Create the /var sources of persistent /etc folders";
      unitConfig.DefaultDependencies = false;
      unitConfig.RequiresMountsFor = [ "/var" ];
      before = map (d: "${utils.escapeSystemdPath "/etc/${d}"}.mount") cfg.persistentEtcDirs;
      requiredBy = map (d: "${utils.escapeSystemdPath "/etc/${d}"}.mount") cfg.persistentEtcDirs;
      serviceConfig = {
        Type = "oneshot";
        RemainAfterExit = true;
        ExecStart = map (d: "${pkgs.coreutils}/bin/mkdir -p -m 0700 /var/lib/outpost-etc/${d}") cfg.persistentEtcDirs;
      };
    };
  };
in
{
  imports = [ ./filesystems.nix ];

  options.outpost.immutable = {
    enable = lib.mkEnableOption "the immutable Outpost system (tmpfs root, read-only /etc and store, no Nix on the device)";

    rootSize = lib.mkOption {
      type = lib.types.strMatching "[0-9]+[%KMG]";
      default = "25%";
      description = "Size limit of the tmpfs mounted at /.";
    };

    persistentEtcDirs = lib.mkOption {
      type = lib.types.listOf (lib.types.strMatching "[a-zA-Z0-9._-]+(/[a-zA-Z0-9._-]+)*");
      default = [ ];
      example = [ "rancher" ];
      description = ''
        Folders below /etc that software insists on writing (relative, e.g. `rancher`).
        Each is bind-mounted from /var/lib/outpost-etc/<dir>, which is created on boot.
        Prefer pointing the software at /var instead; this is the escape hatch.
      '';
    };
  };

  config = lib.mkIf cfg.enable (lib.mkMerge [
    base
    etcDirs
  ]);
}
