#!/usr/bin/env bash
# Publishes the NativeAOT Firecracker front end (src/SharpVisor.Firecracker) to out/firecracker,
# only when its inputs changed since the last publish: ILC takes minutes of CPU. The front end
# execs the JIT VMM at InstanceStart (out/cli/sharpvisor, built by ./sharpvisor; docs/firecracker.md,
# "Start-up"). Prints the binary's path. Used by ./sharpvisor and ./test.sh.
set -euo pipefail
root="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)"
out="$root/out"
publish="$out/firecracker-aot"
stamp="$publish/.publish-stamp"
mkdir -p "$publish"

log() { printf '[build-firecracker] %s\n' "$*" >&2; }

"$root/scripts/setup.sh" --quiet

# The front end compiles Host.Vmm and what it references: any source, project or props file under
# src/ (and this script) is an input; bin/ and obj/ are outputs (builds regenerate .cs files there).
if [ -x "$out/firecracker" ] && [ -f "$stamp" ] && [ -z "$(find "$root/src" "$root/Directory.Build.props" "$root/Directory.Packages.props" "$root/scripts/build-firecracker.sh" \
        \( -name bin -o -name obj \) -prune -o -newer "$stamp" \( -name '*.cs' -o -name '*.csproj' -o -name '*.props' -o -name '*.sh' \) -print -quit 2>/dev/null)" ]; then
    echo "$out/firecracker"
    exit 0
fi

log "publishing the NativeAOT front end (minutes of CPU; skipped next time while src/ is unchanged)..."
touch "$stamp.new"
if ! nice dotnet publish "$root/src/SharpVisor.Firecracker/SharpVisor.Firecracker.csproj" -c Release -r linux-x64 \
        -o "$publish" -nologo -v quiet -clp:ErrorsOnly >"$out/build-firecracker.log" 2>&1; then
    cat "$out/build-firecracker.log" >&2
    log "publish failed (log: out/build-firecracker.log)"
    rm -f "$stamp.new"
    exit 125
fi
cp "$publish/firecracker" "$out/firecracker.tmp"
mv "$out/firecracker.tmp" "$out/firecracker"
mv "$stamp.new" "$stamp"
echo "$out/firecracker"
