#!/usr/bin/env bash
# Builds tests/kernels/protect-attack (the kernel protection test's attack module) for the
# default guest's exact kernel, against Debian's linux-headers-<release> (installed through apt
# when missing), into ${SHARPVISOR_CACHE:-/var/cache/sharpvisor}/test-modules/<release>/ and
# prints the .ko's path. Cached: rebuilt only when the source or the kernel release changes.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${SHARPVISOR_CACHE:-/var/cache/sharpvisor}"
source_dir="$repo/tests/kernels/protect-attack"
manifest="$cache/guest/current/manifest.txt"

if [ ! -f "$manifest" ]; then
    "$repo/scripts/build-guest.sh" >/dev/null
fi
release="$(sed -n 's/^kernel_release=//p' "$manifest")"
version="$(sed -n 's/^kernel_package_version=//p' "$manifest")"
[ -n "$release" ] || { echo "build-test-module: no kernel_release in $manifest" >&2; exit 1; }

headers="/usr/src/linux-headers-$release"
if [ ! -f "$headers/Makefile" ]; then
    echo "build-test-module: installing linux-headers-$release ($version)" >&2
    if [ "$(id -u)" -ne 0 ]; then
        echo "build-test-module: need root to install linux-headers-$release" >&2
        exit 1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "linux-headers-$release=$version" >&2
fi

out_dir="$cache/test-modules/$release"
stamp="$(cat "$source_dir"/Kbuild "$source_dir"/*.c | sha256sum | cut -c1-16)"
ko="$out_dir/protect_attack.ko"
if [ -f "$ko" ] && [ "$(cat "$out_dir/protect_attack.stamp" 2>/dev/null)" = "$stamp" ]; then
    echo "$ko"
    exit 0
fi

mkdir -p "$out_dir"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp "$source_dir"/Kbuild "$source_dir"/*.c "$work/"
make -s -C "$headers" M="$work" modules >&2
# Atomic replace: a test running meanwhile never sees a half-written module.
install -m 0644 "$work/protect_attack.ko" "$out_dir/.protect_attack.ko.tmp.$$"
mv -f "$out_dir/.protect_attack.ko.tmp.$$" "$ko"
echo "$stamp" > "$out_dir/protect_attack.stamp"
echo "$ko"
