# The VM tests' Python test scripts, rendered with stand-in store paths, so that they can be
# compiled here (scripts/check-nix-eval runs python3's compile() on each): a syntax error or a
# broken interpolation shows up without a Nix machine. What the scripts do is only tested by
# running them (nix flake check).
#
#   nix-instantiate --eval --strict --json tests/nixos/scripts.nix --arg lib 'import <lib>'
#
# Evaluates to { <test name> = { script = "<python>"; nodes = [ <machine names> ]; }; }.
{ lib }:

let
  store = name: "/nix/store/00000000000000000000000000000000-${name}";

  node = {
    system.build = {
      image = store "image";
      outpostBundles = lib.genAttrs [ "2.0.0" "3.0.0" ] (v: store "bundle-${v}");
    };
    image.fileName = "outpost_1.0.0.raw";
  };

  # As tests/nixos/default.nix passes it.
  outpost = {
    driver = builtins.readFile ./lib/driver.py;
    qemuImg = "${store "qemu"}/bin/qemu-img";
    image = n: "${n.system.build.image}/${n.image.fileName}";
    tools = {
      openssl = "${store "openssl"}/bin/openssl";
      rauc = "${store "rauc"}/bin/rauc";
      path = "${store "squashfs"}/bin";
    };
  };

  script =
    name:
    let
      test = import (./. + "/${name}.nix") { inherit lib outpost; };
      nodes = lib.mapAttrs (_: _: node) test.nodes;
    in
    {
      script = if builtins.isFunction test.testScript then test.testScript { inherit nodes; } else test.testScript;
      nodes = lib.attrNames test.nodes;
    };
in
# Every test file in this folder (the others are not tests).
lib.genAttrs
  (map (lib.removeSuffix ".nix") (
    lib.filter (f: lib.hasSuffix ".nix" f && !lib.elem f [ "default.nix" "eval.nix" "flake-shape.nix" "scripts.nix" ]) (
      lib.attrNames (builtins.readDir ./.)
    )
  ))
  script
