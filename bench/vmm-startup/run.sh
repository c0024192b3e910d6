#!/usr/bin/env bash
# Startup time and memory of an idle per-domain VMM: starts `sharpvisor vmm --api-sock S`,
# times until its Firecracker API answers GET / (the moment a client can configure it), and
# reads its resident memory then, before any guest runs. Repeats N times (default 10) and
# prints each run and the median. Usage: bench/vmm-startup/run.sh [N] [DIR-WITH-sharpvisor.dll]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
runs="${1:-10}"
out="${2:-$root/out/cli}"
if [ ! -f "$out/sharpvisor.dll" ]; then
    dotnet build "$root/src/SharpVisor.Cli/SharpVisor.Cli.csproj" -c Release -o "$out" -nologo -v quiet -clp:ErrorsOnly >&2
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
times=()
rss=()
for i in $(seq "$runs"); do
    sock="$work/api-$i.sock"
    start=$(date +%s%N)
    dotnet "$out/sharpvisor.dll" vmm --api-sock "$sock" >/dev/null 2>&1 &
    pid=$!
    until curl -s --unix-socket "$sock" http://localhost/ >/dev/null 2>&1; do sleep 0.005; done
    end=$(date +%s%N)
    kb=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status")
    kill "$pid"; wait "$pid" 2>/dev/null || true
    ms=$(( (end - start) / 1000000 ))
    times+=("$ms"); rss+=("$kb")
    printf 'run %2d: ready in %4d ms, RSS %6d KiB\n' "$i" "$ms" "$kb"
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "median: ready in $(median "${times[@]}") ms, RSS $(( $(median "${rss[@]}") / 1024 )) MiB (idle VMM, API answering, no guest)"
