#!/usr/bin/env bash
# bench/xen-io: Xen's split drivers against virtio on the same emulator and the same default
# guest, side by side in one run (issue 11):
#   seq-write-1m / seq-read-1m   sequential 1 MiB O_DIRECT writes / reads (MiB/s): xvda vs vda
#   rand-read-4k                 4 KiB O_DIRECT random reads, queue depth 1 (IOPS)
#   tcp-guest-to-host            a TCP stream from the guest to a sink in the host's namespace
#                                (MiB/s): eth0 through xen-netfront vs virtio-net
#   tcp-host-to-guest            the other way: the host sends, a sink in the guest receives
# For the xen side it also reports the hypercalls and upcalls (event-channel injections) per MiB
# moved in each phase, from the VMM's counters (`sharpvisor run --counters`, signalled between
# the phases; each phase starts after a 2 s pause, so the idle guest's few timer hypercalls in
# that pause count too).
# "virtio" is `sharpvisor run` as a PC guest; "xen" is `--xen pvh`, where --disk is a vbd
# (blkback) and --net a vif (netback). The guest side is bench/io/iobench.c.
#
# Usage: bench/xen-io/run.sh [--runs N] [--mib M] [--net-mib M] [--rand-seconds S]
# Needs root (network namespace, TAP). Prints every run, then medians and xen/virtio ratios.
# SHARPVISOR="dotnet /path/sharpvisor.dll" runs that build instead of ./sharpvisor (which
# rebuilds when the sources change); SIDES=xen runs the xen side only (a before/after of Xen work).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
runs=3 mib=64 netmib=64 rand=5
while [ $# -gt 0 ]; do
    case "$1" in
    --runs) runs="$2"; shift 2 ;;
    --mib) mib="$2"; shift 2 ;;
    --net-mib) netmib="$2"; shift 2 ;;
    --rand-seconds) rand="$2"; shift 2 ;;
    *) echo "usage: $0 [--runs N] [--mib M] [--net-mib M] [--rand-seconds S]" >&2; exit 2 ;;
    esac
done
[ "$(id -u)" = 0 ] || { echo "bench/xen-io: needs root (network namespace and TAP)" >&2; exit 1; }

say() { echo "bench/xen-io: $*" >&2; }
for tool in gcc cpio ip; do
    command -v "$tool" >/dev/null || { say "needs $tool"; exit 1; }
done
eval "$("$root/scripts/build-guest.sh")" # KERNEL, INITRD

