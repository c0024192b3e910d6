#!/usr/bin/env bash
# The long runs of the device fuzzers (./test.sh runs short ones): a million random virtqueue
# rings fed to virtio-blk, and a million concurrent random register writes from two threads to
# every virtio device. SHARPVISOR_FUZZ_SEED=N picks another seed. Prints each fuzzer's summary.
set -euo pipefail
root="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)"
cd "$root"
dotnet build tests/SharpVisor.Devices.Tests -c Release -nologo -v quiet -clp:ErrorsOnly
SHARPVISOR_FUZZ_FULL=1 nice dotnet test tests/SharpVisor.Devices.Tests -c Release --no-build -nologo \
    --filter "FullyQualifiedName~VirtqueueFuzzTests|FullyQualifiedName~RegisterFuzzTests" \
    --logger "console;verbosity=detailed"
