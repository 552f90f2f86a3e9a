#!/usr/bin/env bash
# Run the whole test suite on both codec paths: the C backend, then the pure-Python one.
# Extra arguments go to pytest (e.g. scripts/test.sh -x -k t38).
set -uo pipefail
cd "$(dirname "$0")/.."
status=0
for impl in c python; do
    echo "=== XMFAX_IMPL=$impl"
    XMFAX_IMPL=$impl python3 -m pytest -q -rs -p no:cacheprovider "$@" || status=$?
done
exit $status
