#!/usr/bin/env bash
# Installs the Debian packages SharpVisor's build, tests and benchmarks need. Idempotent:
# when everything is present it only checks and returns.
set -euo pipefail
quiet=0
[ "${1:-}" = "--quiet" ] && quiet=1

# The .NET SDK is the one prerequisite we do not install (README: "a Debian 12 machine
# with the .NET 10 SDK").
if ! command -v dotnet >/dev/null 2>&1; then
    echo "sharpvisor: the .NET 10 SDK (dotnet) is required; see README.md" >&2
    exit 1
fi

# Package -> a file it provides, so the check needs no dpkg query per package.
declare -A wanted=(
    [gcc]=/usr/bin/gcc
    [binutils]=/usr/bin/ld
    [cpio]=/usr/bin/cpio
    [kmod]=/usr/bin/kmod
    [gzip]=/usr/bin/gzip
    [xz-utils]=/usr/bin/xz
    [iproute2]=/usr/sbin/ip
    [acpica-tools]=/usr/bin/iasl
    [tmux]=/usr/bin/tmux
    # NativeAOT (out/firecracker, scripts/build-firecracker.sh): the ILCompiler's link step calls
    # clang (gcc is its fallback) and links zlib (https://aka.ms/nativeaot-prerequisites).
    [clang]=/usr/bin/clang
    [zlib1g-dev]=/usr/include/zlib.h
)
missing=()
for pkg in "${!wanted[@]}"; do
    [ -e "${wanted[$pkg]}" ] || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "[setup] installing Debian packages: ${missing[*]}" >&2
    if [ "$(id -u)" != 0 ]; then
        echo "sharpvisor: packages missing (${missing[*]}) and not root: run 'sudo apt-get install ${missing[*]}'" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
elif [ "$quiet" = 0 ]; then
    echo "[setup] all Debian packages present" >&2
fi
