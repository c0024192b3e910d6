#!/usr/bin/env bash
# bench/matrix: the technique matrix (issue 12). The same guest workloads in each technique one
# SharpVisor binary offers, one boot per technique running all of them from one /hook.sh, with the
# VMM's counters around each workload, and QEMU TCG as the peer on the same kernel, initramfs and
# command line:
#   shadow    emulator, shadow paging, virtio            (CPU software, memory software, I/O paravirtual)
#   nested    emulator, nested paging, virtio            (CPU software, memory hardware-assisted*, I/O paravirtual)
#   xen-pvh   emulator, --xen pvh: Xen PV drivers        (CPU software, memory shadow, I/O paravirtual: Xen split drivers)
#   xen-pv    emulator, --xen pv: direct paging          (CPU paravirtual, memory paravirtual, I/O paravirtual: Xen)
#   kvm       --accel kvm, virtio                        (CPU and memory hardware-assisted, I/O paravirtual)
#   qemu-tcg  qemu-system-x86_64 -accel tcg, virtio      (the peer: binary translation, softmmu)
# (* nested paging as the emulator models it: the second stage of EPT/NPT in software.)
# Workloads (bench/matrix/workload.c, bench/io/iobench.c): syscall loop, fork+exec+exit,
# page-fault storm (mmap, touch, munmap), context switches through a pipe, a compute loop,
# sequential 1 MiB and random 4 KiB O_DIRECT disk I/O, a TCP stream to a TAP (root only).
# The guest prints MARK before each workload and pauses 1 s; the script then signals the VMM
# (--counters FILE, SIGUSR2) so a workload's counters are the difference of the snapshots around it.
#
# Usage: bench/matrix/run.sh [--only "shadow nested ..."] [--scale N]
#   --scale multiplies every workload's size (default 1: sized for a loaded 2-core host).
# SHARPVISOR="dotnet /path/sharpvisor.dll" runs that build instead of ./sharpvisor.
# Prints one results table, the technique grid, and the counters of each cell.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
only="shadow nested xen-pvh xen-pv kvm qemu-tcg" scale=1
while [ $# -gt 0 ]; do
    case "$1" in
    --only) only="$2"; shift 2 ;;
    --scale) scale="$2"; shift 2 ;;
    *) echo "usage: $0 [--only \"TECHNIQUES\"] [--scale N]" >&2; exit 2 ;;
    esac
done
say() { echo "bench/matrix: $*" >&2; }
command -v gcc >/dev/null || { say "needs gcc"; exit 1; }
command -v cpio >/dev/null || { say "needs cpio"; exit 1; }
eval "$("$root/scripts/build-guest.sh")" # KERNEL, INITRD
sharpvisor=${SHARPVISOR:-"$root/sharpvisor"}
[ -n "${SHARPVISOR:-}" ] || "$root/sharpvisor" --help >/dev/null # build once, outside the timed runs

work="$(mktemp -d /tmp/sharpvisor-bench-matrix.XXXXXX)"
ns="" net=0
cleanup() {
    [ -n "${sink_pid:-}" ] && kill "$sink_pid" 2>/dev/null || true
    [ -n "$ns" ] && ip netns del "$ns" 2>/dev/null || true
}
trap cleanup EXIT

# Sizes (a loaded 2-core host; the emulator runs the guest in software).
n_syscall=$((20000 * scale)) n_fork=$((40 * scale)) pf_mib=16 pf_rounds=$((2 * scale))
n_ctxsw=$((3000 * scale)) n_compute=$((4000000 * scale)) disk_mib=$((16 * scale)) rand_s=3 net_mib=$((16 * scale))
workloads=(syscall fork-exec pagefault ctxsw compute seq-write-1m seq-read-1m rand-read-4k tcp-guest-to-host)
first_io=5 # workloads from here on need the disk or the NIC

