# Generic x86_64 machine with UEFI firmware (PCs, industrial boxes, cloud VMs with UEFI).
{ lib, ... }:
{
  imports = [ ../images/uefi.nix ];


  outpost.ab.bootMethod = "uefi";

  boot.initrd.availableKernelModules = [
    "ahci"
    "nvme"
    "sd_mod"
    "usb_storage"
    "xhci_pci"
    "virtio_pci"
    "virtio_blk"
    "virtio_scsi"
  ];
  boot.kernelParams = [
    "console=tty0"
    "console=ttyS0,115200"
  ];
  hardware.enableRedistributableFirmware = lib.mkDefault true;
}
