# Raspberry Pi 5: nixos-hardware's raspberry-pi-5 module (kernel built from bcm2712_defconfig,
# asserts >= 6.1.54). nvmd/nixos-raspberrypi is the more complete Pi 5 flake (firmware, display,
# binary cache) but pins its own nixpkgs and brings its own boot loader module; the A/B image
# here needs neither, so the board stays on nixos-hardware and our nixpkgs (docs/nix.md).
{ inputs, ... }:
{
  imports = [
    inputs.nixos-hardware.nixosModules.raspberry-pi-5
    ../images/rpi-tryboot.nix
  ];


  outpost.ab.bootMethod = "rpi-tryboot";

  # The Pi 5 debug UART (3-pin header) is ttyAMA10.
  boot.kernelParams = [
    "console=ttyAMA10,115200"
    "console=tty1"
  ];
}
