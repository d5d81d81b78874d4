# services.outpost.agent: the device daemon as a hardened systemd service, the health gate's
# outpost-health.service and the agent's D-Bus policy.
#
# Style follows nixpkgs nixos/modules/security/tpm2.nix (mkEnableOption, mkPackageOption,
# typed options with defaultText, config = mkIf cfg.enable (mkMerge [ ... ])); the token /
# tokenFile split follows nixos/modules/services/cluster/rancher/default.nix. The TOML file is
# rendered with pkgs.formats.toml, so it lands in the store: it must never hold a secret. The
# hub TLS files are therefore *paths* (hub.caFile/certFile/keyFile) that systemd hands to the
# service with LoadCredential=, and the rendered config points at the credential copies.
#
# The units are single-sourced: both are read from the shipped files in packaging/systemd
# (what non-NixOS systems install), and only what depends on options or store paths is replaced
# here (ExecStart, WatchdogSec, Group, StateDirectory, RuntimeDirectory, ReadWritePaths,
# LoadCredential). docs/systemd.md explains every line; tests/packaging/check-units verifies the
# files with systemd-analyze. Likewise the D-Bus policy is packaging/dbus/io.outpost.Agent.conf
# with the admin group and bus names substituted.
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

  # With [identity] the agent holds its key itself (TPM or file backend) and the hub issues the
  # certificate at enrollment: only the hub's CA is a credential then.
  withCertFiles = cfg.hub != null && cfg.hub.certFile != null;
  hubSection = lib.optionalAttrs (cfg.hub != null) {
    hub = {
      inherit (cfg.hub) url;
      ca = "${credentialDir}/hub-ca.pem";
    }
    // lib.optionalAttrs withCertFiles {
      cert = "${credentialDir}/device.pem";
      key = "${credentialDir}/device.key";
    };
  };

  finalSettings = dropNulls cfg.settings // hubSection;

  runtimeDir = dirOf cfg.settings.api.socket;

  # Reads a shipped unit file into { Unit = { ... }; Service = { ... }; Install = { ... }; }.
  # Grammar (checked by tests/packaging/check-units): "[Section]", "Key=Value", blank and "#"
  # lines. A key given once is a string, a repeated key a list (NixOS renders one line per
  # element, and other modules' lists for the same key are appended); yes/no become booleans.
  readUnit =
    file:
    let
      lines = lib.filter (l: l != "" && !(lib.hasPrefix "#" l)) (
        map lib.trim (lib.splitString "\n" (builtins.readFile file))
      );
      value =
        v:
        if v == "yes" then
          true
        else if v == "no" then
          false
        else
          v;
      step =
        acc: line:
        let
          section = builtins.match "\\[([A-Za-z]+)]" line;
          kv = builtins.match "([A-Za-z]+)=(.*)" line;
          key = lib.elemAt kv 0;
          old = acc.sections.${acc.current}.${key} or null;
          new = value (lib.elemAt kv 1);
        in
        if section != null then
          acc // { current = lib.head section; }
        else if kv != null && acc.current != null then
          lib.recursiveUpdate acc
            {
              sections.${acc.current}.${key} = if old == null then new else lib.toList old ++ [ new ];
            }
        else
          throw "${toString file}: cannot read line: ${line}";
    in
    (lib.foldl' step
      {
        current = null;
        sections = { };
      }
      lines).sections;

  # "a.target b.target" (or several such lines) -> [ "a.target" "b.target" ]
  words = v: lib.filter (w: w != "") (lib.concatMap (lib.splitString " ") (lib.toList v));

  # A shipped unit as a NixOS systemd.services entry: the [Unit] keys that have NixOS options
  # go there (so other modules can add to them), every other key goes through verbatim. Keys
  # that other modules typically extend are always lists, so their lists are appended.
  fromShipped =
    unit:
    let
      u = unit.Unit;
      deps = [
        "Description"
        "Wants"
        "Requires"
        "After"
        "Before"
      ];
      listKeys = [
        "Environment"
        "ReadWritePaths"
        "DeviceAllow"
        "SupplementaryGroups"
        "SystemCallFilter"
      ];
    in
    {
      description = u.Description;
      wants = words (u.Wants or [ ]);
      requires = words (u.Requires or [ ]);
      after = words (u.After or [ ]);
      before = words (u.Before or [ ]);
      unitConfig = removeAttrs u deps;
      serviceConfig = lib.mapAttrs (k: v: if lib.elem k listKeys then lib.toList v else v) unit.Service;
      wantedBy = words (unit.Install.WantedBy or [ ]);
      requiredBy = words (unit.Install.RequiredBy or [ ]);
    };

  agentUnit = fromShipped (readUnit ../packaging/systemd/outpost-agent.service);
  healthUnit = fromShipped (readUnit ../packaging/systemd/outpost-health.service);

  # The names the agent owns ([dbus], docs/configuration.md): none without a [dbus] table, and
  # a name set to "" is not served. The policy is installed only when a name is served, and the
  # rules of a name not served are pointed at the other one (where they match nothing the
  # agent serves), so the policy never touches a real RAUC running beside the agent.
  dbusNames =
    let
      d = cfg.settings.dbus or null;
      rauc = if d == null then "" else d.rauc_name or "de.pengutronix.rauc";
      agent = if d == null then "" else d.agent_name or "io.outpost.Agent";
    in
    {
      rauc = if rauc == "" then agent else rauc;
      agent = if agent == "" then rauc else agent;
      served = rauc != "" || agent != "";
    };
  dbusPolicy = pkgs.writeTextDir "share/dbus-1/system.d/io.outpost.Agent.conf" (
    lib.replaceStrings
      [
        ''group="outpost-admin"''
        ''"de.pengutronix.rauc"''
        ''"io.outpost.Agent"''
      ]
      [
        ''group="${cfg.adminGroup}"''
        ''"${dbusNames.rauc}"''
        ''"${dbusNames.agent}"''
      ]
      (builtins.readFile ../packaging/dbus/io.outpost.Agent.conf)
  );
