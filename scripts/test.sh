#!/usr/bin/env bash
# Run the whole test suite on both codec paths: the C backend, then the pure-Python one.
#
# The real-time calls through the iaxmodem rig (marker "modem", ~25 s a page) do not
# depend on the codec path: they run once, on the C path, in the background while the
# two passes run, and their report is printed at the end. Extra arguments go to
# pytest (e.g. scripts/test.sh -x -k t38).
set -uo pipefail
cd "$(dirname "$0")/.."
status=0
modem_log=$(mktemp)
XMFAX_IMPL=c python3 -m pytest -q -rs -p no:cacheprovider --durations=15 -m modem "$@" >"$modem_log" 2>&1 &
modem_pid=$!

echo "=== XMFAX_IMPL=c"
XMFAX_IMPL=c python3 -m pytest -q -rs -p no:cacheprovider --durations=10 -m "not modem" "$@" || status=$?
echo "=== XMFAX_IMPL=python"
XMFAX_IMPL=python python3 -m pytest -q -rs -p no:cacheprovider --durations=10 -m "not modem" "$@" || status=$?

echo "=== real-time modem calls (iaxmodem rig, XMFAX_IMPL=c)"
wait $modem_pid
modem_status=$?
cat "$modem_log"
rm -f "$modem_log"
# pytest exits 5 when a -k filter leaves no modem test: that is not a failure here
[ $modem_status -eq 0 ] || [ $modem_status -eq 5 ] || status=$modem_status
exit $status