work="$(mktemp -d /tmp/sharpvisor-bench-xen-io.XXXXXX)"
ns="svbx$$"
cleanup() {
    [ -n "${sink_pid:-}" ] && kill "$sink_pid" 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# The guest side: iobench and one hook per device naming, appended with --extra-initrd.
gcc -O2 -static -o "$work/iobench" "$root/bench/io/iobench.c"
for side in virtio xen; do
    disk=/dev/vda
    [ "$side" = xen ] && disk=/dev/xvda
    mkdir -p "$work/$side"
    cp "$work/iobench" "$work/$side/iobench"
    cat >"$work/$side/hook.sh" <<HOOK
ip addr add 10.81.0.2/24 dev eth0 && ip link set eth0 up
mark() { echo "MARK \$1"; sleep 2; }
mark seq-write-1m; /iobench seqwrite $disk $mib
mark seq-read-1m; /iobench seqread $disk $mib
mark rand-read-4k; /iobench randread $disk $rand
mark tcp-guest-to-host; /iobench send 10.81.0.1 7000 $netmib
mark tcp-host-to-guest; /iobench sink 7001
mark end
echo BENCH-DONE
HOOK
    (cd "$work/$side" && printf 'hook.sh\niobench\n' | cpio -o -H newc -R 0:0 --quiet) >"$work/$side.cpio"
done

# The host side: a namespace with a persistent TAP, and a TCP sink in it.
ip netns add "$ns"
ip -n "$ns" tuntap add dev svx0 mode tap vnet_hdr
ip netns exec "$ns" sysctl -qw net.ipv6.conf.svx0.disable_ipv6=1
ip -n "$ns" addr add 10.81.0.1/24 dev svx0
ip -n "$ns" link set svx0 up
gcc -O2 -o "$work/sink" "$root/bench/io/iobench.c"

run_side() { # $1 = virtio | xen
    local xen=() console=ttyS0
    [ "$1" = xen ] && xen=(--xen pvh) console=hvc0
    ip netns exec "$ns" timeout 3600 ${SHARPVISOR:-"$root/sharpvisor"} run --accel emulator --counters "$work/counters"  --memory 512M --cpus 1 "${xen[@]}" \
        --kernel "$KERNEL" --initrd "$INITRD" --extra-initrd "$work/$1.cpio" \
        --cmdline "console=$console reboot=k panic=-1 no_timer_check autopoweroff" \
        --disk "$work/disk.img" --net tap=svx0 --no-rng --serial stdio </dev/null 2>&1
}

declare -A results
phases=(seq-write-1m seq-read-1m rand-read-4k tcp-guest-to-host tcp-host-to-guest)
one_run() { # $1 = virtio | xen, $2 = run number
    truncate -s 0 "$work/disk.img" && truncate -s "$((mib + 16))M" "$work/disk.img"
    ip netns exec "$ns" "$work/sink" sink 7000 >"$work/sink.log" 2>&1 &
    sink_pid=$!
    until grep -q LISTENING "$work/sink.log" 2>/dev/null; do sleep 0.05; done
    local log="$work/$1-$2.log" marks=0 sent=0 n vmm
    rm -f "$work/counters"
    run_side "$1" >"$log" &
    vmm=$!
    # Each MARK the guest prints asks the VMM for a counter snapshot; the guest's sink gets the host's stream.
    while kill -0 "$vmm" 2>/dev/null; do
        n=$(grep -c '^MARK' "$log" || true)
        while [ "$marks" -lt "$n" ]; do
            marks=$((marks + 1))
            kill -USR2 "$(sed -n 's/^PID //p' "$work/counters" 2>/dev/null)" 2>/dev/null || true
        done
        if [ "$sent" = 0 ] && grep -q '^LISTENING' "$log"; then
            sent=1
            ip netns exec "$ns" "$work/sink" send 10.81.0.2 7001 "$netmib" >/dev/null 2>&1 &
        fi
        sleep 0.1
    done
    wait "$vmm" || true
    wait "$sink_pid" || true
    sink_pid=""
    if ! grep -q BENCH-DONE "$log"; then
        say "$1 run $2 did not finish; log: $(tail -5 "$log" | tr '\n' '|')"
        return 1
    fi
    local name value
    while read -r _ name value _; do
        results["$1,$name"]+="$value "
    done < <(grep -h '^RESULT' "$log" | grep -v tcp-guest-to-host | sed 's/tcp-received/tcp-host-to-guest/'; grep -h '^RESULT' "$work/sink.log" | sed 's/tcp-received/tcp-guest-to-host/')
    echo "$1 run $2: $( (grep -h '^RESULT' "$log" | grep -v tcp-guest-to-host | sed 's/tcp-received/tcp-host-to-guest/'; grep -h '^RESULT' "$work/sink.log" | sed 's/tcp-received/tcp-guest-to-host/') | awk '{printf "%s=%s %s  ", $2, $3, $4}')"
    [ "$1" = xen ] && echo "xen run $2: netback's $(tail -n 1 "$work/counters" | tr ' ' '\n' | grep -E '^xen-vif0-(tx|rx)-gso-packets=' | tr '\n' ' ')"
    # Hypercalls and upcalls per MiB moved in each phase: the difference of the snapshots around it.
    local i moved
    for i in "${!phases[@]}"; do
        name=${phases[$i]}
        case "$name" in
        seq-*) moved=$mib ;;
        rand-read-4k) moved=$(grep -h '^RESULT rand-read-4k' "$log" | awk -v s="$rand" '{print $3 * s * 4096 / 1048576}') ;;
        *) moved=$netmib ;;
        esac
        for counter in hypercalls upcalls; do
            value=$(awk -v a="$i" -v b="$((i + 1))" -v key="xen-$counter" -v moved="$moved" '
                $1 == "COUNTERS" && ($2 == a || $2 == b) { for (f = 3; f <= NF; f++) { split($f, kv, "="); if (kv[1] == key) v[$2] = kv[2] } }
                END { if ((a in v) && (b in v) && moved > 0) printf "%.0f", (v[b] - v[a]) / moved }' "$work/counters")
            [ -n "$value" ] && results["$1,$name,$counter"]+="$value "
        done
    done
}

for ((i = 1; i <= runs; i++)); do
    for side in ${SIDES:-virtio xen}; do one_run "$side" "$i" || true; done
done

median() { tr ' ' '\n' | sed '/^$/d' | sort -g | awk '{a[NR]=$1} END {if (NR) print a[int((NR+1)/2)]; else print "-"}'; }
echo
printf '%-20s %8s %12s %12s %8s %14s %12s\n' metric unit virtio xen ratio hypercalls/MiB upcalls/MiB
for metric in seq-write-1m:MiB/s seq-read-1m:MiB/s rand-read-4k:IOPS tcp-guest-to-host:MiB/s tcp-host-to-guest:MiB/s; do
    name=${metric%%:*} unit=${metric#*:}
    v=$(echo "${results[virtio,$name]:-}" | median)
    x=$(echo "${results[xen,$name]:-}" | median)
    ratio=$(awk -v v="$v" -v x="$x" 'BEGIN { if (v+0 > 0 && x != "-") printf "%.2f", x / v; else print "-" }')
    h=$(echo "${results[xen,$name,hypercalls]:-}" | median)
    u=$(echo "${results[xen,$name,upcalls]:-}" | median)
    printf '%-20s %8s %12s %12s %8s %14s %12s\n' "$name" "$unit" "$v" "$x" "$ratio" "$h" "$u"
done
echo "(medians of $runs runs on the emulator; $mib MiB sequential, ${rand} s random, $netmib MiB TCP each way; ratio = xen / virtio, higher is better;"
echo " hypercalls and upcalls per MiB moved by the xen side, from the VMM's counters around each phase)"
