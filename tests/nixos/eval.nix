# Offline evaluation checks of the Outpost modules: nixpkgs `lib` only, no nixpkgs package set,
# no NixOS. The options our modules *set* outside their own namespace (systemd, users,
# fileSystems, ...) are stubbed as free-form attribute sets, so these checks prove our option
# declarations, defaults, types, assertions and rendered values, not NixOS's acceptance of them
# (that needs a real nixpkgs: `nix flake check` on a Nix machine).
#
#   nix-instantiate --eval --strict --json tests/nixos/eval.nix --arg lib 'import <path>/lib'
#
# Evaluates to the list of check names that passed; any failure aborts with a message.
{ lib }:

let
  inherit (lib) mkOption types;

  free = mkOption {
    type = types.lazyAttrsOf types.anything;
    default = { };
  };

  # Stand-ins for the NixOS options our modules define values for.
  nixosStub = {
    options = {
      assertions = mkOption {
        type = types.listOf types.anything;
        default = [ ];
      };
      warnings = mkOption {
        type = types.listOf types.str;
        default = [ ];
      };
      users = free;
      environment = free;
      systemd = free;
      fileSystems = free;
      boot = free;
      system = free;
      nix = free;
      networking = free;
      documentation = free;
      programs = free;
      services.k3s = free;
      services.userborn = free;
      services.resolved = free;
      services.timesyncd = free;
      services.journald = free;
      services.dbus = free;
    };
    config.system.image = {
      id = "outpost";
      version = "0.1.0";
    };
  };

  fakeDrv = name: {
    type = "derivation";
    inherit name;
    outPath = "/nix/store/00000000000000000000000000000000-${name}";
    meta.mainProgram = name;
  };

  # The few pkgs attributes the modules use. formats.toml keeps the value to inspect it.
  pkgs = {
    formats.toml =
      {}:
      {
        type = types.attrsOf types.anything;
        generate = name: _value: "/nix/store/00000000000000000000000000000000-${name}";
      };
    outpost-agent = fakeDrv "outpost-agent";
    # Keeps the text, so the D-Bus policy the module installs can be inspected.
    writeTextDir = path: text: fakeDrv (baseNameOf path) // { inherit path text; };
    coreutils = fakeDrv "coreutils";
  };

  utils.escapeSystemdPath = s: lib.replaceStrings [ "/" ] [ "-" ] (lib.removePrefix "/" s);

  eval =
    modules:
    (lib.evalModules {
      specialArgs = { inherit pkgs utils; };
      modules = [
        nixosStub
        ../../modules/default.nix
      ]
      ++ modules;
    }).config;

  failedAssertions = cfg: map (a: a.message) (lib.filter (a: !a.assertion) cfg.assertions);

  # Forces a value and reports whether evaluating it threw (a type error, a failed check).
  throws = v: !(builtins.tryEval (builtins.deepSeq v v)).success;

  check =
    name: ok: if ok then name else throw "tests/nixos/eval.nix: check '${name}' failed";

  # ---- the agent module --------------------------------------------------------------------

  agentMinimal = eval [{ services.outpost.agent.enable = true; }];
  agentMinimalUnit = agentMinimal.systemd.services.outpost-agent.serviceConfig;
  agentMinimalHealth = agentMinimal.systemd.services.outpost-health;
  agentPolicy = lib.head
    (eval [
      {
        services.outpost.agent = {
          enable = true;
          settings.dbus = { };
        };
      }
    ]).services.dbus.packages;

  agentFull = eval [
    {
      services.outpost.agent = {
        enable = true;
        settings = {
          device_id = "device-001";
          api.tcp = "127.0.0.1:7701";
          outbox = {
            max_bytes = 1000000;
            default_priority = "best_effort";
            streams.alarms.priority = "critical";
          };
          uploader.batch_max_records = 10;
          log.format = "json";
        };
        hub = {
          url = "https://hub.example:8443";
          caFile = "/var/lib/outpost-identity/hub-ca.pem";
          certFile = "/var/lib/outpost-identity/device.pem";
          keyFile = "/var/lib/outpost-identity/device.key";
        };
      };
    }
  ];
  rendered = agentFull.services.outpost.agent.renderedSettings;
  fullUnit = agentFull.systemd.services.outpost-agent.serviceConfig;

  # Every key the agent accepts (agent/src/config.rs, RawConfig; it denies unknown fields).
  agentKeys = {
    top = [
      "device_id"
      "state_dir"
      "api"
      "outbox"
      "hub"
      "uploader"
      "log"
    ];
    api = [
      "socket"
      "socket_mode"
      "tcp"
      "max_body_bytes"
    ];
    outbox = [
      "path"
      "max_bytes"
      "default_priority"
      "streams"
    ];
    hub = [
      "url"
      "ca"
      "cert"
      "key"
    ];
    uploader = [
      "batch_max_records"
      "batch_max_bytes"
      "backoff_base_ms"
      "backoff_cap_ms"
      "request_timeout_ms"
    ];
    log = [
      "level"
      "format"
    ];
  };
  onlyKnown =
    keys: attrs: lib.all (k: lib.elem k keys) (lib.attrNames attrs);

  # ---- layout, immutability, k3s -----------------------------------------------------------

  uefi = eval [
    {
      outpost.immutable.enable = true;
      outpost.ab = {
        enable = true;
        bootMethod = "uefi";
      };
      services.outpost.agent.enable = true;
    }
  ];
  rpi = eval [
    {
      outpost.ab = {
        enable = true;
        bootMethod = "rpi-tryboot";
      };
    }
  ];
  withK3s = eval [
    {
      outpost.immutable.enable = true;
      outpost.k3s.enable = true;
    }
  ];
  k3sPkgs = {
    airgap-images = fakeDrv "k3s-airgap-images";
  };
