# services.outpost.agent: the device daemon as a hardened systemd service.
#
# Style follows nixpkgs nixos/modules/security/tpm2.nix (mkEnableOption, mkPackageOption,
# typed options with defaultText, config = mkIf cfg.enable (mkMerge [ ... ])); the token /
# tokenFile split follows nixos/modules/services/cluster/rancher/default.nix. The TOML file is
# rendered with pkgs.formats.toml, so it lands in the store: it must never hold a secret. The
# hub TLS files are therefore *paths* (hub.caFile/certFile/keyFile) that systemd hands to the
# service with LoadCredential=, and the rendered config points at the credential copies.
#
# Key names mirror agent/src/config.rs (RawConfig, which denies unknown fields).
{ config
, lib
, pkgs
, ...
}:

let
  cfg = config.services.outpost.agent;

  settingsFormat = pkgs.formats.toml { };

  unitName = "outpost-agent";

  # systemd puts LoadCredential= copies here (readable by the service user only).
  credentialDir = "/run/credentials/${unitName}.service";

  priorities = [
    "critical"
    "normal"
    "best_effort"
  ];

  # An absolute path that is not in the Nix store: a file provisioned on the device.
  devicePath = lib.types.addCheck lib.types.str (
    p: lib.hasPrefix "/" p && !(lib.hasPrefix builtins.storeDir p)
  );

  nullOrInt =
    default: description:
    lib.mkOption {
      type = lib.types.nullOr lib.types.ints.positive;
      default = null;
      defaultText = lib.literalMD "unset (the agent's default, ${default})";
      inherit description;
    };

  dropNulls = lib.filterAttrsRecursive (_: v: v != null);

  hubSection = lib.optionalAttrs (cfg.hub != null) {
    hub = {
      inherit (cfg.hub) url;
      ca = "${credentialDir}/hub-ca.pem";
      cert = "${credentialDir}/device.pem";
      key = "${credentialDir}/device.key";
    };
  };

  finalSettings = dropNulls cfg.settings // hubSection;

  runtimeDir = dirOf cfg.settings.api.socket;