in
{
  imports = [
    (lib.mkRemovedOptionModule [
      "services"
      "outpost"
      "agent"
      "user"
    ] "outpost-agent runs as root (it writes slot devices and the bootloader environment); see docs/systemd.md.")
  ];

  options.services.outpost.agent = {
    enable = lib.mkEnableOption "the Outpost device agent (durable telemetry outbox, local API)";

    package = lib.mkPackageOption pkgs "outpost-agent" { };

    group = lib.mkOption {
      type = lib.types.str;
      default = "outpost";
      description = ''
        Group of the agent (which runs as root). The local API socket is created with this
        group and {option}`settings.api.socket_mode` (0660 by default), so users and services
        that may publish records are added to this group (e.g.
        `users.users.app.extraGroups = [ "outpost" ]` or `SupplementaryGroups=outpost`).
        outpost-health.service joins it to ask the health gate.
      '';
    };

    adminGroup = lib.mkOption {
      type = lib.types.str;
      default = "outpost-admin";
      description = ''
        Members may call the agent's mutating D-Bus methods on the system bus: RAUC's
        `InstallBundle`, `Install` and `Mark`, and `io.outpost.Agent1.Publish`. Everyone may
        call the read-only ones; root may call everything. Created by this module.
      '';
    };

    watchdogSec = lib.mkOption {
      type = lib.types.str;
      default = "30s";
      description = ''
        systemd WatchdogSec= for the agent. The agent pings at most every min(WatchdogSec/2,
        10s) (agent/src/systemd.rs); a hung agent is killed and restarted, and five restarts
        within 10 minutes reboot the device (docs/systemd.md).
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
              type = lib.types.nullOr devicePath;
              default = null;
              example = "/var/lib/outpost-identity/device.pem";
              description = ''
                PEM file with this device's client certificate (CN = device id). Leave it and
                keyFile unset when `settings.identity` lets the agent enroll for one.
              '';
            };
            keyFile = lib.mkOption {
              type = lib.types.nullOr devicePath;
              default = null;
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
            assertion =
              cfg.hub == null
              || (cfg.hub.certFile == null) == (cfg.hub.keyFile == null)
              && (cfg.hub.certFile != null) != (cfg.settings ? identity);
            message = "services.outpost.agent.hub: set certFile and keyFile, or neither and settings.identity (the agent enrolls for its certificate).";
          }
          {
            assertion = lib.hasPrefix "/run/" runtimeDir && runtimeDir != "/run";
            message = "services.outpost.agent.settings.api.socket must be in a folder below /run (it becomes RuntimeDirectory=).";
          }
        ];

        users.groups.${cfg.group} = { };
        users.groups.${cfg.adminGroup} = { };
        # SupplementaryGroups=tss of the shipped unit (owner of /dev/tpmrm0 with
        # security.tpm2.enable); the group must exist even on a device without a TPM.
        users.groups.tss = { };

        # For operators and `outpostctl --config /etc/outpost/agent.toml` (outpostctl also finds
        # the default socket /run/outpost/agent.sock by itself).
        environment.etc."outpost/agent.toml".source = cfg.configFile;
        environment.systemPackages = [ cfg.package ];

        services.dbus.packages = lib.optional dbusNames.served dbusPolicy;

        # packaging/systemd/outpost-agent.service with this system's paths.
        systemd.services.${unitName} = agentUnit // {
          serviceConfig = agentUnit.serviceConfig // {
            ExecStart = "${lib.getExe' cfg.package "outpost-agent"} --config ${cfg.configFile}";
            WatchdogSec = cfg.watchdogSec;
            Group = cfg.group;
            StateDirectory = lib.removePrefix "/var/lib/" cfg.settings.state_dir;
            RuntimeDirectory = lib.removePrefix "/run/" runtimeDir;
            ReadWritePaths = agentUnit.serviceConfig.ReadWritePaths ++ cfg.readWritePaths;
            LoadCredential =
              lib.optional (cfg.hub != null) "hub-ca.pem:${cfg.hub.caFile}"
                ++ lib.optionals withCertFiles [
                "device.pem:${cfg.hub.certFile}"
                "device.key:${cfg.hub.keyFile}"
              ];
          };
        };

        # packaging/systemd/outpost-health.service: boot-complete.target (and so
        # systemd-bless-boot) waits for the health gate's decision.
        systemd.services.outpost-health = healthUnit // {
          serviceConfig = healthUnit.serviceConfig // {
            ExecStart = "${lib.getExe' cfg.package "outpostctl"} --socket ${cfg.settings.api.socket} health --wait";
            SupplementaryGroups = [ cfg.group ];
          };
        };
      }
    ]
  );
}
