# Update bundles of this very node at other versions, for the OTA tests:
#   outpost.test.versions."2.0.0" = { };            # same system, another version
#   outpost.test.versions."3.0.0" = { ...bad... };  # plus a module that breaks it
# gives config.system.build.outpostBundles."2.0.0" (images/bundle.nix contents). extendModules
# re-evaluates the node with every module it has (board, test driver backdoor, network), as
# nixpkgs nixos/modules/image/images.nix does for image variants; only the version and the
# given module differ. The tests sign the contents at run time (lib/driver.py sign_bundle).
{ config
, lib
, extendModules
, ...
}:
{
  options.outpost.test.versions = lib.mkOption {
    type = lib.types.attrsOf lib.types.deferredModule;
    default = { };
    description = "Versions to build update bundles for, each with an extra module.";
  };

  config.system.build.outpostBundles = lib.mapAttrs
    (
      version: module:
        (extendModules {
          modules = [
            module
            { system.image.version = lib.mkForce version; }
          ];
        }).config.system.build.outpostBundle
    )
    config.outpost.test.versions;
}