if [ "$(id -u)" = 0 ] && command -v ip >/dev/null; then
    net=1
    ns="svbm$$"
    ip netns add "$ns"
    ip -n "$ns" tuntap add dev svm0 mode tap vnet_hdr
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.svm0.disable_ipv6=1
    ip -n "$ns" addr add 10.82.0.1/24 dev svm0
    ip -n "$ns" link set svm0 up
else
    say "not root: no TCP workload (it needs a network namespace and a TAP)"
fi

gcc -O2 -static -o "$work/workload" "$root/bench/matrix/workload.c"
gcc -O2 -static -o "$work/iobench" "$root/bench/io/iobench.c"
gcc -O2 -o "$work/sink" "$root/bench/io/iobench.c"

# One initramfs for every technique: the default guest's, then (4-byte aligned) the hook,
# which finds its disk as vda (virtio) or xvda (Xen).
mkdir -p "$work/hook"
cp "$work/workload" "$work/iobench" "$work/hook/"
cat >"$work/hook/hook.sh" <<HOOK
disk=/dev/vda
[ -b /dev/xvda ] && disk=/dev/xvda
net=$net
[ \$net = 1 ] && ip addr add 10.82.0.2/24 dev eth0 && ip link set eth0 up
mark() { echo "MARK \$1"; sleep 1; }
mark syscall; /workload syscall $n_syscall
mark fork-exec; /workload fork $n_fork
mark pagefault; /workload pagefault $pf_mib $pf_rounds
mark ctxsw; /workload ctxsw $n_ctxsw
mark compute; /workload compute $n_compute
mark seq-write-1m; timeout 600 /iobench seqwrite \$disk $disk_mib
mark seq-read-1m; timeout 600 /iobench seqread \$disk $disk_mib
mark rand-read-4k; timeout 600 /iobench randread \$disk $rand_s
mark tcp-guest-to-host; [ \$net = 1 ] && timeout 600 /iobench send 10.82.0.1 7000 $net_mib
mark end
echo BENCH-DONE
HOOK
(cd "$work/hook" && printf 'hook.sh\nworkload\niobench\n' | cpio -o -H newc -R 0:0 --quiet) >"$work/hook.cpio"
cp "$INITRD" "$work/initrd.img"
truncate -s %4 "$work/initrd.img"
cat "$work/hook.cpio" >>"$work/initrd.img"

cmdline_tail="reboot=k panic=-1 no_timer_check autopoweroff"
declare -A result counters_of reason
# Why a technique cannot run here, or empty.
unavailable() {
    case "$1" in
    kvm)
        [ -e /dev/kvm ] || { echo "no /dev/kvm on this host"; return; }
        [ -d /sys/module/kvm_pvm ] && { echo "this host's /dev/kvm is PVM (kvm_pvm), which does not boot the default guest to user space (docs/kvm.md)"; return; }
        ;;
    qemu-tcg) command -v qemu-system-x86_64 >/dev/null || { echo "qemu-system-x86_64 is not installed"; return; } ;;
    esac
    echo ""
}

# Why a technique runs without its disk and NIC (its I/O workloads are then skipped), or empty.
no_io() {
    case "$1" in
    # None today: PV guests map their grant frames (machine frames set aside by the builder) since
    # the PV I/O work, so xen-pv runs its disk and TCP workloads too.
    none) ;;
    esac
}

