#!/usr/bin/env bash
# Live-migration benchmark (issue 15, docs/migration.md): downtime and total time of
# `sharpvisor migrate` between two daemons on this machine (loopback TCP, separate runtime
# directories), for an emulated domain that dirties memory at a given rate; then `save` and
# `restore` of the migrated domain at the destination (wall time per command).
#
#   idle           the Multiboot test kernel printing a tick a second (RAM nearly all zero pages)
#   RATE (MiB/s)   the default Linux guest whose /hook.sh rewrites a RATE MiB buffer of random
#                  bytes (in its RAM-backed root) once a second, so RATE MiB/s of pages are dirtied
#
# Usage: bench/migrate/run.sh [MEMORY_MIB (512)] [DOWNTIME_MS (300)] [idle|RATE]...  (default: idle 10 100)
set -euo pipefail

memory=${1:-512}
downtime=${2:-300}
shift 2 2>/dev/null || shift $#
loads=("$@")
[ ${#loads[@]} -gt 0 ] || loads=(idle 10 100)
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
work=$(mktemp -d /tmp/sharpvisor-bench-migrate.XXXXXX)
port=$((20000 + RANDOM % 20000))
cli=("$root/sharpvisor")
ms() { date +%s%3N; }
src() { SHARPVISOR_RUNTIME_DIR=$work/src "${cli[@]}" "$@"; }
dst() { SHARPVISOR_RUNTIME_DIR=$work/dst "${cli[@]}" "$@"; }

"${cli[@]}" --help >/dev/null   # builds out/cli when sources changed
mkdir -p "$work/src" "$work/dst"
SHARPVISOR_RUNTIME_DIR=$work/src "${cli[@]}" daemon --no-cgroups >"$work/src.log" 2>&1 &
SHARPVISOR_RUNTIME_DIR=$work/dst "${cli[@]}" daemon --no-cgroups --migrate-listen "127.0.0.1:$port" >"$work/dst.log" 2>&1 &
trap 'kill $(cat "$work/src/sharpvisord.pid" "$work/dst/sharpvisord.pid" 2>/dev/null) 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -S "$work/src/sharpvisord.sock" ] && [ -S "$work/dst/sharpvisord.sock" ] && break; sleep 0.2; done

wait_for() { # DOMAIN TEXT SECONDS
	for _ in $(seq "$3"); do src console "$1" --history 2>/dev/null | grep -q "$2" && return 0; sleep 1; done
	echo "$1 never printed '$2'" >&2; return 1
}

printf 'load\tMiB\tdowntime_target_ms\trounds\tMiB_sent\ttotal_ms\tdowntime_ms\tcli_wall_ms\tsave_ms\tsaved_MiB\trestore_ms\n'
for load in "${loads[@]}"; do
	name="m-$load"
	if [ "$load" = idle ]; then
		kernel=$("$root/scripts/build-test-kernels.sh" | grep multiboot-hello.elf | head -1)
		boot="{\"kernel_image_path\": \"$kernel\", \"boot_args\": \"loop=200000\"}"
		ready="tick 2"
	else
		guest=$("$root/scripts/build-guest.sh")
		kernel=$(sed -n 's/^KERNEL=//p' <<<"$guest"); initrd=$(sed -n 's/^INITRD=//p' <<<"$guest")
		mkdir -p "$work/h-$load"
		cat > "$work/h-$load/hook.sh" <<HOOK
dd if=/dev/urandom of=/dirty-src bs=1M count=$load 2>/dev/null
cp /dirty-src /dirty
echo WRITER-READY
while true; do dd if=/dirty-src of=/dirty bs=1M conv=notrunc 2>/dev/null; sleep 1; done
HOOK
		(cd "$work/h-$load" && echo hook.sh | cpio -o -H newc -R 0:0 2>/dev/null | gzip -n) > "$work/hook-$load.cpio.gz"
		cat "$initrd" "$work/hook-$load.cpio.gz" > "$work/initrd-$load.img"
		boot="{\"kernel_image_path\": \"$kernel\", \"initrd_path\": \"$work/initrd-$load.img\", \"boot_args\": \"console=ttyS0 reboot=k panic=-1 no_timer_check\"}"
		ready="WRITER-READY"
	fi
	cat > "$work/$name.json" <<JSON
{"boot-source": $boot, "machine-config": {"vcpu_count": 1, "mem_size_mib": $memory}}
JSON
	src create --accel emulator --name "$name" "$work/$name.json" >/dev/null
	wait_for "$name" "$ready" 900
	sleep 3
	t0=$(ms)
	src migrate "$name" "127.0.0.1:$port" --downtime-ms "$downtime" > "$work/$name.out"
	t1=$(ms)
	line=$(grep '^migrated:' "$work/$name.out")
	rounds=$(sed -E 's/.* ([0-9]+) rounds.*/\1/' <<<"$line")
	sent=$(sed -E 's/.*pages, ([0-9.]+) MiB.*/\1/' <<<"$line")
	total=$(sed -E 's/.* in ([0-9]+) ms.*/\1/' <<<"$line")
	down=$(sed -E 's/.*downtime ([0-9]+) ms.*/\1/' <<<"$line")
	# Save and restore of the migrated domain at the destination (wall time of the CLI: it
	# includes starting the command and, for restore, a new VMM process).
	t2=$(ms)
	dst save "$name" "$work/$name.state" >/dev/null
	t3=$(ms)
	saved=$(du -m "$work/$name.state.mem" | cut -f1)
	dst restore "$work/$name.state" --name "$name" >/dev/null
	t4=$(ms)
	printf '%s\t%d\t%d\t%s\t%s\t%s\t%s\t%d\t%d\t%s\t%d\n' "$load" "$memory" "$downtime" "$rounds" "$sent" "$total" "$down" $((t1 - t0)) $((t3 - t2)) "$saved" $((t4 - t3))
	dst destroy "$name" >/dev/null || echo "($name: not on the destination any more)" >&2
	rm -f "$work/$name.state" "$work/$name.state.mem"
done
echo "(progress of each migration in $work/*.out; downtime = source paused until the destination was ready; saved_MiB = the memory file's data, not its length)" >&2
