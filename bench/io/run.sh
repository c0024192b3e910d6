#!/usr/bin/env bash
# bench/io: virtio-blk and virtio-net, SharpVisor side by side with QEMU (Debian's
# qemu-system-x86) with the same accelerator kind and the same default guest:
#   seq-write-1m / seq-read-1m   sequential 1 MiB O_DIRECT writes / reads in the guest (MiB/s)
#   rand-read-4k                 4 KiB O_DIRECT random reads, queue depth 1 (IOPS)
#   tcp-guest-to-host            a TCP stream from the guest to a sink in the host's namespace (MiB/s)
# QEMU gets virtio-blk-pci on a raw image (cache=writeback: buffered on the host, as
# SharpVisor's back end is) and virtio-net-pci on a TAP (vhost off: both VMMs move packets in
# user space). The accelerator: SharpVisor's emulator against QEMU TCG where the emulator
# exists, else hardware KVM against QEMU KVM; with neither, only QEMU runs and the script says why.
# The guest side is iobench.c, built static and appended to the initrd with a /hook.sh.
#
# Usage: bench/io/run.sh [--runs N] [--mib M] [--net-mib M] [--rand-seconds S] [--only qemu|sharpvisor] [--append TEXT]
#                        [--threads] [--perf PHASE[,PHASE] --keep DIR]
# --append adds TEXT to both guests' kernel command line (e.g. "retbleed=off spec_rstack_overflow=off":
# without return thunks, like QEMU's qemu64 guest; a diagnostic, docs/virtio.md "Performance").
# --threads prints each run's CPU per phase broken down by thread name; --perf PHASE[,PHASE...]
# records a `perf record -g` of the VMM during those phases into DIR/perf-SIDE-RUN-PHASE.data
# (--keep DIR also keeps the logs, the phase and thread tables and the counters).
# Needs root (network namespace, TAP). Prints every run, then medians and SharpVisor/QEMU ratios.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
runs=3 mib=64 netmib=64 rand=5 only="" append="" threads="" perf_phase="" keep=""
while [ $# -gt 0 ]; do
    case "$1" in
    --runs) runs="$2"; shift 2 ;;
    --mib) mib="$2"; shift 2 ;;
    --net-mib) netmib="$2"; shift 2 ;;
    --rand-seconds) rand="$2"; shift 2 ;;
    --only) only="$2"; shift 2 ;;
    --append) append="$2"; shift 2 ;;
    --threads) threads=1; shift ;;
    --perf) perf_phase="$2"; shift 2 ;;
    --keep) keep="$2"; shift 2 ;;
    *) echo "usage: $0 [--runs N] [--mib M] [--net-mib M] [--rand-seconds S] [--only qemu|sharpvisor] [--append TEXT] [--threads] [--perf PHASE[,PHASE] --keep DIR]" >&2; exit 2 ;;
    esac
done
[ -z "$perf_phase" ] || [ -n "$keep" ] || { echo "bench/io: --perf needs --keep DIR" >&2; exit 2; }
[ -z "$keep" ] || mkdir -p "$keep"
[ "$(id -u)" = 0 ] || { echo "bench/io: needs root (network namespace and TAP)" >&2; exit 1; }

say() { echo "bench/io: $*" >&2; }
if ! command -v qemu-system-x86_64 >/dev/null; then
    say "installing qemu-system-x86"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends qemu-system-x86 >/dev/null ||
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends qemu-system-x86 >/dev/null; }
fi
for tool in gcc cpio ip; do
    command -v "$tool" >/dev/null || { say "needs $tool"; exit 1; }
done
eval "$("$root/scripts/build-guest.sh")" # KERNEL, INITRD

# Which accelerator kind both sides use.
sharpvisor_accel="" qemu_accel="tcg" why=""
if "$root/sharpvisor" run --help 2>/dev/null | grep -q emulator; then
    sharpvisor_accel=emulator qemu_accel=tcg
elif [ -w /dev/kvm ] && [ ! -d /sys/module/kvm_pvm ] && grep -qwE 'vmx|svm' /proc/cpuinfo; then
    sharpvisor_accel=kvm qemu_accel=kvm
else
    why="no SharpVisor accelerator here boots the default guest (/dev/kvm is PVM-backed or missing, and the emulator accelerator is not available)"
fi

