{
  description = "Outpost: immutable A/B NixOS images for edge devices, running outpost-agent";

  # Plain flake, no flake-parts: one input fewer to lock and review, and it evaluates with the
  # old Nix (2.8) available on the CI machines. Outputs are still owned per directory, as in
  # ghaf: images/default.nix (systems and disk images), tests/nixos/default.nix (VM tests).

  # Pinned by revision: flake.lock needs the NAR hash of every input's source tarball, which
  # cannot be fetched or checked on the offline development machines (docs/nix.md). With the
  # revisions here the lock the first `nix flake lock` writes is the same everywhere; commit it.
  inputs = {
    # nixos-26.05, the revision anduril/jetpack-nixos 4d857d6 locks (so Jetson builds use the
    # nixpkgs jetpack-nixos is tested with).
    nixpkgs.url = "github:NixOS/nixpkgs/714a5f8c4ead6b31148d829288440ed033ccc041";

    # v0.23.4: the last crane line supporting nixpkgs 25.11 and 26.05 (main drops 25.11).
    crane.url = "github:ipetkov/crane/10e6e3cb966f7cfcc789fe5eee7a85f3188ce08b";

    # Raspberry Pi 4 and 5 kernels and device trees (master, 2026-08-19).
    nixos-hardware = {
      url = "github:NixOS/nixos-hardware/0471accf8d0a8210b31d947497d179ecc99e0021";
      inputs.nixpkgs.follows = "nixpkgs";
    };

    # Jetson Orin: kernel, firmware, flashing (master, 2026-07-30; pins nixos-26.05 itself).
    jetpack-nixos = {
      url = "github:anduril/jetpack-nixos/4d857d6da48c420da39964b6fb7ba23a958abad3";
      inputs.nixpkgs.follows = "nixpkgs";
    };
  };

  outputs =
    inputs@{ self
    , nixpkgs
    , crane
    , ...
    }:
    let
      inherit (nixpkgs) lib;

      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      forAllSystems = f: lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});

      version = (lib.importTOML ./Cargo.toml).workspace.package.version;

      # crane, workspace pattern of crane's examples/quick-start-workspace: the dependencies of
      # the whole workspace are built once (buildDepsOnly) and shared by every binary package.
      outpostPackages =
        pkgs:
        let
          craneLib = crane.mkLib pkgs;
          commonArgs = {
            src = craneLib.cleanCargoSource ./.;
            strictDeps = true;
            pname = "outpost";
            inherit version;
            # rusqlite (bundled SQLite), ring and zstd-sys compile C with stdenv's compiler.
          };
          cargoArtifacts = craneLib.buildDepsOnly commonArgs;
          crate =
            pname: description:
            craneLib.buildPackage (
              commonArgs
              // {
                inherit cargoArtifacts pname;
                cargoExtraArgs = "--locked -p ${pname}";
                # The workspace tests run in CI (scripts/test); some need real peers (openssl,
                # rauc, node) that the build sandbox does not have.
                doCheck = false;
                meta = {
                  inherit description;
                  mainProgram = pname;
                  license = lib.licenses.asl20;
                  platforms = lib.platforms.linux;
                };
              }
            );
        in
        {
          outpost-agent = crate "outpost-agent" "Outpost device agent and outpostctl";
          outpost-hub = crate "outpost-hub" "Outpost hub: fleet CA and idempotent mTLS ingest";
          # Flake checks (crane's cargoClippy/cargoFmt on the shared dependency build). The
          # workspace tests are not a check: many need real peers (rauc, casync, swtpm,
          # bootctl, a second machine) that the build sandbox lacks; scripts/test runs them.
          clippy = craneLib.cargoClippy (
            commonArgs
            // {
              inherit cargoArtifacts;
              cargoClippyExtraArgs = "--workspace --all-targets --locked -- -D warnings";
            }
          );
          fmt = craneLib.cargoFmt { inherit (commonArgs) src pname version; };
        };

      built = import ./images { inherit inputs self version; };
    in
    {
      overlays.default = final: _prev: {
        inherit (outpostPackages final) outpost-agent outpost-hub;
      };

      packages = lib.recursiveUpdate
        (forAllSystems (
          pkgs:
          let
            p = outpostPackages pkgs;
          in
          {
            inherit (p) outpost-agent outpost-hub;
            default = p.outpost-agent;
          }
        ))
        built.packages;

      # Nix 2.8 `flake check` rejects a module given as a bare path, so each is a set that
      # imports its file: imports by path are deduplicated, so combining them (ab-layout and k3s
      # import agent.nix themselves) never declares an option twice.
      nixosModules = lib.mapAttrs (_: file: { imports = [ file ]; }) {
        agent = ./modules/agent.nix;
        immutable = ./modules/immutable.nix;
        ab-layout = ./modules/ab-layout.nix;
        k3s = ./modules/k3s.nix;
        default = ./modules/default.nix;
      };

      inherit (built) nixosConfigurations;

      checks = forAllSystems (
        pkgs:
        let
          p = outpostPackages pkgs;
        in
        {
          inherit (p) outpost-agent outpost-hub clippy fmt;
        }
        # VM tests need KVM; they are defined for x86_64-linux builders.
        // lib.optionalAttrs (pkgs.stdenv.hostPlatform.system == "x86_64-linux") (
          import ./tests/nixos {
            inherit pkgs;
            inherit (self) nixosModules;
            inherit (built) boardModules;
            packages = p;
          }
        )
      );

      devShells = forAllSystems (pkgs: {
        default = (crane.mkLib pkgs).devShell {
          packages = [ pkgs.nixpkgs-fmt ];
        };
      });

      # The same formatter CI checks with (scripts/check-nix-eval runs nixpkgs-fmt --check).
      formatter = forAllSystems (pkgs: pkgs.nixpkgs-fmt);
    };
}
