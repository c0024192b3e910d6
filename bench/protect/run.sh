#!/usr/bin/env bash
# Kernel protection benchmark (issue 14): the default guest on the emulator without and with
# --protect kernel,cr-pin,msr-pin, alternating, RUNS times each. Per boot: the time from process
# start to the guest's INIT-START line, and inside the guest (its /proc/uptime, 10 ms steps) a
# syscall-heavy workload (dd, 1-byte blocks: two syscalls a block) and a fork-heavy one (fork +
# exec of /bin/true), and the CPU time the VMM process used for the whole boot (user + system:
# much less sensitive than the wall-clock times to other load on the host). Prints each run, the
# medians, the ratios on/off, and what one measurement pass costs (ms per MiB hashed, from the
# VMM's exit summary).
#
# Usage: bench/protect/run.sh [RUNS (3)]
#   PROTECT_MMU (shadow|nested, default shadow), BOOT_TIMEOUT (seconds, default 1200).
# Run it on an otherwise idle machine: the ratio compares two boots, so load between them shows.
set -euo pipefail

runs=${1:-3}
mmu=${PROTECT_MMU:-shadow}
timeout_s=${BOOT_TIMEOUT:-1200}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cmdline="console=ttyS0 reboot=k panic=-1 no_timer_check autopoweroff"
work=$(mktemp -d /tmp/sharpvisor-bench-protect.XXXXXX)

say() { printf 'bench/protect: %s\n' "$*" >&2; }

eval "$("$root/scripts/build-guest.sh")" # sets KERNEL and INITRD
"$root/sharpvisor" --help >/dev/null      # build once, outside the timed runs

cat >"$work/hook.sh" <<'HOOK'
t0=$(cut -d' ' -f1 /proc/uptime)
dd if=/dev/zero of=/dev/null bs=1 count=100000 2>/dev/null
t1=$(cut -d' ' -f1 /proc/uptime)
i=0
while [ $i -lt 200 ]; do /bin/true; i=$((i + 1)); done
t2=$(cut -d' ' -f1 /proc/uptime)
echo "BENCH-SYSCALL $(awk -v a=$t0 -v b=$t1 'BEGIN { printf "%.2f", b - a }')"
echo "BENCH-FORK $(awk -v a=$t1 -v b=$t2 'BEGIN { printf "%.2f", b - a }')"
HOOK
(cd "$work" && echo hook.sh | cpio -o -H newc >hook.cpio 2>/dev/null)

seconds() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
median() { sort -n | awk 'NF { v[++n] = $1 } END { if (n == 0) print "n/a"; else print (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "n/a" || b == "n/a" || b == 0) print "n/a"; else printf "%.3f", a / b }'; }

# boot LOG [ARGS...]: one boot; prints "init syscall fork cpu"
boot() {
	local log=$1 t0 t_init="" line
	shift
	t0=$EPOCHREALTIME
	while IFS= read -r line; do
		line=${line%$'\r'}
		printf '%s\n' "$line" >>"$log"
		case "$line" in *INIT-START) [ -n "$t_init" ] || t_init=$EPOCHREALTIME ;; esac
	done < <(timeout "$timeout_s" /usr/bin/time -f "%U %S" -o "$log.cpu" dotnet "$root/out/cli/sharpvisor.dll" run --accel emulator --mmu "$mmu" \
		--kernel "$KERNEL" --initrd "$INITRD" --extra-initrd "$work/hook.cpio" --cmdline "$cmdline" \
		--timeout "$timeout_s" "$@" </dev/null 2>>"$log.err")
	printf '%s %s %s %s\n' "$([ -n "$t_init" ] && seconds "$t0" "$t_init" || echo n/a)" \
		"$(sed -n 's/^BENCH-SYSCALL //p' "$log" | tail -n 1)" "$(sed -n 's/^BENCH-FORK //p' "$log" | tail -n 1)" \
		"$(awk 'NF == 2 && $1 ~ /^[0-9.]+$/ { printf "%.2f", $1 + $2 }' "$log.cpu" 2>/dev/null || echo n/a)"
}

say "$runs runs each, --mmu $mmu, logs in $work"
for i in $(seq "$runs"); do
	off=$(boot "$work/off-$i.log")
	on=$(boot "$work/on-$i.log" --protect kernel,cr-pin,msr-pin)
	echo "run $i off: init ${off%% *} s, syscall/fork $(echo "$off" | cut -d' ' -f2-3) s, cpu $(echo "$off" | cut -d' ' -f4) s; on: init ${on%% *} s, syscall/fork $(echo "$on" | cut -d' ' -f2-3) s, cpu $(echo "$on" | cut -d' ' -f4) s"
	echo "$off" >>"$work/off.results"
	echo "$on" >>"$work/on.results"
done

echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
for column in 1 2 3 4; do
	name=$(echo "init syscall fork cpu" | cut -d' ' -f$column)
	a=$(cut -d' ' -f$column "$work/off.results" | median)
	b=$(cut -d' ' -f$column "$work/on.results" | median)
	echo "median $name: off $a s, on $b s, on/off $(ratio "$b" "$a")"
done
grep -h "a measurement hashes" "$work"/on-*.log.err | tail -n 1 | sed 's/^\[sharpvisor\] protection: /measurement: /' || echo "measurement: no summary line"
