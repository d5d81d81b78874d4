# Scenario setup shared by the scenarios, sourced after lib.sh and vm.sh: a hub on the host,
# a "manufactured" TPM, the per-run files on the ESP, the first boot up to enrollment.
#
#   sc_setup NAME          run folder /tmp/outpost-vm-NAME.XXXXXX ($RUN), disk copy, hub
#                          ($hub, $HUB_BIN, listening), TPM with an EK certificate from a
#                          local vendor CA the hub trusts, hub CA + one-time token on the ESP;
#                          cleanup on exit (VM stopped, hub killed)
#   sc_enroll SECS         wait until the agent reports "enrolled"; sets $device_id, $ident
#   sc_factory_boot        power on a factory-fresh device (slot A, version 1), wait for its
#                          agent, its enrollment and its gate ("not a trial", A re-armed); sets
#                          $t_agent, $t_enrolled
#   hub_records [ARGS]     `outpost-hub records --device $device_id --json ARGS` (never fails)
#   hub_wait_record STREAM RE SECS   wait until a record of STREAM matches RE at the hub
#   hub_stop / hub_start   stop the hub (the device is offline from then on) / start it again
#                          on the same data (hub.log is appended to)
#   sc_finish              stop the VM, drop the disk copy (unless OUTPOST_VM_KEEP)
need swtpm_setup swtpm_localca
source "$VM_DIR/boot.sh"

HUB_PORT="${OUTPOST_VM_HUB_PORT:-18443}"
IDENTITY="${OUTPOST_VM_IDENTITY:-tpm}"
HUB_BIN="${OUTPOST_HUB:-}"
if [[ -z $HUB_BIN ]]; then
    # The newest build wins: an old release binary may predate features the test needs.
    HUB_BIN="$(ls -t "$VM_TARGET_DIR"/{release,debug}/outpost-hub "$REPO_ROOT"/target/{release,debug}/outpost-hub 2>/dev/null | head -1 || true)"
fi
[[ -x $HUB_BIN ]] || die "no outpost-hub binary: cargo build -p outpost-hub, or set OUTPOST_HUB"
ctl="outpostctl --config /etc/outpost/agent.toml"
HUB_PID=

sc_cleanup() {
    set +e
    vm_stop
    if [[ -n $HUB_PID ]]; then kill "$HUB_PID" 2>/dev/null; wait "$HUB_PID" 2>/dev/null || true; fi
}

sc_setup() {
    # The guest's agent.toml names this port (build-image bakes it in): refuse early and clearly.
    if (exec 3<>"/dev/tcp/127.0.0.1/$HUB_PORT") 2>/dev/null; then
        die "port $HUB_PORT is in use; set OUTPOST_VM_HUB_PORT (and rebuild the image)"
    fi
    RUN="$(mktemp -d "${TMPDIR:-/tmp}/outpost-vm-$1-$VM_BOOT.XXXXXX")"
    log "run folder: $RUN"
    trap sc_cleanup EXIT
    vm_init "$RUN"

    # --- hub: fleet CA, server certificate valid for the guest's view of the host ----------
    hub="$RUN/hub"
    "$HUB_BIN" init --dir "$hub" --listen "127.0.0.1:$HUB_PORT" --san 10.0.2.2 >/dev/null
    # Releases are checked against the CA the image's keyring holds.
    cp "$VM_IMAGE_DIR/keyring-ca.pem" "$hub/bundle-ca.pem"
    grep -qxF '# keyring = "bundle-ca.pem"' "$hub/hub.toml" || die "hub.toml from init has no [releases] keyring line"
    sed -i 's|^# keyring = "bundle-ca.pem"$|keyring = "bundle-ca.pem"|' "$hub/hub.toml"

    # --- the TPM, "manufactured": EK certificate signed by a local vendor CA the hub trusts ----
    # Same files as agent/testkit/src/ek_ca.rs.
    local vendor="$RUN/tpm-vendor"
    mkdir -p "$vendor"
    cat >"$vendor/swtpm-localca.conf" <<CONF
statedir = $vendor
signingkey = $vendor/signkey.pem
issuercert = $vendor/issuercert.pem
certserial = $vendor/certserial
CONF
    cat >"$vendor/swtpm_setup.conf" <<CONF
create_certs_tool = /usr/bin/swtpm_localca
create_certs_tool_config = $vendor/swtpm-localca.conf
create_certs_tool_options = /etc/swtpm-localca.options
active_pcr_banks = sha256
CONF
    swtpm_setup --tpm2 --tpmstate "$RUN/tpm" --create-ek-cert --config "$vendor/swtpm_setup.conf" \
        >"$RUN/swtpm_setup.log" 2>&1 || die "swtpm_setup failed: $(cat "$RUN/swtpm_setup.log")"
    grep -qxF 'ek_ca = []' "$hub/hub.toml" || die "hub.toml from init has no empty ek_ca"
    sed -i "s|^ek_ca = \[\]\$|ek_ca = [\"$vendor/swtpm-localca-rootca-cert.pem\", \"$vendor/issuercert.pem\"]|" "$hub/hub.toml"

    # --- "flashing": the hub's CA and a one-time token onto the ESP ----------------------------
    "$HUB_BIN" token create --config "$hub/hub.toml" >"$RUN/token" 2>/dev/null
    vm_esp_put "$hub/ca.pem" /outpost/hub-ca.pem
    vm_esp_put "$RUN/token" /outpost/token

    hub_start
}

