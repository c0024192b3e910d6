#!/usr/bin/env bash
# Runs every SharpVisor test. Installs what the tests need first (Debian packages, the test
# kernels, the default guest), all idempotently, then builds once and runs each test project.
# Ends with one line: "tests: N passed, N failed, N skipped".
set -euo pipefail
root="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)"
cd "$root"

log() { printf '[test] %s\n' "$*" >&2; }

scripts/setup.sh
[ -x scripts/build-test-kernels.sh ] && scripts/build-test-kernels.sh >/dev/null
[ -x scripts/build-guest.sh ] && scripts/build-guest.sh >/dev/null

log "building the solution"
dotnet build SharpVisor.sln -c Release -nologo -v quiet -clp:ErrorsOnly

results="$root/out/test-results"
rm -rf "$results"
mkdir -p "$results"
log "running tests"
status=0
dotnet test SharpVisor.sln -c Release --no-build -nologo \
    --logger "console;verbosity=normal" --results-directory "$results" 2>&1 | tee "$results/console.log" || status=$?

# Skipped tests say why; repeat them here so a skip is never silent.
if grep -q '^\s*Skipped ' "$results/console.log"; then
    echo
    echo "==== SKIPPED TESTS ===="
    grep -A2 '^\s*Skipped ' "$results/console.log" || true
fi

# One summary line over all test assemblies.
awk '
    /^(Passed|Failed)!/ {
        for (i = 1; i <= NF; i++) {
            gsub(",", "", $(i + 1))
            if ($i == "Failed:") failed += $(i + 1)
            if ($i == "Passed:") passed += $(i + 1)
            if ($i == "Skipped:") skipped += $(i + 1)
        }
        assemblies++
    }
    END {
        printf "\n%d test assemblies\n", assemblies
        printf "tests: %d passed, %d failed, %d skipped\n", passed, failed, skipped
    }' "$results/console.log"
exit "$status"
