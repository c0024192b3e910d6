#!/usr/bin/env bash
# The default guest booted to power-off through Firecracker's API, on the emulator: by
# out/firecracker (the NativeAOT front end, which hands over to the JIT VMM at InstanceStart) and
# by out/cli/sharpvisor firecracker (the JIT VMM started directly), in pairs whose order swaps.
# The guest runs in the JIT VMM either way (the emulator's tier-1 translator needs the JIT); this
# checks that the handover costs the boot nothing. Per run: wall time from process start to exit,
# the process's CPU time (user+system) and peak RSS (GNU time). Usage: bench/vmm-startup/boot.sh [PAIRS (2)]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
pairs="${1:-2}"
if [ ! -x "$root/out/cli/sharpvisor" ] || [ ! -x "$root/out/firecracker" ]; then
    "$root/sharpvisor" --help >/dev/null
fi
eval "$("$root/scripts/build-guest.sh")"   # KERNEL=..., INITRD=...
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# boot NAME COMMAND...: --api-sock is appended; prints "wall user system maxrss_kib".
boot() {
    local name="$1"; shift
    local sock="$work/vmm.sock"
    rm -f "$sock" "$sock.console"
    /usr/bin/time -f '%e %U %S %M' -o "$work/time" "$@" --api-sock "$sock" --accel emulator >"$work/console" 2>&1 &
    local pid=$!
    until curl -s --unix-socket "$sock" http://localhost/ >/dev/null 2>&1; do sleep 0.01; done
    curl -sS --unix-socket "$sock" -X PUT http://localhost/machine-config -d '{"vcpu_count": 1, "mem_size_mib": 512}'
    curl -sS --unix-socket "$sock" -X PUT http://localhost/boot-source \
        -d "{\"kernel_image_path\": \"$KERNEL\", \"initrd_path\": \"$INITRD\", \"boot_args\": \"console=ttyS0 reboot=k panic=-1 no_timer_check autopoweroff\"}"
    curl -sS --unix-socket "$sock" -X PUT http://localhost/actions -d '{"action_type": "InstanceStart"}'
    wait "$pid" || true
    read -r wall user system rss < <(tail -1 "$work/time")
    printf '%-44s wall %7.1f s, CPU %6.1f s, peak RSS %4d MiB\n' "$name" "$wall" "$(echo "$user + $system" | bc)" "$((rss / 1024))"
}

# Each pair swaps the order, so neither road always runs first.
for i in $(seq "$pairs"); do
    if [ $((i % 2)) = 1 ]; then
        boot "out/firecracker (front end + handover) #$i" "$root/out/firecracker"
        boot "out/cli/sharpvisor firecracker (JIT) #$i" "$root/out/cli/sharpvisor" firecracker
    else
        boot "out/cli/sharpvisor firecracker (JIT) #$i" "$root/out/cli/sharpvisor" firecracker
        boot "out/firecracker (front end + handover) #$i" "$root/out/firecracker"
    fi
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg); $(grep -m1 'model name' /proc/cpuinfo | sed 's/\t//'); $(nproc) CPUs"
