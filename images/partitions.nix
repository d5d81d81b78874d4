# Partitions every board's image has: the two store slots and /var. Called by images/uefi.nix and
# images/rpi-tryboot.nix with the system's config; the labels come from modules/ab-layout.nix.
#
# Followed: nixpkgs nixos/modules/image/repart.nix (storePaths, nixStorePrefix, contents,
# repartConfig = any repart.d(5) key) and blitz/sysupdate-playground modules/partitions.nix
# (a fixed-size store slot with SplitName, an empty twin of the same size).
{ config, pkgs }:

let
  ab = config.outpost.ab;
  inherit (config.system.build) toplevel;

  # The root of a store image holds, besides the closure, the link that every slot's command
  # line names (init=/nix/store/.outpost-system/init, modules/ab-layout.nix). CopyFiles= of a
  # folder copies its symlinks as symlinks.
  storeRoot = pkgs.runCommand "outpost-store-root" { } ''
    mkdir $out
    ln -s ${toplevel} $out/${baseNameOf ab.storeLink}
  '';

  slot = label: {
    Type = "linux-generic";
    Label = label;
    # A fixed size, so that the other slot (same size) can take any later version.
    SizeMinBytes = ab.sizes.store;
    SizeMaxBytes = ab.sizes.store;
  };
in
{
  storeA = {
    storePaths = [ toplevel ];
    # The partition's root is the store itself (it is mounted at /nix/store).
    nixStorePrefix = "/";
    contents."/".source = storeRoot;
    repartConfig = slot ab.storeLabels.A // {
      Format = ab.storeFsType;
      ReadOnly = "yes";
      Minimize = "off";
      # The update artifact: <image.baseName>.store.raw, the image of class rootfs.
      SplitName = "store";
    };
  };

  # Slot B: empty until the first update writes a store image into it.
  storeB.repartConfig = slot ab.storeLabels.B;

  var.repartConfig = {
    # The "var" type keeps it apart from the store slots for a later systemd-repart run that
    # grows it to the end of the disk.
    Type = "var";
    Format = "ext4";
    Label = ab.labels.var;
    SizeMinBytes = ab.sizes.var;
    FactoryReset = "yes";
  };
}
