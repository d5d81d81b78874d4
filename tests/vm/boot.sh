# What the scenarios ask of the boot variant ($VM_BOOT, lib.sh), sourced after vm.sh. Each
# call names the expectation for both variants side by side, so a scenario reads the same on
# GRUB and systemd-boot:
#
#   boot_wait SLOT VERSION GRUB_RE SDBOOT_RE
#       wait for the boot of SLOT running VERSION. grub: first GRUB's own decision line,
#       "outpost-grub: GRUB_RE" (guest/grub.cfg prints the grubenv it acted on); sdboot: the
#       init line's entry= (systemd-boot's LoaderEntrySelected: the lower-cased file name of the
#       entry it booted, as it was before systemd-boot counted the try) must match SDBOOT_RE.
#   boot_expect WHEN GRUB_LINES SDBOOT_ENTRIES
#       the bootloader state in the running guest: grub: each of the |-separated lines is a
#       line of /boot/grub/grubenv; sdboot: /boot/loader/entries holds exactly one file per
#       |-separated regex (whole names), nothing else.
#   boot_state
#       that state, for logs: grubenv's variables or the entry file names, on one line.
#   boot_tries
#       the tries a freshly installed slot gets: 1 (RAUC's GRUB script) or boot_attempts
#       (guest/boot-sdboot.toml).

boot_wait() {
    local slot="$1" version="$2" grub_re="$3" sdboot_re="$4"
    case "$VM_BOOT" in
        grub)
            vm_wait_for "outpost-grub: $grub_re" 120
            vm_wait_for "outpost-init: slot=$slot version=$version .*tpmrm0=yes" 90
            ;;
        sdboot)
            vm_wait_for "outpost-init: slot=$slot version=$version .*tpmrm0=yes entry=$sdboot_re\$" 150
            ;;
    esac
}

boot_state() {
    case "$VM_BOOT" in
        grub) vm_run 'cat /boot/grub/grubenv' | grep -E '^(ORDER|[AB]_(OK|TRY))=' | tr '\n' ' ' ;;
        sdboot) vm_run 'ls /boot/loader/entries' | tr -s ' \n' ' ' ;;
    esac
}

boot_expect() {
    local when="$1" grub_lines="$2" sdboot_entries="$3" state want n=0
    case "$VM_BOOT" in
        grub)
            state="$(vm_run 'cat /boot/grub/grubenv')" || vm_fail "$when: cannot read grubenv: $state"
            IFS='|' read -ra wants <<<"$grub_lines"
            for want in "${wants[@]}"; do
                grep -qxF -- "$want" <<<"$state" || vm_fail "$when: grubenv lacks $want: $state"
            done
            ;;
        sdboot)
            state="$(vm_run 'ls -1 /boot/loader/entries')" || vm_fail "$when: cannot list the entries: $state"
            IFS='|' read -ra wants <<<"$sdboot_entries"
            for want in "${wants[@]}"; do
                grep -qEx -- "$want" <<<"$state" || vm_fail "$when: no entry named /$want/ in: $(tr '\n' ' ' <<<"$state")"
            done
            n="$(grep -c . <<<"$state" || true)"
            ((n == ${#wants[@]})) || vm_fail "$when: $n entries, expected ${#wants[@]}: $(tr '\n' ' ' <<<"$state")"
            ;;
    esac
}

boot_tries() {
    case "$VM_BOOT" in
        grub) echo 1 ;;
        sdboot) sed -n 's/^boot_attempts = \([0-9]*\).*/\1/p' "$VM_DIR/guest/boot-sdboot.toml" ;;
    esac
}
