# A QEMU/KVM x86_64 machine with UEFI (OVMF), a virtio disk and a TPM 2.0 (swtpm): the board the
# NixOS VM tests boot (tests/nixos/lib/boot-image.nix adds the test VM's settings), and a way to
# try an image without hardware (docs/images.md). Same layout as x86_64: systemd-boot, one UKI
# per slot, store slots, /var.
{ lib, ... }:
{
  imports = [ ../images/uefi.nix ];


  outpost.ab.bootMethod = "uefi";
  # Small slots: a VM disk, and the tests build the image (and bundles) several times. /var
  # holds a bundle while it installs (the tests copy one in).
  outpost.ab.sizes = {
    esp = lib.mkDefault "256M";
    store = lib.mkDefault "2G";
    var = lib.mkDefault "2G";
  };

  boot.initrd.availableKernelModules = [
    "virtio_pci"
    "virtio_blk"
    "virtio_net"
    "virtio_rng"
  ];
  boot.kernelParams = [ "console=ttyS0,115200" ];

  # /dev/tpmrm0 for the agent's TPM identity (group tss, which the agent's unit joins).
  security.tpm2.enable = true;
}
