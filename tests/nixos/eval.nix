# Offline evaluation checks of the Outpost modules: nixpkgs `lib` only, no nixpkgs package set,
# no NixOS. The options our modules *set* outside their own namespace (systemd, users,
# fileSystems, ...) are stubbed as free-form attribute sets, so these checks prove our option
# declarations, defaults, types, assertions and rendered values, not NixOS's acceptance of them
# (that needs a real nixpkgs: `nix flake check` on a Nix machine).
#
#   nix-instantiate --eval --strict --json tests/nixos/eval.nix --arg lib 'import <path>/lib'
#
# Evaluates to the list of check names that passed; any failure aborts with a message.
# With --arg espFiles true it evaluates instead to the uefi image's ESP as files (path -> text,
# null for a binary), which scripts/check-nix-eval lays out and lists with the real bootctl;
# with --arg agentConfigs true to the agent settings the boards render (name -> settings), which
# it gives to the real `outpost-agent --check` when one is built.
{ lib
, espFiles ? false
, agentConfigs ? false
}:

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
      services.udev = free;
      image = free;
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
    # For images/*.nix: keep what is written, so the check can read the ESP's files.
    writeText = name: text: fakeDrv name // { inherit text; };
    runCommand = name: _env: script: fakeDrv name // { inherit script; };
    systemd = fakeDrv "systemd";
    raspberrypifw = fakeDrv "raspberrypifw";
    stdenv.hostPlatform.efiArch = "x64";
  };

  utils.escapeSystemdPath = s: lib.replaceStrings [ "/" ] [ "-" ] (lib.removePrefix "/" s);

  eval =
    modules:
    (lib.evalModules {
      # modulesPath: images/*.nix import image/repart.nix from it; the stub declares nothing
      # (nixosStub's free `image` option takes image.repart).
      specialArgs = {
        inherit pkgs utils;
        modulesPath = toString ./stubs;
      };
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

  # A system with the agent enabled and these services.outpost.agent options.
  agentWith = agent: eval [{ services.outpost.agent = { enable = true; } // agent; }];
  # A hub with the device's certificate and key files (on /var, as a device keeps them).
  hubWithFiles = {
    url = "https://hub";
    caFile = "/var/lib/x/ca.pem";
    certFile = "/var/lib/x/cert.pem";
    keyFile = "/var/lib/x/key.pem";
  };

  agentMinimal = agentWith { };
  agentMinimalUnit = agentMinimal.systemd.services.outpost-agent.serviceConfig;
  agentMinimalHealth = agentMinimal.systemd.services.outpost-health;
  agentPolicy = lib.head (agentWith { settings.dbus = { }; }).services.dbus.packages;

  agentFull = agentWith {
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
      "update"
      "health"
      "dbus"
      "identity"
      "delivery"
      "workloads"
      "k3s"
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

  # A board as images/default.nix assembles it, with the image builder, so the check sees the
  # ESP's files, the mounts and the agent's [update] of one system.
  board =
    bootMethod: image: extra:
    eval [
      image
      extra
      {
        outpost.immutable.enable = true;
        outpost.ab = {
          enable = true;
          inherit bootMethod;
          compatible = "outpost-test";
        };
        services.outpost.agent.enable = true;
        boot.kernelParams = [ "console=ttyS0,115200" ];
        boot.kernelPackages.kernel = fakeDrv "kernel";
        system.build = {
          toplevel = fakeDrv "toplevel";
          uki = fakeDrv "uki";
          image = fakeDrv "image";
          initialRamdisk = fakeDrv "initrd";
        };
        system.boot.loader = {
          ukiFile = "outpost_0.1.0.efi";
          kernelFile = "Image";
          initrdFile = "initrd";
        };
        image.baseName = "outpost_0.1.0";
      }
    ];
  uefi = board "uefi" ../../images/uefi.nix { };
  rpi = board "rpi-tryboot" ../../images/rpi-tryboot.nix { };
  # With K3s: the agent also gets [k3s] and [workloads].
  uefiK3s = board "uefi" ../../images/uefi.nix {
    outpost.k3s.enable = true;
    services.k3s.package = k3sPkgs;
  };
  uefiUpdate = uefi.services.outpost.agent.renderedSettings.update;
  rpiUpdate = rpi.services.outpost.agent.renderedSettings.update;
  esp = uefi.image.repart.partitions."10-esp".contents;

  # The agent's entry-name codec (agent/boot/src/systemd_boot/name.rs EntryName::parse and
  # backend.rs parse_stem): "<prefix>_<generation>-<bootname>[+LEFT[-DONE]].<conf|efi>".
  parseEntry =
    prefix: file:
    let
      m = builtins.match "${lib.escapeRegex prefix}_([0-9]+)-([^+]+)(\\+([0-9]+)(-([0-9]+))?)?\\.(conf|efi)" file;
    in
    if m == null then
      null
    else
      {
        generation = lib.toInt (lib.elemAt m 0);
        bootname = lib.elemAt m 1;
        counted = lib.elemAt m 2 != null;
        ext = lib.elemAt m 6;
      };

  # Every key the agent accepts in [update] and [[update.slots]] (agent/src/config/update.rs,
  # RawUpdate and RawSlot; both deny unknown fields).
  updateKeys = [
    "system_conf"
    "compatible"
    "bootloader"
    "grubenv"
    "fw_env_config"
    "custom_backend"
    "autoboot"
    "esp"
    "entries"
    "entry_prefix"
    "efivars"
    "boot_attempts"
    "boot_attempts_primary"
    "data_directory"
    "keyring"
    "check_purpose"
    "min_version"
    "activate_installed"
    "variant"
    "booted_slot"
    "boot_id"
    "slots"
  ];
  slotKeys = [
    "class"
    "index"
    "device"
    "type"
    "bootname"
    "parent"
    "readonly"
    "boot_partition"
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
if espFiles then
  lib.mapAttrs (_: file: file.source.text or null) esp
else if agentConfigs then
  lib.mapAttrs (_: c: c.services.outpost.agent.renderedSettings)
  {
    inherit uefi rpi uefiK3s;
  }
else
  [
    (check "modules: any combination of the flake's modules declares each option once" (
      !(throws
        (eval [
          ../../modules/agent.nix
          ../../modules/ab-layout.nix
          ../../modules/k3s.nix
          { services.outpost.agent.enable = true; }
        ]).services.outpost.agent.renderedSettings)
    ))
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
        policyOf = agent: map (p: p.text) (agentWith agent).services.dbus.packages;
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
    (check "agent: with [identity] only the hub's CA is a credential; cert files xor identity" (
      let
        enrolling = hub: settings: agentWith { inherit hub settings; };
        caOnly = removeAttrs hubWithFiles [ "certFile" "keyFile" ];
        tpm = {
          identity.backend = "tpm";
        };
        ok = enrolling caOnly tpm;
      in
      failedAssertions ok == [ ]
      && ok.services.outpost.agent.renderedSettings.hub == {
        url = "https://hub";
        ca = "/run/credentials/outpost-agent.service/hub-ca.pem";
      }
      && ok.systemd.services.outpost-agent.serviceConfig.LoadCredential == [ "hub-ca.pem:/var/lib/x/ca.pem" ]
      # neither files nor identity, both, or half of the files: refused
      && failedAssertions (enrolling caOnly { }) != [ ]
      && failedAssertions (enrolling hubWithFiles tpm) != [ ]
      && failedAssertions (enrolling (caOnly // { certFile = "/var/lib/x/cert.pem"; }) { }) != [ ]
    ))
    (check "agent: a key file in the Nix store is refused" (
      throws
        (agentWith {
          hub = hubWithFiles // { keyFile = "/nix/store/00000000000000000000000000000000-device.key"; };
        }).services.outpost.agent.hub
    ))
    (check "agent: settings.hub is refused (it would bypass credentials)" (
      failedAssertions (agentWith { settings.hub.url = "https://hub"; }) != [ ]
    ))
    (check "agent: bad values are type errors" (
      throws (agentWith { settings.outbox.default_priority = "urgent"; }).services.outpost.agent.renderedSettings
      && throws (agentWith { settings.api.socket = "agent.sock"; }).services.outpost.agent.renderedSettings
      && throws (agentWith { hub = hubWithFiles // { url = "http://hub"; }; }).services.outpost.agent.hub
    ))
    (check "ab-layout: the store is the booted slot's, found by udev from outpost.slot=" (
      failedAssertions uefi == [ ]
      && uefi.fileSystems."/nix/store".device == "/dev/outpost/store"
      && uefi.fileSystems."/nix/store".options == [ "ro" ]
      && uefi.fileSystems."/var".device == "/dev/disk/by-partlabel/outpost-var"
      && uefi.fileSystems."/boot".device == "/dev/disk/by-partlabel/outpost-esp"
      && uefi.boot.initrd.services.udev.rules == uefi.services.udev.extraRules
      && lib.all
        (n: lib.hasInfix
          ''ENV{ID_PART_ENTRY_NAME}=="outpost-store-${lib.toLower n}", ENV{outpost.slot}=="${n}", SYMLINK+="outpost/store"''
          uefi.services.udev.extraRules)
        [ "A" "B" ]
      && uefi.systemd.targets.boot-complete.requires == [ "outpost-health.service" ]
    ))
    (check "ab-layout: the agent's [update] uses only keys the agent knows" (
      onlyKnown updateKeys uefiUpdate
      && onlyKnown updateKeys rpiUpdate
      && lib.all (onlyKnown slotKeys) (uefiUpdate.slots ++ rpiUpdate.slots)
      && onlyKnown agentKeys.top uefi.services.outpost.agent.renderedSettings
    ))
    (check "ab-layout: uefi factory entries are what the agent's systemd-boot backend expects" (
      let
        entryFiles = lib.filter (lib.hasPrefix "/${uefiUpdate.entries}/") (lib.attrNames esp);
        entries = map (f: parseEntry uefiUpdate.entry_prefix (baseNameOf f) // { path = f; }) entryFiles;
        byName = lib.listToAttrs (map (e: lib.nameValuePair e.bootname e) entries);
        roots = lib.filter (s: s ? bootname) uefiUpdate.slots;
        childOf = r: lib.findFirst (s: s.parent or null == "rootfs.${toString r.index}") null uefiUpdate.slots;
        # The key lines of a Type #1 entry, as systemd-boot reads them.
        keys = text: lib.listToAttrs (map
          (l: let m = builtins.match "([a-z-]+) +(.*)" l; in lib.nameValuePair (lib.elemAt m 0) (lib.elemAt m 1))
          (lib.filter (l: l != "") (lib.splitString "\n" text)));
        entryOk =
          r:
          let
            e = byName.${r.bootname};
            k = keys esp.${e.path}.source.text;
            boot = childOf r;
          in
          e.ext == "conf"
          && !e.counted
          && boot != null
          # the entry starts the slot's own UKI, the file its boot slot writes
          && uefiUpdate.esp + k.efi == boot.device
          && esp ? ${k.efi}
          && lib.hasInfix "outpost.slot=${r.bootname} " (k.options + " ")
          && lib.hasPrefix "init=/nix/store/.outpost-system/init " k.options
          && !(k ? sort-key) && !(k ? version);
      in
      uefiUpdate.bootloader == "systemd-boot"
      && uefiUpdate.esp == "/boot"
      && uefiUpdate.entries == "loader/entries"
      && uefiUpdate.entry_prefix == "outpost"
      && uefiUpdate.boot_attempts == 3
      && uefiUpdate.compatible == "outpost-test"
      && lib.all (e: e != null) entries
      && lib.sort lib.lessThan (lib.attrNames byName) == [ "A" "B" ]
      && map (r: r.bootname) roots == [ "A" "B" ]
      && lib.all entryOk roots
      # A is primary: blessed and the higher generation (outpost_1-A.conf, outpost_0-B.conf)
      && byName.A.generation > byName.B.generation
      && lib.sort lib.lessThan (map baseNameOf entryFiles) == [ "outpost_0-B.conf" "outpost_1-A.conf" ]
      # loader.conf pins nothing: a default matching one slot would beat a failed trial
      && builtins.match "(.*\n)?default .*" esp."/loader/loader.conf".source.text == null
      && lib.all (r: uefi.image.repart.partitions.${r}.repartConfig.Label or null != null) [ "20-store-a" "30-store-b" ]
      && map (s: s.device) roots == map (p: "/dev/disk/by-partlabel/${uefi.image.repart.partitions.${p}.repartConfig.Label}") [ "20-store-a" "30-store-b" ]
    ))
    (check "ab-layout: rpi-tryboot slots name the partitions autoboot.txt and config.txt use" (
      let
        parts = rpi.image.repart.partitions;
        roots = lib.filter (s: s ? bootname) rpiUpdate.slots;
        boots = lib.filter (s: s.class == "boot") rpiUpdate.slots;
        configTxt = rpi.system.build.outpostRpiConfigTxt.text;
        bootScript = rpi.system.build.outpostRpiBootFiles.script;
        # config.txt picks cmdline-<x>.txt on the slot's partition; that file names the slot
        cmdlineOk =
          r:
          let
            file = "cmdline-${lib.toLower r.bootname}.txt";
          in
          lib.hasInfix "[boot_partition=${toString r.boot_partition}]\ncmdline=${file}\n" configTxt
          && lib.hasInfix "outpost.slot=${r.bootname} console=ttyS0,115200' > $out/${file}" bootScript;
      in
      rpiUpdate.bootloader == "rpi-tryboot"
      && rpiUpdate.autoboot == "/boot/firmware/autoboot.txt"
      && rpi.fileSystems."/boot/firmware".device == "/dev/disk/by-partlabel/${parts."10-autoboot".repartConfig.Label}"
      && map (s: s.boot_partition) roots == [ 2 3 ]
      # partitions 2 and 3 (in repart's order) are the boot slots' devices
      && map (s: s.device) boots == map (p: "/dev/disk/by-partlabel/${parts.${p}.repartConfig.Label}") [ "20-boot-a" "30-boot-b" ]
      && lib.all (s: s.type == "vfat") boots
      && map (s: s.device) roots == map (p: "/dev/disk/by-partlabel/${parts.${p}.repartConfig.Label}") [ "40-store-a" "50-store-b" ]
      && lib.all cmdlineOk roots
      && !(rpiUpdate ? esp)
    ))
    (check "bundle: one image per slot class, for this board's compatible and version" (
      let
        manifest = uefi.system.build.outpostBundleManifest.text;
        # [image.<class>] headers of the manifest
        classes = lib.concatMap
          (l: let m = builtins.match "\\[image\\.([a-z]+)]" l; in if m == null then [ ] else m)
          (lib.splitString "\n" manifest);
      in
      lib.sort lib.lessThan classes == lib.sort lib.lessThan (lib.unique (map (s: s.class) uefiUpdate.slots))
      && lib.hasInfix "compatible=${uefiUpdate.compatible}\n" manifest
      && lib.hasInfix "version=0.1.0\n" manifest
      && lib.hasInfix "[image.boot]\nfilename=boot.efi\n" manifest
      && lib.hasInfix "[image.boot]\nfilename=boot.vfat\n" rpi.system.build.outpostBundleManifest.text
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
