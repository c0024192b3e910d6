#!/usr/bin/env bash
# Reference boot of the default guest under QEMU TCG (Debian's qemu-system-x86),
# independent of SharpVisor: proves the kernel+initrd themselves work and gives
# baseline timings. Usage: scripts/guest/qemu-smoke.sh [RUNS]   (default 1)
# Prints "run N: init_start=S ready=S exit=S" (seconds since launch) per run.
set -euo pipefail
runs=${1:-1}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

if ! command -v qemu-system-x86_64 >/dev/null; then
	echo "qemu-smoke: installing qemu-system-x86" >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends qemu-system-x86 >/dev/null ||
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends qemu-system-x86 >/dev/null; }
fi

eval "$("$here/../build-guest.sh")" # sets KERNEL and INITRD
disk=$(mktemp /tmp/sharpvisor-smoke.XXXXXX.img)
logdir=$(mktemp -d /tmp/sharpvisor-smoke.XXXXXX)
trap 'rm -f "$disk"' EXIT
truncate -s 64M "$disk"

# shellcheck disable=SC2054 # commas are QEMU option syntax
netdev=(-netdev user,id=n0 -device virtio-net-pci,netdev=n0)
qemu-system-x86_64 -netdev help 2>/dev/null | grep -qx user || netdev=(-nic none)

rel() { # seconds from launch ($t0) to $1
	if [ -n "$1" ]; then awk -v a="$t0" -v b="$1" 'BEGIN{printf "%.2f", b-a}'; else echo missing; fi
}

fail=0
for ((i = 1; i <= runs; i++)); do
	t0=$EPOCHREALTIME
	t_init="" t_ready=""
	log="$logdir/run$i.log"
	: >"$log"
	while IFS= read -r line; do
		line=${line%$'\r'}
		printf '%s\n' "$line" >>"$log"
		case "$line" in
		*INIT-START) t_init=$EPOCHREALTIME ;;
		*GUEST-READY) t_ready=$EPOCHREALTIME ;;
		esac
	done < <(timeout 300 qemu-system-x86_64 -M pc -accel tcg -m 512 -nographic -no-reboot \
		-kernel "$KERNEL" -initrd "$INITRD" -append "console=ttyS0 autopoweroff panic=-1" \
		-device virtio-rng-pci -device virtio-balloon-pci \
		-drive "file=$disk,if=virtio,format=raw" "${netdev[@]}" -device virtio-serial-pci </dev/null 2>&1)
	t_end=$EPOCHREALTIME
	echo "run $i: init_start=$(rel "$t_init") ready=$(rel "$t_ready") exit=$(rel "$t_end") log=$log"
	if [ -z "$t_init" ] || [ -z "$t_ready" ]; then fail=1; fi
	grep -q '^SELF-CHECK-END' "$log" || fail=1
	grep -q 'reboot: Power down' "$log" || fail=1 # clean poweroff, not a timeout
	if grep -q 'driver=none' "$log"; then fail=1; fi
done
[ "$fail" = 0 ] || { echo "qemu-smoke: FAILED, see $logdir" >&2; exit 1; }
