#!/usr/bin/env bash
# Run the whole test suite on both codec paths: the C backend, then the pure-Python one.
# The real-time modem calls (marker "modem": the iaxmodem rig, ~25 s a page) do not
# depend on the codec path and run in the C pass only. Extra arguments go to pytest
# (e.g. scripts/test.sh -x -k t38).
set -uo pipefail
cd "$(dirname "$0")/.."
status=0
echo "=== XMFAX_IMPL=c"
XMFAX_IMPL=c python3 -m pytest -q -rs -p no:cacheprovider --durations=10 "$@" || status=$?
echo "=== XMFAX_IMPL=python (real-time modem calls already ran in the C pass)"
XMFAX_IMPL=python python3 -m pytest -q -rs -p no:cacheprovider --durations=10 -m "not modem" "$@" || status=$?
exit $status
