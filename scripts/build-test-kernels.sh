#!/usr/bin/env bash
# Builds the small test kernels under tests/kernels into
# ${SHARPVISOR_CACHE:-/var/cache/sharpvisor}/test-kernels and prints each output path.
# Reproducible: no timestamps or build ids end up in the output, so the same sources and
# binutils give byte-identical files. Installs binutils through apt when as/ld are missing.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
sources="$repo/tests/kernels"
out_dir="${SHARPVISOR_CACHE:-/var/cache/sharpvisor}/test-kernels"

if ! command -v as >/dev/null 2>&1 || ! command -v ld >/dev/null 2>&1; then
    echo "build-test-kernels: as/ld not found; installing binutils" >&2
    if [ "$(id -u)" -ne 0 ]; then
        echo "build-test-kernels: need root to install binutils (apt-get install binutils)" >&2
        exit 1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q binutils >&2
fi

mkdir -p "$out_dir"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

build_multiboot() {
    local name="$1"
    as --32 -o "$work/$name.o" "$sources/$name.S"
    ld -m elf_i386 -nostdlib --build-id=none -z noexecstack \
        -T "$sources/$name.ld" -o "$work/$name.elf" "$work/$name.o"
    # Atomic replace: tests running in parallel never see a half-written kernel.
    install -m 0644 "$work/$name.elf" "$out_dir/.$name.elf.tmp.$$"
    mv -f "$out_dir/.$name.elf.tmp.$$" "$out_dir/$name.elf"
    echo "$out_dir/$name.elf"
}

build_multiboot multiboot-hello
