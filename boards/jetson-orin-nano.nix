# NVIDIA Jetson Orin (Nano devkit by default) via anduril/jetpack-nixos. Its firmware is EDK2
# UEFI, so the image is the same systemd-boot + UKI layout as x86_64 (images/uefi.nix).
# jetpack-nixos provides A/B only for the boot firmware (QSPI capsules); the OS slots are ours.
# Flashing the QSPI firmware itself is done once with jetpack-nixos's flash scripts.
{ inputs, lib, ... }:
{
  imports = [
    inputs.jetpack-nixos.nixosModules.default
    ../images/uefi.nix
  ];


  hardware.nvidia-jetpack = {
    enable = true;
    som = lib.mkDefault "orin-nano";
    carrierBoard = lib.mkDefault "devkit";
  };

  outpost.ab.bootMethod = "uefi";

  # The Orin devkits' debug console.
  boot.kernelParams = [ "console=ttyTCU0,115200" ];
}
