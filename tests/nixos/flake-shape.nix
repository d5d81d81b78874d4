# Offline check of flake.nix's outputs: calls its `outputs` function with stand-in inputs
# (nixpkgs' lib plus fake package sets, a fake crane) and checks the output names and wiring.
# It does not evaluate NixOS or nixpkgs packages; `nix flake check` on a Nix machine does.
#
#   nix-instantiate --eval --strict --json tests/nixos/flake-shape.nix --arg lib 'import <lib>'
{ lib }:

let
  flake = import ../../flake.nix;
  systems = [
    "x86_64-linux"
    "aarch64-linux"
  ];

  fakePkgs = system: {
    inherit lib;
    stdenv.hostPlatform.system = system;
    nixpkgs-fmt = "nixpkgs-fmt";
    testers.runNixOSTest = test: { inherit test; };
  };

  nixpkgs = {
    lib = lib // {
      # Remembers its arguments, so the checks can follow each package back to its system.
      nixosSystem = args: {
        inherit args;
        config.system.build = {
          image.imageOf = args;
          outpostBundle.bundleOf = args;
        };
      };
    };
    legacyPackages = lib.genAttrs systems fakePkgs;
  };

  crane.mkLib = _pkgs: {
    cleanCargoSource = src: src;
    buildDepsOnly = args: "deps-of-${args.pname}";
    buildPackage = args: {
      inherit (args) pname version cargoExtraArgs cargoArtifacts;
    };
    devShell = _args: "shell";
    cargoClippy = args: { clippy = args.cargoClippyExtraArgs; };
    cargoFmt = _args: "fmt";
  };

  self = flake.outputs {
    inherit self nixpkgs crane;
    nixos-hardware = { };
    jetpack-nixos = { };
  };

  check = name: ok: if ok then name else throw "tests/nixos/flake-shape.nix: check '${name}' failed";
  names = builtins.attrNames;
in
[
  (check "nixosModules are agent, immutable, ab-layout, k3s, default (functions or sets)" (
    names self.nixosModules == [
      "ab-layout"
      "agent"
      "default"
      "immutable"
      "k3s"
    ]
    && lib.all (m: builtins.isFunction m || builtins.isAttrs m) (builtins.attrValues self.nixosModules)
  ))
  (check "packages per system: agent, hub, and the image and bundle of each of its boards" (
    names self.packages.x86_64-linux == [
      "bundle-qemu-x86_64"
      "bundle-x86_64"
      "default"
      "image-qemu-x86_64"
      "image-x86_64"
      "outpost-agent"
      "outpost-hub"
    ]
    && names self.packages.aarch64-linux == [
      "bundle-jetson-orin-nano"
      "bundle-rpi4"
      "bundle-rpi5"
      "default"
      "image-jetson-orin-nano"
      "image-rpi4"
      "image-rpi5"
      "outpost-agent"
      "outpost-hub"
    ]
  ))
  (check "image-<board> and bundle-<board> are that board's system, built for that system" (
    lib.all
      (system:
        lib.all
          (board:
            let
              cfg = self.nixosConfigurations.${board};
              platforms = lib.concatMap
                (m: if builtins.isAttrs m && m ? nixpkgs.hostPlatform then [ m.nixpkgs.hostPlatform ] else [ ])
                cfg.args.modules;
            in
            self.packages.${system}."image-${board}".imageOf == cfg.args
            && self.packages.${system}."bundle-${board}".bundleOf == cfg.args
            && platforms == [ system ])
          (map (lib.removePrefix "image-") (lib.filter (lib.hasPrefix "image-") (names self.packages.${system}))))
      systems
  ))
  (check "crane: one dependency build shared by both binaries, -p per crate" (
    let
      a = self.packages.x86_64-linux.outpost-agent;
      h = self.packages.x86_64-linux.outpost-hub;
    in
    a.cargoArtifacts == h.cargoArtifacts
    && a.cargoExtraArgs == "--locked -p outpost-agent"
    && a.version == (lib.importTOML ../../Cargo.toml).workspace.package.version
  ))
  (check "nixosConfigurations: one per board, each with the Outpost modules and its board file" (
    names self.nixosConfigurations == [
      "jetson-orin-nano"
      "qemu-x86_64"
      "rpi4"
      "rpi5"
      "x86_64"
    ]
    && lib.all (c: lib.elem self.nixosModules.default c.args.modules) (
      builtins.attrValues self.nixosConfigurations
    )
  ))
  (check "checks: builds, clippy and fmt on both systems; the VM tests on x86_64-linux only, each its own file" (
    let
      tests = [
        "agent-outbox"
        "boot"
        "identity"
        "k3s-workloads"
        "ota-commit"
        "ota-rollback"
        "outbox-partition"
      ];
      builds = [
        "clippy"
        "fmt"
        "outpost-agent"
        "outpost-hub"
      ];
      x86 = self.checks.x86_64-linux;
    in
    names x86 == lib.sort lib.lessThan (tests ++ builds)
    && names self.checks.aarch64-linux == builds
    && x86.clippy.clippy == "--workspace --all-targets --locked -- -D warnings"
    && lib.all (t: x86.${t}.test.imports == [ (../../tests/nixos + "/${t}.nix") ]) tests
    # the image-booting tests get the qemu-x86_64 board
    && x86.boot.test.node.specialArgs.outpostBoard.imports != [ ]
  ))
]