work="$(mktemp -d /tmp/sharpvisor-bench-io.XXXXXX)"
ns="svbio$$"
cleanup() {
    [ -n "${sink_pid:-}" ] && kill "$sink_pid" 2>/dev/null || true
    [ -n "$keep" ] && cp "$work"/*.log "$keep"/ 2>/dev/null
    ip netns del "$ns" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# The guest side: iobench and a hook, appended to the default initrd (4-byte aligned).
mkdir -p "$work/h"
gcc -O2 -static -o "$work/h/iobench" "$(dirname "${BASH_SOURCE[0]}")/iobench.c"
# A BENCH-PHASE line before each phase lets the host take the VMM's CPU time (and SharpVisor's
# counters) between phases; the short sleep after it lets that happen before the phase starts.
# The first, empty phase measures what the marker and the sleep cost, which each phase's CPU time
# then leaves out.
cat >"$work/h/hook.sh" <<HOOK
ip addr add 10.80.0.2/24 dev eth0 && ip link set eth0 up
echo BENCH-PHASE idle; sleep 0.2
echo BENCH-PHASE seq-write-1m; sleep 0.2
/iobench seqwrite /dev/vda $mib
echo BENCH-PHASE seq-read-1m; sleep 0.2
/iobench seqread /dev/vda $mib
echo BENCH-PHASE rand-read-4k; sleep 0.2
/iobench randread /dev/vda $rand
echo BENCH-PHASE tcp-guest-to-host; sleep 0.2
/iobench send 10.80.0.1 7000 $netmib
echo BENCH-PHASE end; sleep 0.2
echo BENCH-DONE
HOOK
(cd "$work/h" && printf 'hook.sh\niobench\n' | cpio -o -H newc -R 0:0 --quiet) >"$work/hook.cpio"
cp "$INITRD" "$work/initrd-bench.img"
size=$(stat -c %s "$work/initrd-bench.img")
head -c $(((4 - size % 4) % 4)) /dev/zero >>"$work/initrd-bench.img"
cat "$work/hook.cpio" >>"$work/initrd-bench.img"

# The host side: a namespace with a persistent TAP, and a TCP sink in it.
ip netns add "$ns"
ip -n "$ns" tuntap add dev svb0 mode tap vnet_hdr
ip netns exec "$ns" sysctl -qw net.ipv6.conf.svb0.disable_ipv6=1
ip -n "$ns" addr add 10.80.0.1/24 dev svb0
ip -n "$ns" link set svb0 up
gcc -O2 -o "$work/sink" "$(dirname "${BASH_SOURCE[0]}")/iobench.c"

cmdline="console=ttyS0 reboot=k panic=-1 no_timer_check autopoweroff${append:+ $append}"
run_qemu() {
    ip netns exec "$ns" timeout 3600 qemu-system-x86_64 -M pc -accel "$qemu_accel" -m 512 -smp 1 -nographic -no-reboot -name bench,debug-threads=on \
        -kernel "$KERNEL" -initrd "$work/initrd-bench.img" -append "$cmdline" -pidfile "$work/vmm.pid" \
        -drive "file=$work/disk.img,if=none,id=d0,format=raw" -device virtio-blk-pci,drive=d0 \
        -netdev tap,id=n0,ifname=svb0,script=no,downscript=no,vhost=off -device virtio-net-pci,netdev=n0 </dev/null 2>&1
}
run_sharpvisor() {
    # Symbols for perf: the JIT's map file, and code pages that perf can read.
    local perf_env=()
    [ -n "$perf_phase" ] && perf_env=(env DOTNET_PerfMapEnabled=1 DOTNET_EnableWriteXorExecute=0)
    ip netns exec "$ns" timeout 3600 "${perf_env[@]}" "$root/sharpvisor" run --accel "$sharpvisor_accel" --memory 512M --cpus 1 \
        --kernel "$KERNEL" --initrd "$INITRD" --extra-initrd "$work/hook.cpio" --cmdline "$cmdline" \
        --disk "$work/disk.img" --net tap=svb0 --no-rng --serial stdio --counters "$work/counters" </dev/null 2>&1
}

# One run: fresh image, the sink listening, the VMM booting the guest; RESULT lines collected.
declare -A results
one_run() { # $1 = qemu | sharpvisor, $2 = run number
    truncate -s 0 "$work/disk.img" && truncate -s "$((mib + 16))M" "$work/disk.img"
    ip netns exec "$ns" "$work/sink" sink 7000 >"$work/sink.log" 2>&1 &
    sink_pid=$!
    until grep -q LISTENING "$work/sink.log" 2>/dev/null; do sleep 0.05; done
    local log="$work/$1-$2.log"
    rm -f "$work/vmm.pid" "$work/counters" "$work/phases" "$work/threads"
    "run_$1" | tee "$log" | phase_cpu "$1" "$2" || true
    wait "$sink_pid" || true
    sink_pid=""
    if ! grep -q BENCH-DONE "$log"; then
        say "$1 run $2 did not finish; log: $(tail -5 "$log" | tr '\n' '|')"
        return 1
    fi
    local line name value
    while read -r _ name value _; do
        results["$1,$name"]+="$value "
    done < <(grep -h '^RESULT' "$log" | grep -v tcp-guest-to-host; grep -h '^RESULT' "$work/sink.log" | sed 's/tcp-received/tcp-guest-to-host/')
    echo "$1 run $2: $(grep -h '^RESULT' "$log" "$work/sink.log" | grep -v tcp-guest-to-host | awk '{printf "%s=%s %s  ", $2, $3, $4}')"
    [ -n "$threads" ] && thread_cpu
    [ -n "$keep" ] && cp "$work/phases" "$keep/phases-$1-$2" && cp "$work/threads" "$keep/threads-$1-$2" && { [ ! -f "$work/counters" ] || cp "$work/counters" "$keep/counters-$1-$2"; }
    # CPU time per unit of work: the phase's CPU (all of the VMM's threads) over MiB moved or requests.
    local requests
    requests=$(tr -d '\r' <"$log" | awk '$1 == "RESULT" && $2 == "rand-read-4k" {print $5}')
    local units="seq-write-1m=$mib seq-read-1m=$mib rand-read-4k=${requests:-0} tcp-guest-to-host=$netmib"
    while read -r name per_unit; do
        results["$1,cpu,$name"]+="$per_unit "
    done < <(awk -v units="$units" '
        BEGIN { n = split(units, u, " "); for (i = 1; i <= n; i++) { split(u[i], kv, "="); work[kv[1]] = kv[2] } }
        { name[NR] = $1; cpu[NR] = $2 }
        END {
            for (i = 1; i < NR; i++) if (name[i] == "idle") idle = cpu[i + 1] - cpu[i]
            for (i = 1; i < NR; i++) if (work[name[i]] > 0) printf "%s %.3f\n", name[i], (cpu[i + 1] - cpu[i] - idle) / 1e6 / work[name[i]]
        }' "$work/phases")
    if [ "$1" = sharpvisor ] && [ -f "$work/counters" ]; then
        # The emulator's counters at each phase boundary (one COUNTERS line per SIGUSR2, in order).
        while read -r name per_unit; do
            results["sharpvisor,counters,$name"]+="$per_unit|"
        done < <(awk -v units="$units" -v phases="$(awk '{printf "%s ", $1}' "$work/phases")" '
            BEGIN { n = split(units, u, " "); for (i = 1; i <= n; i++) { split(u[i], kv, "="); work[kv[1]] = kv[2] }; split(phases, phase, " ") }
            $1 == "COUNTERS" { k = $2 + 1; for (i = 3; i <= NF; i++) { split($i, kv, "="); c[k, kv[1]] = kv[2] }; last = k }
            function delta(k, name) { return c[k + 1, name] - c[k, name] - (idle ? c[idle + 1, name] - c[idle, name] : 0) }
            END {
                for (k = 1; k < last; k++) if (phase[k] == "idle") idle = k
                for (k = 1; k < last; k++) {
                    w = work[phase[k]]; if (!(w > 0)) continue
                    insns = delta(k, "instructions")
                    printf "%s instructions=%.0f mmio=%.2f irq=%.2f hlt=%.2f tier1=%.0f%%\n", phase[k], insns / w,
                        delta(k, "mmio") / w, delta(k, "irq-injection") / w, delta(k, "hlt") / w,
                        100 * delta(k, "tier1-instructions") / (insns > 0 ? insns : 1)
                }
            }' "$work/counters")
    fi
}

# Each phase's CPU (ms) by thread name (threads of one name summed).
thread_cpu() {
    awk '
        $1 == "PHASE" { p++; phase[p] = $2; next }
        { key = $2; t[p, key] += $3; names[key] = 1 }
        END {
            for (i = 1; i < p; i++) {
                if (phase[i] == "idle" || phase[i] == "end") continue
                line = ""
                for (n in names) { d = (t[i + 1, n] - t[i, n]) / 1e6; if (d >= 1) line = line sprintf("  %s=%.0f", n, d) }
                printf "    %s (ms):%s\n", phase[i], line
            }
        }' "$work/threads"
}

# Reads the VMM's console; at each BENCH-PHASE line appends "phase cpu-ns" (the sum of every
# thread's run time from /proc/PID/task/*/schedstat) to $work/phases, and has SharpVisor append
# its counters (SIGUSR2, --counters).
phase_cpu() { # $1 = qemu | sharpvisor, $2 = run number
    local line phase pid perf_pid=""
    while IFS= read -r line; do
        case "$line" in
        BENCH-PHASE*)
            phase=$(echo "${line#BENCH-PHASE }" | tr -d '\r')
            if [ "$1" = qemu ]; then pid=$(cat "$work/vmm.pid" 2>/dev/null || true); else pid=$(awk '$1 == "PID" {print $2}' "$work/counters" 2>/dev/null || true); fi
            [ -n "$pid" ] || continue
            [ "$1" = sharpvisor ] && kill -USR2 "$pid" 2>/dev/null
            echo "$phase $(cat /proc/"$pid"/task/*/schedstat 2>/dev/null | awk '{s += $1} END {printf "%.0f", s}')" >>"$work/phases"
            echo "PHASE $phase" >>"$work/threads"
            for task in /proc/"$pid"/task/*; do
                echo "${task##*/} $(tr ' ' '_' <"$task/comm" 2>/dev/null) $(cut -d' ' -f1 "$task/schedstat" 2>/dev/null)"
            done >>"$work/threads" 2>/dev/null || true
            if [ -n "$perf_pid" ]; then kill -INT "$perf_pid" 2>/dev/null; wait "$perf_pid" 2>/dev/null || true; perf_pid=""; fi
            if [[ ",$perf_phase," == *",$phase,"* ]]; then
                perf record -q -g -p "$pid" -o "$keep/perf-$1-$2-$phase.data" >/dev/null 2>&1 &
                perf_pid=$!
            fi
            ;;
        esac
    done
}

