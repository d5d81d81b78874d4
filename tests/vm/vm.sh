# VM driver, sourced by scenarios: one QEMU (q35, TCG, OVMF) with its own swtpm, a copy of
# the disk image, and a serial console logged to $VM_RUN/console.log.
#
#   vm_init DIR            copy disk + OVMF vars into DIR (the run's folder)
#   vm_esp_put SRC DEST    copy a host file onto the ESP of the run's disk (mtools, VM off)
#   vm_start               start swtpm + QEMU (a cold boot, as after power is applied)
#   vm_mark                later waits only look at console output after this point
#   vm_wait_for RE SECS    wait for a console line matching the extended regex RE
#   vm_run CMD [SECS]      run CMD in the guest's root shell; prints its output, returns its status
#   vm_reboot              orderly reboot from inside the guest (same QEMU, same TPM)
#   vm_power_cut           kill -9 QEMU: no flush, no TPM shutdown, the disk kept as QEMU left
#                          it; vm_start boots again
#   vm_stop                sync + power off; kill after a timeout
#
# Serial I/O uses QEMU's "pipe" chardev (two FIFOs), so nothing beyond bash and coreutils is
# needed on the host. Waits poll the log file; every wait has a timeout and fails with the
# console's tail, so a stuck boot is a clear error, never a hung test.

OVMF_CODE="${OVMF_CODE:-/usr/share/OVMF/OVMF_CODE_4M.fd}"
OVMF_VARS="${OVMF_VARS:-/usr/share/OVMF/OVMF_VARS_4M.fd}"
VM_MEM_MB="${VM_MEM_MB:-512}"
# Extra QEMU arguments, split on spaces (experiments, e.g. "-machine smm=off").
VM_QEMU_EXTRA="${VM_QEMU_EXTRA:-}"
# Extra options of the disk's -drive (",key=value..."), e.g. ",throttling.bps-write=8388608":
# scenario 5 slows writes so a power cut lands inside the image copy.
VM_DISK_OPTS="${VM_DISK_OPTS:-}"
VM_MARK=0
VM_SEQ=0
VM_QEMU_PID=
VM_SWTPM_PID=
VM_READER_PID=

vm_init() {
    need qemu-system-x86_64 swtpm mcopy
    VM_RUN="$1"
    mkdir -p "$VM_RUN/tpm"
    [[ -f $VM_IMAGE_DIR/disk.img ]] || die "no disk image: run tests/vm/build-image"
    cp --sparse=always "$VM_IMAGE_DIR/disk.img" "$VM_RUN/disk.img"
    cp "$OVMF_VARS" "$VM_RUN/OVMF_VARS.fd"
    : >"$VM_RUN/console.log"
}

# The ESP starts at 1 MiB (build-image's layout).
vm_esp_put() {
    [[ -z $VM_QEMU_PID ]] || die "vm_esp_put while the VM runs"
    mcopy -o -i "$VM_RUN/disk.img@@1048576" "$1" "::$2"
}

vm_start() {
    [[ -z $VM_QEMU_PID ]] || die "vm_start: already running"
    rm -f "$VM_RUN/swtpm.sock" "$VM_RUN/serial.in" "$VM_RUN/serial.out"
    # --terminate: swtpm ends with QEMU, so a power cut also loses the TPM's volatile state.
    swtpm socket --tpm2 --tpmstate "dir=$VM_RUN/tpm" \
        --ctrl "type=unixio,path=$VM_RUN/swtpm.sock" --terminate \
        --log "file=$VM_RUN/swtpm.log" &
    VM_SWTPM_PID=$!
    local i
    for i in $(seq 50); do [[ -S $VM_RUN/swtpm.sock ]] && break; sleep 0.1; done
    [[ -S $VM_RUN/swtpm.sock ]] || die "swtpm did not start: $(cat "$VM_RUN/swtpm.log" 2>/dev/null)"

    mkfifo "$VM_RUN/serial.in" "$VM_RUN/serial.out"
    cat "$VM_RUN/serial.out" >>"$VM_RUN/console.log" &
    VM_READER_PID=$!
    # romfile= on the NIC: no iPXE option ROM, so OVMF boots the disk without a PXE detour.
    qemu-system-x86_64 -machine q35 -accel tcg -m "$VM_MEM_MB" -smp 1 \
        -nodefaults -no-user-config -display none -vga none \
        -drive "if=pflash,format=raw,unit=0,readonly=on,file=$OVMF_CODE" \
        -drive "if=pflash,format=raw,unit=1,file=$VM_RUN/OVMF_VARS.fd" \
        -drive "if=virtio,format=raw,file=$VM_RUN/disk.img,cache=unsafe$VM_DISK_OPTS" \
        -netdev user,id=net0 -device virtio-net-pci,netdev=net0,romfile= \
        -chardev "socket,id=chrtpm,path=$VM_RUN/swtpm.sock" \
        -tpmdev emulator,id=tpm0,chardev=chrtpm -device tpm-tis,tpmdev=tpm0 \
        -serial "pipe:$VM_RUN/serial" ${VM_QEMU_EXTRA:-} \
        >>"$VM_RUN/qemu.log" 2>&1 &
    VM_QEMU_PID=$!
    log "VM started (qemu $VM_QEMU_PID, swtpm $VM_SWTPM_PID), console: $VM_RUN/console.log"
}

