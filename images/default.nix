# One NixOS system per board, and its disk image. Called from flake.nix.
#
# The image of board B is nixosConfigurations.B.config.system.build.image (systemd-repart, see
# images/uefi.nix and images/rpi-tryboot.nix), exposed as packages.<system>.image-B.
{ inputs
, self
, version
,
}:

let
  inherit (inputs.nixpkgs) lib;

  boards = {
    x86_64-uefi = "x86_64-linux";
    rpi4 = "aarch64-linux";
    rpi5 = "aarch64-linux";
    jetson-orin = "aarch64-linux";
  };

  # What every Outpost device runs, whatever the board.
  common =
    { lib, ... }:
    {
      nixpkgs.overlays = [ self.overlays.default ];

      system.image.id = "outpost";
      system.image.version = version;
      system.stateVersion = "26.05";
      networking.hostName = lib.mkDefault "outpost";

      outpost.immutable.enable = true;
      outpost.ab.enable = true;
      services.outpost.agent.enable = true;
      # The hub identity is per device; a fleet adds services.outpost.agent.hub in its own
      # module (files provisioned under /var, never in the image).
    };

  mkSystem =
    board:
    lib.nixosSystem {
      specialArgs = { inherit inputs; };
      modules = [
        self.nixosModules.default
        common
        ../boards/${board}.nix
      ];
    };
in
{
  nixosConfigurations = lib.mapAttrs (board: _: mkSystem board) boards;

  # packages.<system>.image-<board>
  packages = lib.foldlAttrs
    (
      acc: board: system:
        lib.recursiveUpdate acc {
          ${system}."image-${board}" = self.nixosConfigurations.${board}.config.system.build.image;
        }
    )
    { }
    boards;
}
