#!/usr/bin/env bash
# Startup time and memory of an idle VMM, side by side with the floor: starts
# `out/firecracker --api-sock S` (SharpVisor's Firecracker drop-in: the NativeAOT front end),
# `out/cli/sharpvisor firecracker --api-sock S` (the JIT VMM it hands over to at InstanceStart,
# ReadyToRun: what out/firecracker was before the front end) and a minimal C program that binds
# the same socket and answers GET / (floor.c), and times each from fork to the first "200" answer
# to GET / (ready.c, a C poller). Reports per run and the medians of N runs (default 10): wall
# time, resident memory then, CPU time used by then, and the ratios to the floor.
# Usage: bench/vmm-startup/run.sh [N] [DIR-WITH-the-sharpvisor-launcher]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
runs="${1:-10}"
out="${2:-$root/out/cli}"
if [ ! -x "$out/sharpvisor" ] || [ ! -x "$root/out/firecracker" ]; then
    "$root/sharpvisor" --help >/dev/null   # builds out/cli (Release, ReadyToRun) and out/firecracker (NativeAOT)
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cc -O2 -o "$work/ready" "$root/bench/vmm-startup/ready.c"
cc -O2 -o "$work/floor" "$root/bench/vmm-startup/floor.c"

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# measure NAME COMMAND...: the socket path is substituted for SOCK in COMMAND.
measure() {
    local name="$1"; shift
    : >"$work/$name.txt"
    for i in $(seq "$runs"); do
        local sock="$work/$name-$i.sock"
        local command=("${@//SOCK/$sock}")
        "$work/ready" "$sock" "${command[@]}" >>"$work/$name.txt" 2>/dev/null
        rm -f "$sock" "$sock.console"
    done
    awk -v n="$name" '{printf "%-10s run %2d: ready in %7.1f ms, RSS %6d KiB, CPU %6.1f ms\n", n, NR, $1, $2, $3}' "$work/$name.txt"
}

measure floor "$work/floor" SOCK
measure frontend "$root/out/firecracker" --api-sock SOCK
measure jitvmm "$out/sharpvisor" firecracker --api-sock SOCK
for name in floor frontend jitvmm; do
    printf '%s %s %s\n' \
        "$(awk '{print $1}' "$work/$name.txt" | median)" \
        "$(awk '{print $2}' "$work/$name.txt" | median)" \
        "$(awk '{print $3}' "$work/$name.txt" | median)" >"$work/$name.median"
done
read -r ft fr fc <"$work/floor.median"
echo "median of $runs: floor                     ready in $ft ms, RSS $fr KiB, CPU $fc ms"
for name in frontend jitvmm; do
    read -r st sr sc <"$work/$name.median"
    label="out/firecracker (NativeAOT)"
    [ "$name" = jitvmm ] && label="out/cli/sharpvisor (JIT) "
    echo "median of $runs: $label ready in $st ms, RSS $((sr / 1024)) MiB, CPU $sc ms"
    awk -v n="$label" -v ft="$ft" -v st="$st" -v fr="$fr" -v sr="$sr" -v fc="$fc" -v sc="$sc" \
        'BEGIN {printf "ratio %s/floor: time %.0fx, RSS %.0fx, CPU %.0fx\n", n, st / ft, sr / fr, sc / fc}'
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg); $(grep -m1 'model name' /proc/cpuinfo | sed 's/\t//'); $(nproc) CPUs"
