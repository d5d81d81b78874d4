# Stand-in for nixpkgs nixos/modules/image/repart.nix in tests/nixos/eval.nix: the option
# `image` is declared there as a free-form attribute set, so the image builders' values can be
# read back without nixpkgs.
{ }
