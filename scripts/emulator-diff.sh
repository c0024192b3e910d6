#!/usr/bin/env bash
# The emulator's differential suite at full size: generated instruction sequences run on the
# host CPU (tests/native/difftest.c) and in SharpVisor's emulator, compared register by
# register, flag by flag (minus the flags the SDM leaves undefined) and byte by byte.
#
#   scripts/emulator-diff.sh [--cases N] [--seed S] [--family NAME] [--tier interpreter|auto|always|native]
#
# --cases N     total cases, spread evenly over the families (default 1000000)
# --seed S      run seed, hex (default 5eed0001, the seed ./test.sh uses at reduced size)
# --family NAME only this family (alu, x87, xsave, bytes, ...; see DiffGenerator.Families.cs)
# --tier T      the emulator's execution tier (SHARPVISOR_TIER): always = every block translated
#               by tier 1 before it runs; native = every block encoded to x86-64 code at its
#               first run (SHARPVISOR_NATIVE_THRESHOLD=1 unless set); default: the interpreter
#               (docs/emulator.md, "Tiers")
#
# Prints a progress line every 10000 cases and a summary per family; a mismatch prints a
# one-line reproducer (SHARPVISOR_DIFFTEST_REPRO=family:seed:index, re-run with
# `dotnet test tests/SharpVisor.Emulator.Tests --filter ReproduceOneCase`). Exit status 0 only
# when every case agrees.
set -euo pipefail
root="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)"
cd "$root"

cases=1000000
seed=5eed0001
family=""
while [ $# -gt 0 ]; do
    case "$1" in
        --cases) cases="$2"; shift 2 ;;
        --seed) seed="${2#0x}"; shift 2 ;;
        --family) family="$2"; shift 2 ;;
        --tier)
            export SHARPVISOR_TIER="$2"
            if [ "$2" = native ]; then
                export SHARPVISOR_NATIVE_THRESHOLD="${SHARPVISOR_NATIVE_THRESHOLD:-1}"
            fi
            shift 2 ;;
        -h|--help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "emulator-diff: unknown argument $1 (try --help)" >&2; exit 2 ;;
    esac
done
[[ "$cases" =~ ^[0-9]+$ ]] || { echo "emulator-diff: --cases needs a number" >&2; exit 2; }
[[ "$seed" =~ ^[0-9a-fA-F]+$ ]] || { echo "emulator-diff: --seed needs a hex number" >&2; exit 2; }

echo "building the emulator tests (Release)"
if ! build_log=$(dotnet build tests/SharpVisor.Emulator.Tests -c Release -nologo -v quiet 2>&1); then
    echo "$build_log" >&2
    exit 1
fi

progress="$(mktemp -t sharpvisor-diff.XXXXXX)"
trap 'rm -f "$progress" "$progress.log"' EXIT
echo "running $cases cases (seed 0x$seed, ${family:-all families}, tier ${SHARPVISOR_TIER:-interpreter})"
start=$(date +%s)
status=0
if [ -n "$family" ]; then
    export SHARPVISOR_DIFFTEST_FAMILY="$family"
fi
SHARPVISOR_DIFFTEST_CASES=$cases SHARPVISOR_DIFFTEST_SEED=$seed SHARPVISOR_DIFFTEST_PROGRESS="$progress" \
    dotnet test tests/SharpVisor.Emulator.Tests -c Release --no-build -nologo \
    --filter "FullyQualifiedName~DifferentialTests.EmulatorMatchesHostCpu" \
    >"$progress.log" 2>&1 &
runner=$!
tail -n +1 -f "$progress" --pid "$runner" | sed -u 's/^progress /  /; s/^summary /= /; s/^mismatch /  MISMATCH /'
wait "$runner" || status=$?
elapsed=$(( $(date +%s) - start ))

read -r ran mismatches < <(awk '/^summary / { c += $3; m += $5 } END { print c + 0, m + 0 }' "$progress")
echo
echo "differential: $ran cases, $mismatches mismatches, ${elapsed} s wall"
if [ "$status" -ne 0 ] || [ "$mismatches" -ne 0 ] || [ "$ran" -eq 0 ]; then
    tail -n 40 "$progress.log"
    exit 1
fi
