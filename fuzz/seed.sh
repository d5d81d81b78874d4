#!/usr/bin/env bash
# Writes the seed corpora into fuzz/corpus/<target>/ (gitignored). Text seeds are committed under
# fuzz/seeds/<target>/ and copied; binary seeds are made here with the real tools, so no binary
# blob is committed:
#   grubenv             grub-editenv create/set (exactly GRUB's 1024-byte block)
#   ubootenv            fw_setenv on plain files, single and redundant layouts (first byte picks
#                       the layout in the fuzz entry point: even = single, odd = redundant)
#   bundle_cms          openssl cms -sign, encapsulated (verity-style) and detached (plain-style)
#   bundle_trailer_cms  payload || CMS || u64 BE len(CMS), as RAUC writes a bundle
#   caibx               casync make of small files (default and tiny chunk sizes, both digests)
#   sdboot_*            printf: glob/name pairs, versions, entry names, a minimal PE with .osrel
# Tools that are missing are skipped with a note (the fuzzer then starts from the text seeds or
# from nothing). Idempotent: re-running overwrites the same files. The fuzzer adds its own
# findings to the same folders; `rm -rf fuzz/corpus` starts over.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
corpus="$here/corpus"
targets=(bundle_manifest bundle_trailer_cms bundle_cms grubenv ubootenv fw_env_config legacy_ingest caibx tpm_evidence
    sdboot_uki sdboot_glob sdboot_verscmp sdboot_name)
for t in "${targets[@]}"; do mkdir -p "$corpus/$t"; done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
have() { command -v "$1" >/dev/null 2>&1; }
note() { echo "seed.sh: $*" >&2; }

