#!/usr/bin/env bash
# Fails when a tracked file names something outside the repository that a developer may have
# beside it but a fresh clone does not: ../shared, a shared/ directory, /work/... paths.
# Everything a test, script or build needs must be in the repo (copied with its licence note).
# Usage: scripts/check-standalone.sh [TREE-ISH]   (default: the work tree's tracked files)
set -euo pipefail
cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.."

# ../shared (any depth), a shared/ path not inside a repo directory, "shared" as a path segment
# in code (Path.Combine(dir, "shared", ...)), and absolute paths into the developers' /work.
pattern='(\.\./)+shared\b|(^|[^A-Za-z0-9_./-])shared/|"shared"|/work/(shared|main|wt)\b'
self='scripts/check-standalone.sh'

if [ "$#" -gt 0 ]; then
    hits=$(git grep -n -I -E "$pattern" "$1" -- ":!$self" || true)
else
    hits=$(git grep -n -I -E "$pattern" -- ":!$self" || true)
fi

if [ -n "$hits" ]; then
    echo "check-standalone: tracked files name paths outside the repository (a clone has no ../shared):" >&2
    echo "$hits" >&2
    exit 1
fi
echo "check-standalone: no tracked file names ../shared or another path outside the repo"