in
{
  options.services.outpost.agent = {
    enable = lib.mkEnableOption "the Outpost device agent (durable telemetry outbox, local API)";

    package = lib.mkPackageOption pkgs "outpost-agent" { };

    user = lib.mkOption {
      type = lib.types.str;
      default = "outpost";
      description = "System user the agent runs as. Created by this module.";
    };

    group = lib.mkOption {
      type = lib.types.str;
      default = "outpost";
      description = ''
        Group of the agent. The local API socket is created with this group and
        {option}`settings.api.socket_mode` (0660 by default), so users and services that may
        publish records are added to this group (e.g. `users.users.app.extraGroups = [ "outpost" ]`
        or `SupplementaryGroups=outpost`).
      '';
    };

    watchdogSec = lib.mkOption {
      type = lib.types.str;
      default = "30s";
      description = ''
        systemd WatchdogSec= for the agent. The agent pings at half this interval
        (agent/src/systemd.rs); a hung agent is killed and restarted.
      '';
    };

    hub = lib.mkOption {
      default = null;
      description = ''
        The hub the outbox uploads to (mTLS). `null` keeps records on the device only.
        The three files are read by systemd (as root) and handed to the agent as credentials;
        they never enter the Nix store, and the agent's user needs no access to the originals.
      '';
      type = lib.types.nullOr (
        lib.types.submodule {
          options = {
            url = lib.mkOption {
              type = lib.types.strMatching "https://.+";
              example = "https://hub.example.com:8443";
              description = "Hub base URL (https only, no query).";
            };
            caFile = lib.mkOption {
              type = devicePath;
              example = "/var/lib/outpost-identity/hub-ca.pem";
              description = "PEM file with the CA that signed the hub's certificate.";
            };
            certFile = lib.mkOption {
              type = devicePath;
              example = "/var/lib/outpost-identity/device.pem";
              description = "PEM file with this device's client certificate (CN = device id).";
            };
            keyFile = lib.mkOption {
              type = devicePath;
              example = "/var/lib/outpost-identity/device.key";
              description = ''
                PEM file with this device's private key. Must be an absolute path on the
                device (not a Nix path literal, which would copy the key into the store).
              '';
            };
          };
        }
      );
    };

    settings = lib.mkOption {
      default = { };
      description = ''
        Agent configuration, rendered to TOML (see docs/configuration.md for every key).
        Unset optional keys are left out so the agent's own defaults apply. Use
        {option}`services.outpost.agent.hub` instead of a `[hub]` table here.
      '';
      type = lib.types.submodule {
        freeformType = settingsFormat.type;
        options = {
          device_id = lib.mkOption {
            type = lib.types.nullOr lib.types.str;
            default = null;
            description = "Device id shown in logs; the hub identifies devices by certificate.";
          };
          state_dir = lib.mkOption {
            type = lib.types.strMatching "/var/lib/[^/].*";
            default = "/var/lib/outpost";
            description = "Agent state (the SQLite outbox). Must be below /var/lib (StateDirectory=).";
          };
          api = {
            socket = lib.mkOption {
              type = lib.types.strMatching "/run/[^/]+(/[^/]+)*/[^/]+";
              default = "/run/outpost/agent.sock";
              description = "Unix socket of the local API. Its folder becomes RuntimeDirectory=.";
            };
            socket_mode = lib.mkOption {
              type = lib.types.strMatching "(0o)?[0-7]{3,4}";
              default = "0660";
              description = "Octal mode of the socket file.";
            };
            tcp = lib.mkOption {
              type = lib.types.nullOr lib.types.str;
              default = null;
              example = "127.0.0.1:7701";
              description = "Optional loopback TCP listener (the agent refuses non-loopback addresses).";
            };
            max_body_bytes = nullOrInt "1048576" "Largest accepted publish body.";
          };
          outbox = {
            path = lib.mkOption {
              type = lib.types.nullOr (lib.types.strMatching "/.*");
              default = null;
              defaultText = lib.literalMD "unset (`<state_dir>/outbox.sqlite`)";
              description = "Outbox database file.";
            };
            max_bytes = nullOrInt "268435456" "Size bound of the outbox; eviction by priority beyond it.";
            default_priority = lib.mkOption {
              type = lib.types.nullOr (lib.types.enum priorities);
              default = null;
              defaultText = lib.literalMD "unset (`normal`)";
              description = "Priority of a publish without `?priority=` on a stream not listed below.";
            };
            streams = lib.mkOption {
              type = lib.types.attrsOf (
                lib.types.submodule {
                  options.priority = lib.mkOption {
                    type = lib.types.enum priorities;
                    description = "Priority of records of this stream.";
                  };
                }
              );
              default = { };
              example = {
                alarms.priority = "critical";
              };
              description = "Per-stream priorities.";
            };
          };
          uploader = {
            batch_max_records = nullOrInt "1000" "Most records per upload batch.";
            batch_max_bytes = nullOrInt "1048576" "Most payload bytes per upload batch.";
            backoff_base_ms = nullOrInt "1000" "First retry delay after a failed upload.";
            backoff_cap_ms = nullOrInt "300000" "Longest retry delay.";
            request_timeout_ms = nullOrInt "30000" "Timeout of one upload request.";
          };
          log = {
            level = lib.mkOption {
              type = lib.types.str;
              default = "info";
              example = "info,outpost_agent=debug";
              description = "tracing filter directive.";
            };
            format = lib.mkOption {
              type = lib.types.enum [
                "auto"
                "text"
                "json"
                "journald"
              ];
              default = "auto";
              description = "`auto` logs to journald when started by systemd.";
            };
          };
        };
      };
    };

    configFile = lib.mkOption {
      type = lib.types.path;
      readOnly = true;
      description = "The rendered agent.toml (also linked to /etc/outpost/agent.toml).";
    };

    renderedSettings = lib.mkOption {
      type = lib.types.attrs;
      readOnly = true;
      internal = true;
      description = "The attribute set rendered into {option}`configFile` (for eval checks).";
    };

    readWritePaths = lib.mkOption {
      type = lib.types.listOf lib.types.str;
      default = [ ];
      internal = true;
      description = "Extra ReadWritePaths= for other Outpost modules (e.g. k3s manifests).";
    };
  };

  config = lib.mkIf cfg.enable (
    lib.mkMerge [
      {
        services.outpost.agent = {
          configFile = settingsFormat.generate "outpost-agent.toml" finalSettings;
          renderedSettings = finalSettings;
        };

        assertions = [
          {
            assertion = !(cfg.settings ? hub);
            message = "services.outpost.agent: set the hub with services.outpost.agent.hub (its key file must stay out of the Nix store), not settings.hub.";
          }
          {
            assertion = lib.hasPrefix "/run/" runtimeDir && runtimeDir != "/run";
            message = "services.outpost.agent.settings.api.socket must be in a folder below /run (it becomes RuntimeDirectory=).";
          }
        ];

        users.users.${cfg.user} = {
          isSystemUser = true;
          inherit (cfg) group;
          description = "Outpost agent";
        };
        users.groups.${cfg.group} = { };

        # For operators and `outpostctl --config /etc/outpost/agent.toml` (outpostctl also finds
        # the default socket /run/outpost/agent.sock by itself).
        environment.etc."outpost/agent.toml".source = cfg.configFile;
        environment.systemPackages = [ cfg.package ];

        systemd.services.${unitName} = {
          description = "Outpost device agent";
          wantedBy = [ "multi-user.target" ];
          wants = [ "network-online.target" ];
          after = [
            "network-online.target"
            "time-sync.target"
          ];
          # Never give up restarting: nobody is at the device to reset a failed unit.
          startLimitIntervalSec = 0;

          serviceConfig = {
            Type = "notify";
            NotifyAccess = "main";
            ExecStart = "${lib.getExe' cfg.package "outpost-agent"} --config ${cfg.configFile}";
            WatchdogSec = cfg.watchdogSec;
            Restart = "always";
            RestartSec = "2s";
            # The agent drains in-flight publishes on SIGTERM; give it time before SIGKILL.
            TimeoutStopSec = "30s";
            # glibc otherwise keeps up to 8 malloc arenas per core; two halve the agent's peak
            # RSS under load (62 -> 28 MiB in scripts/bench outbox) at no measurable cost.
            Environment = [ "MALLOC_ARENA_MAX=2" ];

            User = cfg.user;
            Group = cfg.group;
            StateDirectory = lib.removePrefix "/var/lib/" cfg.settings.state_dir;
            StateDirectoryMode = "0700";
            RuntimeDirectory = lib.removePrefix "/run/" runtimeDir;
            # Group members must traverse the folder to reach the socket.
            RuntimeDirectoryMode = "0750";
            UMask = "0077";
            ReadWritePaths = cfg.readWritePaths;

            LoadCredential = lib.optionals (cfg.hub != null) [
              "hub-ca.pem:${cfg.hub.caFile}"
              "device.pem:${cfg.hub.certFile}"
              "device.key:${cfg.hub.keyFile}"
            ];

            # Least privilege: no capabilities, no devices, nothing writable but its own dirs.
            CapabilityBoundingSet = [ "" ];
            AmbientCapabilities = [ "" ];
            NoNewPrivileges = true;
            ProtectSystem = "strict";
            ProtectHome = true;
            PrivateTmp = true;
            PrivateDevices = true;
            DevicePolicy = "closed";
            PrivateMounts = true;
            ProtectKernelTunables = true;
            ProtectKernelModules = true;
            ProtectKernelLogs = true;
            ProtectControlGroups = true;
            ProtectClock = true;
            ProtectHostname = true;
            ProtectProc = "invisible";
            ProcSubset = "pid";
            RestrictAddressFamilies = [
              "AF_UNIX"
              "AF_INET"
              "AF_INET6"
            ];
            RestrictNamespaces = true;
            RestrictRealtime = true;
            RestrictSUIDSGID = true;
            LockPersonality = true;
            MemoryDenyWriteExecute = true;
            RemoveIPC = true;
            KeyringMode = "private";
            SystemCallArchitectures = "native";
            SystemCallFilter = [
              "@system-service"
              "~@privileged"
              "~@resources"
            ];
            SystemCallErrorNumber = "EPERM";
          };
        };
      }
    ]
  );
}