sides=()
[ "$only" != sharpvisor ] && sides+=(qemu)
if [ "$only" != qemu ]; then
    if [ -n "$sharpvisor_accel" ]; then sides+=(sharpvisor); else say "SharpVisor half SKIPPED: $why"; fi
fi
for ((i = 1; i <= runs; i++)); do
    for side in "${sides[@]}"; do one_run "$side" "$i" || true; done
done

median() { tr ' ' '\n' | sed '/^$/d' | sort -g | awk '{a[NR]=$1} END {if (NR) print a[int((NR+1)/2)]; else print "-"}'; }
echo
printf '%-20s %8s %16s %22s %8s\n' metric unit "qemu ($qemu_accel)" "sharpvisor (${sharpvisor_accel:-none})" ratio
for metric in seq-write-1m:MiB/s seq-read-1m:MiB/s rand-read-4k:IOPS tcp-guest-to-host:MiB/s; do
    name=${metric%%:*} unit=${metric#*:}
    q=$(echo "${results[qemu,$name]:-}" | median)
    s=$(echo "${results[sharpvisor,$name]:-}" | median)
    ratio=$(awk -v q="$q" -v s="$s" 'BEGIN { if (q+0 > 0 && s != "-") printf "%.2f", s / q; else print "-" }')
    printf '%-20s %8s %16s %22s %8s\n' "$name" "$unit" "$q" "$s" "$ratio"
done
echo "(medians of $runs runs; $mib MiB sequential, ${rand} s random, $netmib MiB TCP; ratio = SharpVisor / QEMU, higher is better)"

# The same work by CPU time, which a loaded host moves far less than wall-clock throughput.
echo
printf '%-20s %12s %16s %22s %8s\n' metric "CPU per" "qemu ($qemu_accel)" "sharpvisor (${sharpvisor_accel:-none})" ratio
for metric in seq-write-1m:MiB:ms seq-read-1m:MiB:ms rand-read-4k:request:us tcp-guest-to-host:MiB:ms; do
    IFS=: read -r name unit scale <<<"$metric"
    factor=1; [ "$scale" = us ] && factor=1000
    q=$(echo "${results[qemu,cpu,$name]:-}" | median)
    s=$(echo "${results[sharpvisor,cpu,$name]:-}" | median)
    q=$(awk -v v="$q" -v f="$factor" 'BEGIN { if (v == "-") print "-"; else printf "%.3g", v * f }')
    s=$(awk -v v="$s" -v f="$factor" 'BEGIN { if (v == "-") print "-"; else printf "%.3g", v * f }')
    ratio=$(awk -v q="$q" -v s="$s" 'BEGIN { if (s+0 > 0 && q != "-") printf "%.2f", q / s; else print "-" }')
    printf '%-20s %12s %16s %22s %8s\n' "$name" "$scale/$unit" "$q" "$s" "$ratio"
done
echo "(CPU time of the whole VMM process, all threads, over each phase less an empty phase's; ratio = QEMU / SharpVisor, higher is better)"
if [ -n "$sharpvisor_accel" ] && [ "$only" != qemu ]; then
    echo
    echo "SharpVisor's counters per unit (per MiB, per request for rand-read-4k; less the empty phase's), each run:"
    for name in seq-write-1m seq-read-1m rand-read-4k tcp-guest-to-host; do
        echo "  $name: ${results[sharpvisor,counters,$name]:-}" | sed 's/|$//; s/|/ | /g'
    done
fi