hub_start() {
    [[ -z $HUB_PID ]] || die "hub_start: the hub runs already"
    local lines=0
    [[ -f $RUN/hub.log ]] && lines=$(wc -l <"$RUN/hub.log")
    RUST_LOG=info "$HUB_BIN" serve --config "$hub/hub.toml" >>"$RUN/hub.log" 2>&1 &
    HUB_PID=$!
    for _ in $(seq 100); do
        grep -q 'listening on' <<<"$(tail -n +"$((lines + 1))" "$RUN/hub.log")" && break
        sleep 0.1
    done
    grep -q 'listening on' <<<"$(tail -n +"$((lines + 1))" "$RUN/hub.log")" || die "hub did not start: $(cat "$RUN/hub.log")"
}

hub_stop() {
    [[ -n $HUB_PID ]] || return 0
    kill "$HUB_PID" 2>/dev/null || true
    wait "$HUB_PID" 2>/dev/null || true
    HUB_PID=
}

# Enrollment runs by itself (token_file); TCG makes the TPM rounds slow, so be generous.
sc_enroll() {
    local secs="${1:-120}" deadline=$((SECONDS + ${1:-120}))
    while :; do
        ident="$(vm_run "$ctl identity --json" 30)" || true
        grep -q '"enrollment": *"enrolled"' <<<"$ident" && break
        ((SECONDS < deadline)) || vm_fail "not enrolled after $secs s: $ident"
        sleep 2
    done
    device_id="$(sed -n 's/.*"device_id": *"\([0-9a-f]*\)".*/\1/p' <<<"$ident" | head -1)"
    [[ -n $device_id ]] || vm_fail "no device id in: $ident"
}

sc_factory_boot() {
    vm_start
    # GRUB's line shows the try it saved (A_TRY=1); systemd-boot boots the uncounted A entry.
    boot_wait A 1 'entry=1 .*A_OK=1 A_TRY=1' 'outpost_1-a\.conf'
    vm_wait_for '^agent: .* ready' 60
    t_agent=$SECONDS
    sc_enroll 120
    t_enrolled=$SECONDS
    # The factory slot is adopted (GRUB: re-armed, A_TRY=0) before anything is installed: A
    # must be the fallback of B's trial.
    local gate
    gate="$(vm_run "$ctl health --wait --timeout 60s" 70)" || vm_fail "factory boot's gate: $gate"
    grep -q 'not a trial' <<<"$gate" || vm_fail "factory boot is a trial?: $gate"
    boot_expect "factory boot" 'A_OK=1|A_TRY=0' 'outpost_1-A\.conf|outpost_0-B\.conf'
}

# sc_update_now: `outpostctl update now`, which must end with the offered release installed.
# The agent's own first check runs at a random time up to [delivery] jitter after its start
# (a fleet must not poll in lockstep), so it may find the release first: then `update now`
# reports it installed and waiting for the reboot, which is the same outcome.
sc_update_now() {
    out="$(vm_run "$ctl update now --json" 600)" || vm_fail "update now failed: $out"
    grep -Eq '"result": *"installed"' <<<"$out" ||
        grep -Eq '"result": *"skipped".*is installed in rootfs\.[0-9]+; waiting for the reboot' <<<"$out" ||
        vm_fail "update now did not install: $out"
}

# Captured, not piped into grep -q: with pipefail an early grep exit would read as a failure.
hub_records() { "$HUB_BIN" records --config "$hub/hub.toml" --device "$device_id" --json "$@" 2>/dev/null || true; }

# hub_wait_record STREAM RE SECS: the hub lists a record of STREAM matching RE (grep -E, on
# the records' JSON text) within SECS.
hub_wait_record() {
    local stream="$1" re="$2" secs="$3" deadline=$((SECONDS + $3))
    until grep -Eq -- "$re" <<<"$(hub_records --stream "$stream")"; do
        ((SECONDS < deadline)) || vm_fail "no $stream record matching /$re/ at the hub after $secs s: $(hub_records --stream "$stream")"
        sleep 1
    done
}

sc_finish() {
    vm_stop
    # Logs stay for reading; the disk copy only when asked (OUTPOST_VM_KEEP=1).
    [[ -n ${OUTPOST_VM_KEEP:-} ]] || rm -f "$RUN/disk.img" "$RUN/OVMF_VARS.fd"
}
