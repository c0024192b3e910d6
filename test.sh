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
[ -x scripts/build-test-module.sh ] && scripts/build-test-module.sh >/dev/null

log "building the solution"
dotnet build SharpVisor.sln -c Release -nologo -v quiet -clp:ErrorsOnly
# out/firecracker, the NativeAOT front end the Firecracker tests start (skipped when src/ is unchanged).
scripts/build-firecracker.sh >/dev/null

results="$root/out/test-results"
rm -rf "$results"
mkdir -p "$results"
# The embedding API's NuGet package (docs/embedding.md), from the build above.
dotnet pack src/SharpVisor/SharpVisor.csproj -c Release --no-build -nologo -v quiet -o "$root/out/packages" >/dev/null

log "running tests"
# As ./sharpvisor runs VMMs (VmmRuntimeEnvironment): tests that boot guests in the test host run faster.
export DOTNET_TC_CallCountingDelayMs="${DOTNET_TC_CallCountingDelayMs:-0}"
# And without the PGO instrumentation tier, as the sharpvisor command's runtimeconfig has it (less JIT CPU per boot).
export DOTNET_TieredPGO="${DOTNET_TieredPGO:-0}"
status=0
dotnet test SharpVisor.sln -c Release --no-build -nologo \
    --logger "console;verbosity=normal" --logger trx --results-directory "$results" 2>&1 | tee "$results/console.log" || status=$?

# Skipped tests say why; repeat them here so a skip is never silent.
if grep -q '^\s*Skipped ' "$results/console.log"; then
    echo
    echo "==== SKIPPED TESTS ===="
    grep -A2 '^\s*Skipped ' "$results/console.log" || true
fi

# Failed tests with their messages, last, so that the tail of a CI log names them.
if grep -q '^\s*Failed ' "$results/console.log"; then
    echo
    echo "==== FAILED TESTS ===="
    grep -A25 '^\s*Failed ' "$results/console.log" | cut -c1-400 || true
fi

# One summary line over all test assemblies, from the TRX files' counters.
counter() { grep -ho "$1=\"[0-9]*\"" "$results"/*.trx | grep -o '[0-9]*' | awk '{ s += $1 } END { print s + 0 }'; }
assemblies=$(ls "$results"/*.trx 2>/dev/null | wc -l)
passed=$(counter passed)
failed=$(( $(counter failed) + $(counter error) + $(counter timeout) + $(counter aborted) ))
# xUnit reports a skipped test as not executed without counting it under notExecuted: total - executed.
skipped=$(( $(counter total) - $(counter executed) ))
echo
echo "$assemblies test assemblies"
echo "tests: $passed passed, $failed failed, $skipped skipped"
if [ "$failed" -gt 0 ] && [ "$status" -eq 0 ]; then
    status=1
fi
exit "$status"