launch() { # technique log counters
    local console=ttyS0 args=() netargs=() prefix=()
    [ "$net" = 1 ] && prefix=(ip netns exec "$ns")
    case "$1" in
    shadow) args=(--accel emulator --mmu shadow) ;;
    nested) args=(--accel emulator --mmu nested) ;;
    xen-pvh) args=(--accel emulator --xen pvh) console=hvc0 ;;
    xen-pv) args=(--accel emulator --xen pv) console=hvc0 ;;
    kvm) args=(--accel kvm) ;;
    qemu-tcg)
        [ "$net" = 1 ] && netargs=(-netdev tap,id=n0,ifname=svm0,script=no,downscript=no -device virtio-net-pci,netdev=n0) || netargs=(-nic none)
        "${prefix[@]}" timeout 3600 qemu-system-x86_64 -M pc -accel tcg -m 512 -smp 1 -nographic -no-reboot \
            -kernel "$KERNEL" -initrd "$work/initrd.img" -append "console=ttyS0 $cmdline_tail" \
            -drive file="$work/disk.img",if=virtio,format=raw "${netargs[@]}" </dev/null >"$2" 2>&1
        return
        ;;
    esac
    local devices=(--disk "$work/disk.img")
    [ "$net" = 1 ] && devices+=(--net tap=svm0)
    [ -z "$(no_io "$1")" ] || devices=()
    "${prefix[@]}" timeout 3600 $sharpvisor run "${args[@]}" --counters "$3" --memory 512M --cpus 1 \
        --kernel "$KERNEL" --initrd "$work/initrd.img" --cmdline "console=$console $cmdline_tail" \
        "${devices[@]}" --no-rng --serial stdio </dev/null >"$2" 2>&1
}

for t in $only; do
    why=$(unavailable "$t")
    if [ -n "$why" ]; then
        reason[$t]=$why
        say "$t: not run: $why"
        continue
    fi
    say "$t: booting ($(date -u +%H:%M:%S), load $(cut -d' ' -f1 /proc/loadavg))"
    truncate -s 0 "$work/disk.img" && truncate -s "$((disk_mib + 16))M" "$work/disk.img"
    if [ "$net" = 1 ]; then
        ip netns exec "$ns" "$work/sink" sink 7000 >"$work/sink-$t.log" 2>&1 &
        sink_pid=$!
        until grep -q LISTENING "$work/sink-$t.log" 2>/dev/null; do sleep 0.05; done
    fi
    log="$work/$t.log" cnt="$work/$t.counters" cpu="$work/$t.cpu" marks=0 t0=$EPOCHREALTIME t_hook="" pid=""
    rm -f "$cnt" "$cpu"
    launch "$t" "$log" "$cnt" &
    vmm=$!
    while kill -0 "$vmm" 2>/dev/null; do
        [ -n "$t_hook" ] || ! grep -q '^HOOK-START' "$log" 2>/dev/null || t_hook=$EPOCHREALTIME
        n=$(grep -c '^MARK' "$log" 2>/dev/null || true)
        n=${n:-0}
        while [ "$marks" -lt "$n" ]; do
            marks=$((marks + 1))
            # The VMM's CPU time (user + system, clock ticks) at each mark: a workload's CPU cost,
            # far less disturbed by other load on the host than the guest's wall-clock figures.
            if [ -z "$pid" ]; then
                if [ "$t" = qemu-tcg ]; then
                    pid=$(pgrep -n -f "qemu-system-x86_64 .*$work/initrd.img" || true)
                else
                    pid=$(sed -n 's/^PID //p' "$cnt" 2>/dev/null)
                fi
            fi
            [ -z "$pid" ] || awk -v k="$((marks - 1))" '{ print k, $14 + $15 }' "/proc/$pid/stat" >>"$cpu" 2>/dev/null || true
            [ -f "$cnt" ] || continue
            # One snapshot per mark, in order: wait (up to 5 s) until this one is written, so two
            # signals never coalesce and snapshot k is the one taken at mark k.
            kill -USR2 "$(sed -n 's/^PID //p' "$cnt")" 2>/dev/null || true
            for _ in $(seq 50); do
                [ "$(grep -c '^COUNTERS' "$cnt")" -ge "$marks" ] && break
                sleep 0.1
            done
        done
        sleep 0.1
    done
    wait "$vmm" || true
    if [ -n "${sink_pid:-}" ]; then
        kill "$sink_pid" 2>/dev/null || true
        wait "$sink_pid" 2>/dev/null || true
        sink_pid=""
    fi
    tr -d '\r' <"$log" | grep -q '^BENCH-DONE' || say "$t: the hook did not finish: $(grep -v '^\s*$' "$log" | tail -3 | tr '\n' '|')"
    [ -n "$t_hook" ] && result[$t,boot]=$(awk -v a="$t0" -v b="$t_hook" 'BEGIN { printf "%.1f s", b - a }')
    while read -r _ name value unit _; do
        result[$t,$name]="$value $unit"
    done < <(tr -d '\r' <"$log" | grep -a '^RESULT' | grep -v '^RESULT tcp-guest-to-host')
    # The host's sink times the TCP stream (the guest's sender only knows when its writes ended).
    tcp=$(sed -n 's/^RESULT tcp-received \([0-9.]*\).*/\1/p' "$work/sink-$t.log" 2>/dev/null)
    [ -z "$tcp" ] || result[$t,tcp-guest-to-host]="$tcp MiB/s"
    say "$t: done in $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", b - a }') s"
