#!/usr/bin/env bash
# What InstanceStart costs: the time from sending PUT /actions InstanceStart to its 204, for
# out/firecracker (the NativeAOT front end: the request execs the JIT VMM, which replays the
# configuration and builds the machine) and for out/cli/sharpvisor firecracker (the JIT VMM
# started directly: it only builds the machine). The difference is the handover's cost. Each
# run configures 1 vCPU, 16 MiB and the Multiboot test kernel by curl, then times InstanceStart
# with curl's time_total. Usage: bench/vmm-startup/handover.sh [N]   (default 5; needs curl)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
runs="${1:-5}"
if [ ! -x "$root/out/cli/sharpvisor" ] || [ ! -x "$root/out/firecracker" ]; then
    "$root/sharpvisor" --help >/dev/null
fi
kernel="$("$root/scripts/build-test-kernels.sh" | grep multiboot-hello.elf)"
work="$(mktemp -d)"
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"' EXIT

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
api() { curl -sS --unix-socket "$sock" -o /dev/null -w '%{http_code} %{time_total}\n' -X "$1" "http://localhost$2" ${3:+-d "$3"}; }

# measure NAME COMMAND...: the socket path is appended as --api-sock.
measure() {
    local name="$1"; shift
    : >"$work/times.txt"
    for i in $(seq "$runs"); do
        sock="$work/vmm-$i.sock"
        "$@" --api-sock "$sock" >/dev/null 2>&1 &
        pid=$!
        until curl -s --unix-socket "$sock" http://localhost/ >/dev/null 2>&1; do sleep 0.01; done
        api PUT /machine-config '{"vcpu_count": 1, "mem_size_mib": 16}' >/dev/null
        api PUT /boot-source "{\"kernel_image_path\": \"$kernel\", \"boot_args\": \"loop=20000\"}" >/dev/null
        read -r code seconds < <(api PUT /actions '{"action_type": "InstanceStart"}')
        [ "$code" = 204 ] || { echo "$name: InstanceStart answered $code" >&2; exit 1; }
        awk -v s="$seconds" 'BEGIN {printf "%.1f\n", s * 1000}' >>"$work/times.txt"
        kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
    done
    echo "$name: InstanceStart to 204 in $(paste -sd' ' "$work/times.txt") ms; median $(median <"$work/times.txt") ms"
}

measure "out/firecracker (front end + handover)" "$root/out/firecracker"
measure "out/cli/sharpvisor firecracker (JIT VMM)" "$root/out/cli/sharpvisor" firecracker
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg); $(grep -m1 'model name' /proc/cpuinfo | sed 's/\t//'); $(nproc) CPUs"
