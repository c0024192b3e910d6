#!/usr/bin/env bash
# Snapshot benchmark (issue 15): save and restore time of an emulated domain through the
# toolstack, per GiB of guest RAM. The guest is the Multiboot test kernel printing ticks (its RAM
# is nearly all zero pages, which the memory file leaves as holes), so this measures the fixed
# cost plus the zero-page scan and the page digests; a guest with more touched RAM writes more.
# Uses its own daemon and runtime directory (nothing shared with other domains).
#
# Usage: bench/snapshot/run.sh [MEMORY_MIB (1024)] [RUNS (3)]
set -euo pipefail

memory=${1:-1024}
runs=${2:-3}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
work=$(mktemp -d /tmp/sharpvisor-bench-snapshot.XXXXXX)
export SHARPVISOR_RUNTIME_DIR=$work/run
kernel=$("$root/scripts/build-test-kernels.sh" | grep multiboot-hello.elf | head -1)
sv() { "$root/sharpvisor" "$@"; }
ms() { date +%s%3N; }

cat > "$work/hello.json" <<JSON
{"boot-source": {"kernel_image_path": "$kernel", "boot_args": "loop=200000"},
 "machine-config": {"vcpu_count": 1, "mem_size_mib": $memory}}
JSON

trap 'kill $(cat "$work/run/sharpvisord.pid" 2>/dev/null) 2>/dev/null || true' EXIT
printf 'run\tMiB\tsnapshot_ms\tsave_ms\trestore_ms\tstate_bytes\tmem_data_bytes\n'
for i in $(seq 1 "$runs"); do
	sv create --accel emulator --name "b$i" "$work/hello.json" >/dev/null
	sleep 2
	t0=$(ms); sv snapshot "b$i" "$work/s$i.state" >/dev/null; t1=$(ms)
	sv save "b$i" "$work/b$i.state" >/dev/null; t2=$(ms)
	sv restore "$work/b$i.state" --name "r$i" >/dev/null; t3=$(ms)
	sv destroy "r$i" >/dev/null
	data=$(du -B1 "$work/b$i.state.mem" | cut -f1)
	printf '%d\t%d\t%d\t%d\t%d\t%d\t%d\n' "$i" "$memory" $((t1 - t0)) $((t2 - t1)) $((t3 - t2)) "$(stat -c %s "$work/b$i.state")" "$data"
done
echo "(times include the CLI's start-up, ~0.3 s; restore includes starting the VMM process; files in $work)" >&2