done

# ---------------------------------------------------------------- report
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
echo
echo "bench/matrix, $(date -u '+%Y-%m-%d %H:%M UTC'), host CPU $cpu ($(nproc) CPUs), load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
echo "sizes: syscall $n_syscall, fork-exec $n_fork, pagefault $pf_rounds x $pf_mib MiB, ctxsw $n_ctxsw, compute $n_compute steps,"
echo "       disk $disk_mib MiB sequential and ${rand_s} s random (O_DIRECT), TCP $net_mib MiB; 1 vCPU, 512 MiB; lower is better but for MiB/s and IOPS"
echo
declare -A grid=(
    [shadow]="software|software (shadow)|paravirtual (virtio)"
    [nested]="software|hardware-assisted (nested, emulated)|paravirtual (virtio)"
    [xen-pvh]="software|software (shadow)|paravirtual (Xen blkfront/netfront)"
    [xen-pv]="paravirtual (PV kernel, hypercalls)|paravirtual (direct paging)|paravirtual (Xen blkfront/netfront)"
    [kvm]="hardware-assisted|hardware-assisted (EPT/NPT)|paravirtual (virtio)"
    [qemu-tcg]="software (TCG)|software (softmmu)|paravirtual (virtio)"
)
printf '%-10s %-36s %-38s %s\n' technique CPU memory I/O
for t in $only; do
    IFS='|' read -r c m i <<<"${grid[$t]}"
    printf '%-10s %-36s %-38s %s\n' "$t" "$c" "$m" "$i"
done
echo
printf '%-18s' workload
for t in $only; do printf ' %20s' "$t"; done
echo
for w in boot "${workloads[@]}"; do
    label=$w
    [ "$w" = boot ] && label="boot to hook"
    printf '%-18s' "$label"
    for t in $only; do
        if [ -n "${reason[$t]:-}" ]; then
            printf ' %20s' "not run"
        else
            printf ' %20s' "${result[$t,$w]:--}"
        fi
    done
    echo
done
for t in $only; do
    [ -z "${reason[$t]:-}" ] || echo "$t: not run: ${reason[$t]}"
    [ -n "${reason[$t]:-}" ] || [ -z "$(no_io "$t")" ] || echo "$t: no I/O workloads: $(no_io "$t")"
done

# Per operation, from the VMM's CPU time around each workload (includes the 1 s pause after it).
declare -A ops=([syscall]=$n_syscall [fork-exec]=$n_fork [pagefault]=$((pf_mib * 256 * pf_rounds)) [ctxsw]=$n_ctxsw
    [compute]=$n_compute [seq-write-1m]=$disk_mib [seq-read-1m]=$disk_mib [tcp-guest-to-host]=$net_mib)
declare -A op_unit=([syscall]=us/call [fork-exec]=ms/process [pagefault]=us/page [ctxsw]=us/round-trip
    [compute]=ns/step [seq-write-1m]=ms/MiB [seq-read-1m]=ms/MiB [tcp-guest-to-host]=ms/MiB)
declare -A op_scale=([syscall]=1e6 [fork-exec]=1e3 [pagefault]=1e6 [ctxsw]=1e6 [compute]=1e9
    [seq-write-1m]=1e3 [seq-read-1m]=1e3 [tcp-guest-to-host]=1e3)
