#!/usr/bin/env bash
# Startup time and memory of an idle VMM, side by side with the floor: starts
# `out/firecracker --api-sock S` (SharpVisor's Firecracker drop-in, ReadyToRun) and a minimal C
# program that binds the same socket and answers GET / (floor.c), and times each from fork to
# the first "200" answer to GET / (ready.c, a C poller). Reports per run and the medians of N
# runs (default 10): wall time, resident memory then, CPU time used by then, and the ratio
# SharpVisor/floor. Usage: bench/vmm-startup/run.sh [N] [DIR-WITH-the-sharpvisor-launcher]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
runs="${1:-10}"
out="${2:-$root/out/cli}"
if [ ! -x "$out/sharpvisor" ]; then
    "$root/sharpvisor" --help >/dev/null   # builds out/cli (Release, ReadyToRun)
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
measure sharpvisor "$out/sharpvisor" firecracker --api-sock SOCK
for name in floor sharpvisor; do
    printf '%s %s %s\n' \
        "$(awk '{print $1}' "$work/$name.txt" | median)" \
        "$(awk '{print $2}' "$work/$name.txt" | median)" \
        "$(awk '{print $3}' "$work/$name.txt" | median)" >"$work/$name.median"
done
read -r ft fr fc <"$work/floor.median"
read -r st sr sc <"$work/sharpvisor.median"
echo "median of $runs: floor      ready in $ft ms, RSS $fr KiB, CPU $fc ms"
echo "median of $runs: sharpvisor ready in $st ms, RSS $((sr / 1024)) MiB, CPU $sc ms"
awk -v ft="$ft" -v st="$st" -v fr="$fr" -v sr="$sr" 'BEGIN {printf "ratio sharpvisor/floor: time %.0fx, RSS %.0fx\n", st / ft, sr / fr}'
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg); $(grep -m1 'model name' /proc/cpuinfo | sed 's/\t//'); $(nproc) CPUs"
