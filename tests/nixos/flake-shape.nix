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
      nixosSystem = args: {
        inherit args;
        config.system.build.image = "image";
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
  (check "packages per system: agent, hub, and the images of that system's boards" (
    names self.packages.x86_64-linux == [
      "default"
      "image-x86_64-uefi"
      "outpost-agent"
      "outpost-hub"
    ]
    && names self.packages.aarch64-linux == [
      "default"
      "image-jetson-orin"
      "image-rpi4"
      "image-rpi5"
      "outpost-agent"
      "outpost-hub"
    ]
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
      "jetson-orin"
      "rpi4"
      "rpi5"
      "x86_64-uefi"
    ]
    && lib.all (c: lib.elem self.nixosModules.default c.args.modules) (
      builtins.attrValues self.nixosConfigurations
    )
  ))
  (check "checks: VM tests on x86_64-linux only" (
    self.checks.x86_64-linux ? agent-outbox && !(self.checks.aarch64-linux ? agent-outbox)
  ))
]
