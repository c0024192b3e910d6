#!/usr/bin/env bash
# Exit-latency benchmark: N port-I/O exits (guest "out" in a loop) handled by SharpVisor's
# KVM run loop versus a minimal C program calling the KVM API directly, with the same guest
# bytes and VM setup. Runs them alternately ROUNDS times and reports, for each, the median
# wall-clock ns/exit and the median CPU ns/exit of the vCPU thread (steadier when the host is
# busy), and the ratios SharpVisor/C.
#
# Usage: bench/exit-latency/run.sh [EXITS (200000)] [ROUNDS (5)]
set -euo pipefail

EXITS=${1:-200000}
ROUNDS=${2:-5}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUT=${TMPDIR:-/tmp}/sharpvisor-bench-exit-latency
mkdir -p "$OUT"

[ -e /dev/kvm ] || { echo "exit-latency: /dev/kvm not found; this benchmark needs KVM" >&2; exit 1; }

echo "building (dotnet -c Release, gcc -O2)..." >&2
dotnet build -c Release -v quiet -nologo "$HERE/SharpVisor.Bench.ExitLatency.csproj" -o "$OUT/bin" >&2
gcc -O2 -Wall -Wextra -o "$OUT/kvm-exit" "$HERE/kvm-exit.c"
dotnet "$OUT/bin/SharpVisor.Bench.ExitLatency.dll" --write-guest "$OUT/guest.bin"
echo "guest bytes:$(od -An -tx1 -v "$OUT/guest.bin" | tr -s ' \n' ' ')" >&2

field() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p"; }
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

c_wall=() c_cpu=() sv_wall=() sv_cpu=()
for round in $(seq 1 "$ROUNDS"); do
	c=$("$OUT/kvm-exit" "$OUT/guest.bin" "$EXITS")
	sv=$(dotnet "$OUT/bin/SharpVisor.Bench.ExitLatency.dll" --guest "$OUT/guest.bin" --exits "$EXITS")
	echo "round $round: $c | $sv" >&2
	c_wall+=("$(field ns_per_exit <<<"$c")")
	c_cpu+=("$(field cpu_ns_per_exit <<<"$c")")
	sv_wall+=("$(field ns_per_exit <<<"$sv")")
	sv_cpu+=("$(field cpu_ns_per_exit <<<"$sv")")
done

cw=$(printf '%s\n' "${c_wall[@]}" | median)
cc=$(printf '%s\n' "${c_cpu[@]}" | median)
sw=$(printf '%s\n' "${sv_wall[@]}" | median)
sc=$(printf '%s\n' "${sv_cpu[@]}" | median)
echo "exits per run: $EXITS, $ROUNDS rounds, medians; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-22s %12s %12s\n' "" "wall ns/exit" "CPU ns/exit"
printf '%-22s %12s %12s\n' "C (KVM API directly)" "$cw" "$cc"
printf '%-22s %12s %12s\n' "SharpVisor" "$sw" "$sc"
awk -v sw="$sw" -v cw="$cw" -v sc="$sc" -v cc="$cc" 'BEGIN { printf "%-22s %12.3f %12.3f\n", "ratio SharpVisor/C", sw / cw, sc / cc }'
