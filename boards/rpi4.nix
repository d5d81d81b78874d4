# Raspberry Pi 4 Model B (and CM4): nixos-hardware's raspberry-pi-4 module gives the downstream
# kernel (linux_rpi4) and device tree settings; it installs no boot loader, which suits the
# firmware-direct tryboot A/B image (images/rpi-tryboot.nix).
{ inputs, ... }:
{
  imports = [
    inputs.nixos-hardware.nixosModules.raspberry-pi-4
    ../images/rpi-tryboot.nix
  ];


  outpost.ab.bootMethod = "rpi-tryboot";

  # With enable_uart=1 the GPIO 14/15 UART is the mini UART, ttyS0.
  boot.kernelParams = [
    "console=ttyS0,115200"
    "console=tty1"
  ];
}
