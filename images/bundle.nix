# The contents of an update bundle for this system: config.system.build.outpostBundle, a folder
# that `rauc bundle` turns into a signed bundle (packages.<system>.bundle-<board>):
#
#   manifest.raucm  [update] compatible + version, [bundle] format=verity,
#                   [image.rootfs] store.raw (the store slot image), [image.boot] the slot's
#                   boot image (uefi: its UKI, boot.efi; rpi-tryboot: its FAT partition, boot.vfat)
#
# The image classes are the agent's slot classes (modules/ab-layout.nix): rootfs.N is the store
# partition, boot.N its child. Signing happens outside the Nix store (a private key in the store
# is readable by every local user and copied to every cache):
#
#   cp -rL result bundle-in && rauc bundle --cert release.pem --key release.key bundle-in v.raucb
#
# The images are copied, not linked: mksquashfs (inside `rauc bundle`) stores links as links.
{ config
, lib
, pkgs
, ...
}:

let
  ab = config.outpost.ab;
  boot = config.outpost.bundle.boot;
  inherit (config.system.image) version;

  manifest = pkgs.writeText "manifest.raucm" ''
    [update]
    compatible=${ab.compatible}
    version=${version}

    [bundle]
    format=verity

    [image.rootfs]
    filename=store.raw

    [image.boot]
    filename=${boot.name}
  '';
in
{
  options.outpost.bundle.boot = {
    file = lib.mkOption {
      type = lib.types.str;
      internal = true;
      description = "The boot image of a slot (set by the board's image builder).";
    };
    name = lib.mkOption {
      type = lib.types.strMatching "[a-z0-9.-]+";
      internal = true;
      description = "Its file name in the bundle.";
    };
  };

  config = lib.mkIf ab.enable {
    system.build.outpostBundleManifest = manifest;
    system.build.outpostBundle = pkgs.runCommand "outpost-bundle-${ab.compatible}-${version}" { } ''
      mkdir $out
      cp ${manifest} $out/manifest.raucm
      cp ${config.system.build.image}/${config.image.baseName}.store.raw $out/store.raw
      cp ${boot.file} $out/${boot.name}
    '';
  };
}
