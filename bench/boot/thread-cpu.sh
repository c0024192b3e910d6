#!/usr/bin/env bash
# One boot of the default guest to power-off on the emulator, with the CPU time of each VMM
# thread: the vCPU thread is a boot's critical path, the tier-1 compiler and .NET's own tiering
# thread run beside it. For A/B comparisons of emulator builds, alternate two builds' runs.
#
# Usage: bench/boot/thread-cpu.sh LABEL SHARPVISOR_DLL [ENV=VALUE ...]
#   SHARPVISOR_DLL: a published CLI's sharpvisor.dll (dotnet publish src/SharpVisor.Cli -c Release
#   -r linux-x64 --self-contained false -p:PublishReadyToRun=true -o DIR), or out/cli/sharpvisor.dll.
#   ENV=VALUE: set for the VMM (SHARPVISOR_TIER=interpreter, SHARPVISOR_TIER1_THRESHOLD=4000, ...).
# Prints one line: LABEL wall=S other=S tier1-compiler=S tiering=S vcpu0=S total=S guest-off=S
# (CPU seconds by thread name from /proc/PID/task/*/stat, sampled every 20 ms; guest-off is the
# guest's own timestamp of "reboot: Power down"). Kernel and initrd: scripts/build-guest.sh's.
set -euo pipefail
if [ "$#" -lt 2 ]; then
    sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
fi

label=$1
dll=$2
shift 2
guest=${SHARPVISOR_GUEST_DIR:-/var/cache/sharpvisor/guest/current}
cmdline="console=ttyS0 reboot=k panic=-1 no_timer_check autopoweroff"
out=$(mktemp)
trap 'rm -f "$out"' EXIT

start=$(date +%s.%N)
env DOTNET_TC_CallCountingDelayMs=0 "$@" dotnet "$dll" run --accel emulator --memory 512M \
    --kernel "$guest/vmlinuz" --initrd "$guest/initrd.img" --cmdline "$cmdline" >"$out" 2>&1 &
pid=$!

# The last CPU time seen of every thread (threads end before the process does).
declare -A name_of ticks_of
while kill -0 "$pid" 2>/dev/null; do
    for stat in /proc/"$pid"/task/*/stat; do
        { read -r line <"$stat"; } 2>/dev/null || continue # a builtin: no process per sample
        tid=${stat#/proc/"$pid"/task/}
        tid=${tid%/stat}
        comm=${line#*(}
        comm=${comm%)*}
        read -r -a fields <<<"${line##*) }"
        name_of[$tid]=$comm
        ticks_of[$tid]=$((fields[11] + fields[12]))
    done
    sleep 0.02
done
wait "$pid" || true
end=$(date +%s.%N)

hz=$(getconf CLK_TCK)
declare -A by
for tid in "${!ticks_of[@]}"; do
    case ${name_of[$tid]} in
        vcpu[0-9]* | tier1-compiler) key=${name_of[$tid]} ;;
        .NET\ Tiered*) key=tiering ;;
        *) key=other ;;
    esac
    by[$key]=$((${by[$key]:-0} + ticks_of[$tid]))
done

poweroff=$(grep -o '\[ *[0-9.]*\] reboot: Power down' "$out" | grep -o '[0-9]*\.[0-9]*' | head -1 || true)
printf '%s wall=%s' "$label" "$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }')"
total=0
for key in $(printf '%s\n' "${!by[@]}" | sort); do
    printf ' %s=%s' "$key" "$(awk -v t="${by[$key]}" -v hz="$hz" 'BEGIN { printf "%.2f", t / hz }')"
    total=$((total + by[$key]))
done
printf ' total=%s guest-off=%s\n' "$(awk -v t="$total" -v hz="$hz" 'BEGIN { printf "%.2f", t / hz }')" "${poweroff:-?}"