vm_mark() { VM_MARK=$(stat -c %s "$VM_RUN/console.log"); }

# Console output since the mark, without carriage returns.
vm_console_since() { tail -c +"$((${1:-$VM_MARK} + 1))" "$VM_RUN/console.log" | tr -d '\r'; }

vm_fail() {
    printf '[vm] %s\n--- console (last 40 lines) ---\n' "$*" >&2
    tail -n 40 "$VM_RUN/console.log" | tr -d '\r' | sed 's/\x1b\[[0-9;?]*[A-Za-z]//g' >&2
    if [[ -s $VM_RUN/qemu.log ]]; then
        printf -- '--- qemu.log ---\n' >&2
        tail -n 5 "$VM_RUN/qemu.log" >&2
    fi
    exit 1
}

vm_wait_for() {
    local re="$1" secs="${2:-60}" deadline=$((SECONDS + ${2:-60}))
    while ((SECONDS < deadline)); do
        if vm_console_since | grep -Eq -- "$re"; then return 0; fi
        [[ -n $VM_QEMU_PID ]] && ! kill -0 "$VM_QEMU_PID" 2>/dev/null && vm_fail "QEMU exited while waiting for /$re/"
        sleep 0.2
    done
    vm_fail "timeout (${secs}s) waiting for /$re/"
}

# Bounded: with QEMU gone the FIFO has no reader and the open would block forever.
vm_send_raw() { timeout 5 bash -c 'printf "%s\n" "$1" >"$2"' _ "$1" "$VM_RUN/serial.in"; }
vm_send() { vm_send_raw "$1" || vm_fail "cannot write to the serial console"; }

# Markers are printed with printf so the typed command (if echoed) never contains them.
vm_run() {
    local cmd="$1" secs="${2:-30}" n=$((++VM_SEQ)) out status
    vm_mark
    vm_send "printf '@@%s\\n' BEGIN-$n; { $cmd ; } 2>&1; printf '@@%s-%s\\n' END-$n \$?"
    vm_wait_for "@@END-$n-[0-9]+\$" "$secs"
    # The shell's prompt may precede a marker on its line; output may lack a final newline.
    out="$(vm_console_since | sed -n "/@@BEGIN-$n\$/,/@@END-$n-[0-9]*\$/p")"
    status="$(printf '%s\n' "$out" | sed -n "s/.*@@END-$n-\([0-9]*\)\$/\1/p")"
    # The agent's lines share the console; they are not the command's output. (Kernel
    # messages below "error" are kept off the console by init, and not filtered here, so
    # `dmesg` output survives.)
    printf '%s\n' "$out" | sed -e '1d' -e "s/@@END-$n-[0-9]*\$//" -e '/^$/d' | grep -v -e '^agent: ' || true
    return "${status:-255}"
}

vm_wait_exit() {
    local secs="$1" i
    for i in $(seq $((secs * 5))); do
        kill -0 "$VM_QEMU_PID" 2>/dev/null || break
        sleep 0.2
    done
    if kill -0 "$VM_QEMU_PID" 2>/dev/null; then kill -9 "$VM_QEMU_PID"; fi
    wait "$VM_QEMU_PID" 2>/dev/null || true
    # swtpm follows QEMU (--terminate); the reader sees EOF.
    for i in $(seq 25); do kill -0 "$VM_SWTPM_PID" 2>/dev/null || break; sleep 0.2; done
    kill "$VM_SWTPM_PID" 2>/dev/null || true
    # The reader drains what QEMU wrote and ends at EOF; if QEMU died before opening the
    # FIFO, the reader is still blocked in open() and must be stopped.
    for i in $(seq 10); do kill -0 "$VM_READER_PID" 2>/dev/null || break; sleep 0.1; done
    kill "$VM_READER_PID" 2>/dev/null || true
    wait "$VM_SWTPM_PID" "$VM_READER_PID" 2>/dev/null || true
    VM_QEMU_PID= VM_SWTPM_PID= VM_READER_PID=
}

vm_power_cut() {
    log "power cut"
    kill -9 "$VM_QEMU_PID" 2>/dev/null || true
    vm_wait_exit 0
}

vm_reboot() {
    vm_mark
    vm_send "outpost-halt reboot"
}

vm_stop() {
    [[ -n $VM_QEMU_PID ]] || return 0
    if kill -0 "$VM_QEMU_PID" 2>/dev/null; then
        vm_send_raw "outpost-halt poweroff" || true
    fi
    vm_wait_exit 20
}