tck=$(getconf CLK_TCK)
echo
echo "VMM CPU time (user + system) per operation, from the process's CPU time around each workload:"
printf '%-18s %-13s' workload unit
for t in $only; do printf ' %12s' "$t"; done
echo
for i in "${!workloads[@]}"; do
    w=${workloads[$i]}
    [ -n "${ops[$w]:-}" ] || continue
    printf '%-18s %-13s' "$w" "${op_unit[$w]}"
    for t in $only; do
        if [ "$i" -ge "$first_io" ] && [ -n "$(no_io "$t")" ]; then
            printf ' %12s' -
            continue
        fi
        v=$(awk -v a="$i" -v b="$((i + 1))" -v n="${ops[$w]}" -v s="${op_scale[$w]}" -v tck="$tck" '
            $1 == a { x = $2; ha = 1 } $1 == b { y = $2; hb = 1 }
            END { if (ha && hb && n > 0) printf "%.3g", (y - x) / tck / n * s; else print "-" }' "$work/$t.cpu" 2>/dev/null || echo -)
        printf ' %12s' "${v:--}"
    done
    echo
done

# The counters of each cell: the difference of the snapshots around the workload (it includes the
# 1 s pause before the next mark). exits = the VMM's exits (I/O ports, MMIO, HLT, interrupt windows...).
echo
echo "counters per workload (difference of the VMM's counters around it; k = 1e3, M = 1e6):"
for t in $only; do
    cnt="$work/$t.counters"
    [ -f "$cnt" ] || continue
    echo "$t:"
    for i in "${!workloads[@]}"; do
        if [ "$i" -ge "$first_io" ] && [ -n "$(no_io "$t")" ]; then
            continue
        fi
        awk -v a="$i" -v b="$((i + 1))" -v t="$t" -v w="${workloads[$i]}" -v ops="${ops[${workloads[$i]}]:-0}" '
            function h(v) { return v >= 1e6 ? sprintf("%.1fM", v / 1e6) : v >= 1e4 ? sprintf("%.0fk", v / 1e3) : sprintf("%d", v) }
            $1 == "COUNTERS" && ($2 == a || $2 == b) {
                for (f = 3; f <= NF; f++) { split($f, kv, "="); v[$2, kv[1]] = kv[2]; names[kv[1]] = 1 }
            }
            END {
                if (!((a, "instructions") in v) || !((b, "instructions") in v)) { printf "  %-18s (no snapshots)\n", w; exit }
                line = ""; exits = 0; nops = 0
                for (n in names) {
                    d = v[b, n] - v[a, n]
                    if (d <= 0) continue
                    if (n ~ /^xen-[A-Z]/) { op[n] = d; nops++ }
                    else if (n !~ /^(instructions|mmu-|tier1-|xen-)/) exits += d
                }
                line = sprintf("insn=%s", h(v[b, "instructions"] - v[a, "instructions"]))
                if (ops > 0) line = line sprintf(" (%s/op)", h((v[b, "instructions"] - v[a, "instructions"]) / ops))
                line = line " exits=" h(exits)
                split("mmu-shadow-misses mmu-shadow-invalidations mmu-nested-walks mmu-walks mmu-page-faults xen-hypercalls xen-upcalls xen-pv-pt-updates xen-pv-ptwr-emulated xen-pv-validated-l1 xen-pv-bounces xen-grant-copies", keys, " ")
                for (k = 1; k in keys; k++) {
                    n = keys[k]; d = v[b, n] - v[a, n]
                    if (d > 0) line = line " " substr(n, index(n, "-") + 1) "=" h(d)
                }
                # The three most frequent hypercall ops.
                for (r = 0; r < 3 && nops > 0; r++) {
                    best = ""; for (n in op) if (best == "" || op[n] > op[best]) best = n
                    if (best == "") break
                    line = line " " substr(best, 5) "=" h(op[best]); delete op[best]; nops--
                }
                printf "  %-18s %s\n", w, line
            }' "$cnt"
    done
done
echo "(logs in $work)"