in
[
  (check "agent: minimal config has no assertion failures" (failedAssertions agentMinimal == [ ]))
  (check "agent: defaults match the agent's own defaults" (
    let
      s = agentMinimal.services.outpost.agent.renderedSettings;
    in
    s.state_dir == "/var/lib/outpost"
    && s.api.socket == "/run/outpost/agent.sock"
    && s.api.socket_mode == "0660"
    && s.log == {
      level = "info";
      format = "auto";
    }
    && !(s ? hub)
    && !(s.api ? tcp)
    && s.uploader == { }
  ))
  (check "agent: unit is Type=notify with watchdog; a crash loop reboots" (
    agentMinimalUnit.Type == "notify"
    && agentMinimalUnit.WatchdogSec == "30s"
    && agentMinimalUnit.Restart == "always"
    && agentMinimal.systemd.services.outpost-agent.unitConfig.StartLimitAction == "reboot"
    && agentMinimal.systemd.services.outpost-agent.wantedBy == [ "multi-user.target" ]
  ))
  (check "agent: unit is the shipped one (root, one capability, closed device policy)" (
    agentMinimalUnit.User == "root"
    && agentMinimalUnit.Group == "outpost"
    && agentMinimalUnit.SupplementaryGroups == [ "tss" ]
    && agentMinimalUnit.CapabilityBoundingSet == "CAP_SYS_BOOT"
    && agentMinimalUnit.NoNewPrivileges
    && agentMinimalUnit.ProtectSystem == "strict"
    && agentMinimalUnit.ProtectHome
    && agentMinimalUnit.PrivateTmp
    && agentMinimalUnit.DevicePolicy == "closed"
    && lib.elem "char-tpmrm rw" agentMinimalUnit.DeviceAllow
    && agentMinimalUnit.RestrictAddressFamilies == "AF_UNIX AF_INET AF_INET6 AF_NETLINK"
    && lib.elem "@system-service" agentMinimalUnit.SystemCallFilter
    && agentMinimalUnit.StateDirectory == "outpost"
    && agentMinimalUnit.RuntimeDirectory == "outpost"
    && lib.elem "-/boot" agentMinimalUnit.ReadWritePaths
    && agentMinimalUnit.LoadCredential == [ ]
    && lib.hasPrefix "/nix/store/" agentMinimalUnit.ExecStart
  ))
  (check "agent: outpost-health gates boot-complete.target on the health gate" (
    agentMinimalHealth.requiredBy == [ "boot-complete.target" ]
    && agentMinimalHealth.before == [ "boot-complete.target" ]
    && agentMinimalHealth.requires == [ "outpost-agent.service" ]
    && agentMinimalHealth.after == [ "outpost-agent.service" ]
    && agentMinimalHealth.serviceConfig.Type == "oneshot"
    && agentMinimalHealth.serviceConfig.SupplementaryGroups == [ "outpost" ]
    && lib.hasSuffix "outpostctl --socket /run/outpost/agent.sock health --wait"
      agentMinimalHealth.serviceConfig.ExecStart
  ))
  (check "agent: D-Bus policy follows [dbus]: admin group and names substituted" (
    let
      policyOf =
        agent:
        map (p: p.text)
          (eval [
            {
              services.outpost.agent = {
                enable = true;
              }
              // agent;
            }
          ]).services.dbus.packages;
      default = policyOf { settings.dbus = { }; };
      custom = policyOf {
        adminGroup = "ops";
        settings.dbus.rauc_name = "io.outpost.Rauc";
      };
      besideRauc = policyOf { settings.dbus.rauc_name = ""; };
      has = s: texts: texts != [ ] && lib.hasInfix s (lib.head texts);
    in
    agentPolicy.path == "share/dbus-1/system.d/io.outpost.Agent.conf"
    && has ''group="outpost-admin"'' default
    && has ''own="de.pengutronix.rauc"'' default
    && agentMinimal.users.groups ? outpost-admin
    && has ''group="ops"'' custom
    && !(has ''group="outpost-admin"'' custom)
    && has ''own="io.outpost.Rauc"'' custom
    && has ''send_interface="de.pengutronix.rauc.Installer"'' custom
    # beside a real RAUC: nothing names it
    && !(has ''"de.pengutronix.rauc"'' besideRauc)
    && has ''own="io.outpost.Agent"'' besideRauc
    # no [dbus] table: the agent owns no name, no policy is installed
    && (agentMinimal.services.dbus.packages or [ ]) == [ ]
  ))
  (check "agent: rendered keys are all keys the agent knows" (
    onlyKnown agentKeys.top rendered
    && onlyKnown agentKeys.api rendered.api
    && onlyKnown agentKeys.outbox rendered.outbox
    && onlyKnown agentKeys.hub rendered.hub
    && onlyKnown agentKeys.uploader rendered.uploader
    && onlyKnown agentKeys.log rendered.log
    && rendered.outbox.streams.alarms == {
      priority = "critical";
    }
  ))
  (check "agent: hub files reach the agent as credentials, never as store paths" (
    rendered.hub.key == "/run/credentials/outpost-agent.service/device.key"
    && rendered.hub.ca == "/run/credentials/outpost-agent.service/hub-ca.pem"
    && fullUnit.LoadCredential == [
      "hub-ca.pem:/var/lib/outpost-identity/hub-ca.pem"
      "device.pem:/var/lib/outpost-identity/device.pem"
      "device.key:/var/lib/outpost-identity/device.key"
    ]
  ))
  (check "agent: a key file in the Nix store is refused" (
    throws
      (eval [
        {
          services.outpost.agent = {
            enable = true;
            hub = {
              url = "https://hub";
              caFile = "/var/lib/x/ca.pem";
              certFile = "/var/lib/x/cert.pem";
              keyFile = "/nix/store/00000000000000000000000000000000-device.key";
            };
          };
        }
      ]).services.outpost.agent.hub
  ))
  (check "agent: settings.hub is refused (it would bypass credentials)" (
    failedAssertions
      (eval [
        {
          services.outpost.agent = {
            enable = true;
            settings.hub.url = "https://hub";
          };
        }
      ]) != [ ]
  ))
  (check "agent: bad values are type errors" (
    throws
      (eval [
        {
          services.outpost.agent = {
            enable = true;
            settings.outbox.default_priority = "urgent";
          };
        }
      ]).services.outpost.agent.renderedSettings
    && throws
      (eval [
        {
          services.outpost.agent = {
            enable = true;
            settings.api.socket = "agent.sock";
          };
        }
      ]).services.outpost.agent.renderedSettings
    && throws
      (eval [
        {
          services.outpost.agent = {
            enable = true;
            hub = {
              url = "http://hub";
              caFile = "/a";
              certFile = "/b";
              keyFile = "/c";
            };
          };
        }
      ]).services.outpost.agent.hub
  ))
  (check "ab-layout: uefi mounts the store of its own version, read-only" (
    failedAssertions uefi == [ ]
    && uefi.fileSystems."/nix/store".device == "/dev/disk/by-partlabel/outpost-store_0.1.0"
    && uefi.fileSystems."/nix/store".options == [ "ro" ]
    && uefi.fileSystems."/var".device == "/dev/disk/by-partlabel/outpost-var"
    && uefi.boot.uki.tries == 3
    && uefi.systemd.targets.boot-complete.requires == [ "outpost-agent.service" ]
    && uefi.outpost.ab.slots.store.match_pattern == "outpost-store_@v"
  ))
  (check "ab-layout: rpi-tryboot publishes the A/B boot partitions" (
    rpi.outpost.ab.slots.rpi.boot_partitions.A.number == 2
    && rpi.outpost.ab.slots.rpi.boot_partitions.B.label == "outpost-boot-b"
    && !(rpi.outpost.ab.slots ? esp)
    && builtins.fromJSON rpi.environment.etc."outpost/slots.json".text == rpi.outpost.ab.slots
  ))
  (check "immutable: tmpfs root, read-only etc, no nix, no switch" (
    uefi.fileSystems."/".fsType == "tmpfs"
    && uefi.system.etc.overlay.mutable == false
    && uefi.nix.enable == false
    && uefi.system.switch.enable == false
    && uefi.users.mutableUsers == false
  ))
  (check "k3s: single-node server, airgap images, /etc/rancher persisted" (
    let
      k3s = withK3s.services.k3s;
    in
    k3s.role == "server"
    && lib.elem "traefik" k3s.disable
    && withK3s.outpost.immutable.persistentEtcDirs == [ "rancher" ]
    && withK3s.fileSystems."/etc/rancher".device == "/var/lib/outpost-etc/rancher"
    # images reads services.k3s.package, which the stub does not have: give it one.
    && (eval [
      {
        outpost.k3s.enable = true;
        services.k3s.package = k3sPkgs;
      }
    ]).services.k3s.images == [ k3sPkgs.airgap-images ]
  ))
]
