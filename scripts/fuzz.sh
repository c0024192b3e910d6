#!/usr/bin/env bash
# The long runs of the device fuzzers (./test.sh runs short ones): a million random virtqueue
# rings fed to virtio-blk, a million concurrent random register writes from two threads to
# every virtio device, and the Xen hostile guest: a million generated hypercalls, blkif rings,
# netif rings and xs_wire messages; and a PV domain's direct paging: a million random page-table
# updates, pins, base pointers and descriptor references with the type/count invariant checked
# after each (PvDirectPagingPropertyTests). SHARPVISOR_FUZZ_SEED=N picks another seed. Prints each
# fuzzer's summary. `scripts/fuzz.sh xen`, `scripts/fuzz.sh virtio` or `scripts/fuzz.sh pv` runs one group only.
set -euo pipefail
root="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)"
cd "$root"
group="${1:-all}"
case "$group" in
    all|virtio|xen|pv) ;;
    *) echo "usage: scripts/fuzz.sh [all|virtio|xen|pv]" >&2; exit 2 ;;
esac
if [ "$group" = all ] || [ "$group" = virtio ]; then
    dotnet build tests/SharpVisor.Devices.Tests -c Release -nologo -v quiet -clp:ErrorsOnly
    SHARPVISOR_FUZZ_FULL=1 nice dotnet test tests/SharpVisor.Devices.Tests -c Release --no-build -nologo \
        --filter "FullyQualifiedName~VirtqueueFuzzTests|FullyQualifiedName~RegisterFuzzTests" \
        --logger "console;verbosity=detailed"
fi
if [ "$group" = all ] || [ "$group" = xen ]; then
    dotnet build tests/SharpVisor.Xen.Tests -c Release -nologo -v quiet -clp:ErrorsOnly
    SHARPVISOR_FUZZ_FULL=1 nice dotnet test tests/SharpVisor.Xen.Tests -c Release --no-build -nologo \
        --filter "FullyQualifiedName~XenFuzzTests|FullyQualifiedName~XenBlockFuzzTests|FullyQualifiedName~XenNetFuzzTests|FullyQualifiedName~XenStoreFuzzTests" \
        --logger "console;verbosity=detailed"
fi
if [ "$group" = all ] || [ "$group" = pv ]; then
    dotnet build tests/SharpVisor.Xen.Tests -c Release -nologo -v quiet -clp:ErrorsOnly
    SHARPVISOR_FUZZ_FULL=1 nice dotnet test tests/SharpVisor.Xen.Tests -c Release --no-build -nologo \
        --filter "FullyQualifiedName~PvDirectPagingPropertyTests" \
        --logger "console;verbosity=detailed"
fi
