# One NixOS system per board, its disk image and its update bundle contents. Called from
# flake.nix.
#
#   nixosConfigurations.<board>        the system (modules + boards/<board>.nix)
#   packages.<system>.image-<board>    config.system.build.image (images/uefi.nix, rpi-tryboot.nix)
#   packages.<system>.bundle-<board>   config.system.build.outpostBundle (images/bundle.nix):
#                                      manifest + images, signed outside the store by `rauc bundle`
{ inputs
, self
, version
,
}:

let
  inherit (inputs.nixpkgs) lib;

  boards = {
    x86_64 = "x86_64-linux";
    qemu-x86_64 = "x86_64-linux";
    rpi4 = "aarch64-linux";
    rpi5 = "aarch64-linux";
    jetson-orin-nano = "aarch64-linux";
  };

  # What every Outpost device runs, whatever the board.
  common =
    board:
    { lib, ... }:
    {
      system.image.id = "outpost";
      system.image.version = version;
      system.stateVersion = "26.05";

      outpost.immutable.enable = true;
      outpost.ab.enable = true;
      # Bundles for one board never install on another.
      outpost.ab.compatible = lib.mkDefault "outpost-${board}";
      services.outpost.agent.enable = true;
      # The hub identity is per device; a fleet adds services.outpost.agent.hub (and
      # [identity]) in its own module, files provisioned under /var, never in the image.
    };

  # A board as a module (what every device runs + boards/<board>.nix), without nixpkgs
  # settings: the VM tests build the qemu-x86_64 board inside their own nodes
  # (tests/nixos/lib/boot-image.nix).
  boardModules = lib.mapAttrs
    (board: _: {
      imports = [
        (common board)
        ../boards/${board}.nix
      ];
    })
    boards;

  # nixpkgs settings stay out of the board modules: NixOS test nodes get a read-only pkgs.
  mkSystem =
    board: system:
    lib.nixosSystem {
      specialArgs = { inherit inputs; };
      modules = [
        self.nixosModules.default
        boardModules.${board}
        {
          nixpkgs.hostPlatform = system;
          nixpkgs.overlays = [ self.overlays.default ];
          # Not in the board module: NixOS tests name their nodes themselves.
          networking.hostName = lib.mkDefault "outpost";
        }
      ];
    };

  build = board: self.nixosConfigurations.${board}.config.system.build;
in
{
  inherit boardModules;
  nixosConfigurations = lib.mapAttrs mkSystem boards;


  # packages.<system>.{image,bundle}-<board>
  packages = lib.foldlAttrs
    (
      acc: board: system:
        lib.recursiveUpdate acc {
          ${system} = {
            "image-${board}" = (build board).image;
            "bundle-${board}" = (build board).outpostBundle;
          };
        }
    )
    { }
    boards;
}