# Committed text seeds.
for t in "${targets[@]}"; do
    if [ -d "$here/seeds/$t" ]; then
        cp "$here/seeds/$t"/* "$corpus/$t/"
    fi
done

# --- caibx -------------------------------------------------------------------------------------
if have casync; then
    head -c 200000 /dev/urandom >"$tmp/blob"
    casync make --store="$tmp/store" "$corpus/caibx/default.caibx" "$tmp/blob" >/dev/null 2>&1 ||
        note "casync make failed"
    casync make --chunk-size=64:256:1024 --digest=sha256 --store="$tmp/store" \
        "$corpus/caibx/tiny-sha256.caibx" "$tmp/blob" >/dev/null 2>&1 || note "casync make failed"
else
    note "casync not installed: no caibx seeds"
fi

# --- systemd-boot: fields separated by NUL, as the fuzzing entry points split them -------------
printf 'outpost_*\x00outpost_3-b+2-1.efi' >"$corpus/sdboot_glob/star"
printf 'outpost_?-[!a-c].efi\x00outpost_3-d.efi' >"$corpus/sdboot_glob/class"
printf 'a\\*b[0-9]\x00a*b7' >"$corpus/sdboot_glob/escape"
printf '1.0~rc1\x001.0\x001.0^post1' >"$corpus/sdboot_verscmp/prerelease"
printf 'outpost_10-a\x00outpost_9-b+0-3\x00outpost_009-b' >"$corpus/sdboot_verscmp/entries"
printf '\x03outpost_3-b+2-1.efi' >"$corpus/sdboot_name/counted"
printf '\x00outpost_1-a.conf' >"$corpus/sdboot_name/blessed"
printf '\x01x+5+0.efi' >"$corpus/sdboot_name/plus-stem"
# A UKI's start: MZ, e_lfanew 0x40, "PE\0\0", one section (`.osrel`, table at 0x58) whose
# VirtualSize bytes at PointerToRawData 0x200 are an os-release file.
osrel='ID=outpost
VERSION_ID=3
PRETTY_NAME="Outpost 3"
'
pe="$corpus/sdboot_uki/minimal.efi"
head -c 512 /dev/zero >"$pe"
put() { printf "$2" | dd of="$pe" bs=1 seek=$(($1)) conv=notrunc status=none; }
put 0 'MZ'
put 0x3c '\x40'
put 0x40 'PE\x00\x00'
put 0x46 '\x01'
put 0x58 '.osrel'
put 0x60 "\\x$(printf %02x "${#osrel}")"
put 0x6c '\x00\x02'
printf '%s' "$osrel" >>"$pe"

# --- grubenv -----------------------------------------------------------------------------------
if have grub-editenv; then
    g="$tmp/grubenv"
    grub-editenv "$g" create
    cp "$g" "$corpus/grubenv/empty.grubenv"
    grub-editenv "$g" set ORDER="A B" A_OK=1 B_OK=0 A_TRY=0 B_TRY=1
    cp "$g" "$corpus/grubenv/rauc-ab.grubenv"
    grub-editenv "$g" set 'note=a\b' "$(printf 'nl=line1\nline2')" 'eq=x=y' 'empty='
    cp "$g" "$corpus/grubenv/escapes.grubenv"
    grub-editenv "$g" unset A_TRY
    cp "$g" "$corpus/grubenv/unset.grubenv"
else
    note "grub-editenv not found: no grubenv seeds (apt-get install grub-common)"
fi

# --- U-Boot env --------------------------------------------------------------------------------
if have fw_setenv; then
    size=1024 # 0x400: small envs keep the fuzzer fast; the parser accepts 8 bytes .. 4 MiB
    : >"$tmp/defenv"
    # Single: one copy in its own file.
    head -c $size /dev/zero >"$tmp/single.env"
    printf '%s 0x0 0x400\n' "$tmp/single.env" >"$tmp/single.config"
    # The first write of a blank file says "Cannot read environment, using default": expected.
    fw_setenv -c "$tmp/single.config" -f "$tmp/defenv" BOOT_ORDER "A B" 2>/dev/null
    fw_setenv -c "$tmp/single.config" -f "$tmp/defenv" BOOT_A_LEFT 3
    fw_setenv -c "$tmp/single.config" -f "$tmp/defenv" bootcmd 'run distro_bootcmd; echo x=y'
    { printf '\000'; cat "$tmp/single.env"; } >"$corpus/ubootenv/single.bin"
    # Redundant: two copies in one file; each copy is a seed (flags byte after the CRC).
    head -c $((2 * size)) /dev/zero >"$tmp/redund.env"
    printf '%s 0x0 0x400\n%s 0x400 0x400\n' "$tmp/redund.env" "$tmp/redund.env" >"$tmp/redund.config"
    fw_setenv -c "$tmp/redund.config" -f "$tmp/defenv" BOOT_ORDER "B A" 2>/dev/null
    fw_setenv -c "$tmp/redund.config" -f "$tmp/defenv" BOOT_B_LEFT 2
    fw_setenv -c "$tmp/redund.config" -f "$tmp/defenv" .flags 'BOOT_ORDER:sw'
    { printf '\001'; head -c $size "$tmp/redund.env"; } >"$corpus/ubootenv/redundant-copy0.bin"
    { printf '\001'; tail -c $size "$tmp/redund.env"; } >"$corpus/ubootenv/redundant-copy1.bin"
else
    note "fw_setenv not found: no U-Boot env seeds (apt-get install libubootenv-tool)"
fi

# --- CMS and bundle trailer ----------------------------------------------------------------------
# u64 big-endian of $1, as raw bytes.
be64() { printf "$(printf '%016x' "$1" | sed 's/../\\x&/g')"; }

if have openssl; then
    cd "$tmp"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
        -subj "/O=Outpost fuzz/CN=Fuzz CA" -keyout ca.key -out ca.pem \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -subj "/O=Outpost fuzz/CN=Fuzz signer" -keyout ec.key -out ec.csr 2>/dev/null
    printf 'keyUsage=critical,digitalSignature\nextendedKeyUsage=codeSigning\n' >ext.cnf
    openssl x509 -req -in ec.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 3650 \
        -extfile ext.cnf -out ec.pem 2>/dev/null
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=Fuzz RSA signer" \
        -keyout rsa.key -out rsa.pem 2>/dev/null

    manifest="$here/seeds/bundle_manifest/verity.raucm"
    # Verity-style: the manifest encapsulated in the CMS, signer + CA chain included.
    openssl cms -sign -binary -nodetach -outform DER -in "$manifest" \
        -signer ec.pem -inkey ec.key -certfile ca.pem -out verity.cms
    # Plain-style: detached signature over the payload, RSA, no chain, no signed attributes.
    printf 'hsqs' >payload
    head -c 60 /dev/zero >>payload
    openssl cms -sign -binary -outform DER -in payload -signer rsa.pem -inkey rsa.key \
        -noattr -out plain.cms
    # Encapsulated with SHA-512 and signed attributes.
    openssl cms -sign -binary -nodetach -outform DER -md sha512 -in "$manifest" \
        -signer rsa.pem -inkey rsa.key -out sha512.cms

    for c in verity plain sha512; do
        cp "$c.cms" "$corpus/bundle_cms/$c.der"
        { cat payload "$c.cms"; be64 "$(stat -c %s "$c.cms")"; } >"$corpus/bundle_trailer_cms/$c.bundle"
    done
    cd - >/dev/null
else
    note "openssl not found: no CMS or trailer seeds"
fi

for t in "${targets[@]}"; do
    printf '%-20s %5d files\n' "$t" "$(find "$corpus/$t" -type f | wc -l)"
done
