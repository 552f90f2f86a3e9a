#!/usr/bin/env bash
# Run every fuzz and property test (pytest marker "fuzz": each hypothesis @given test and
# every test or module with "fuzz" in its name, applied by tests/conftest.py) with fresh
# random seeds, round after round, on both codec paths, for MINUTES minutes.
#
#   scripts/fuzz.sh MINUTES [pytest args...]     e.g. scripts/fuzz.sh 30 tests/codecs
#
# Each round draws a seed and runs the C path, then the pure-Python path, with the hypothesis
# profile "fuzz" (random examples, XMFAX_FUZZ_SCALE x each test's max_examples, default 3).
# The first round always runs whole (so both paths are fuzzed at least once, even past
# MINUTES: about 7 min for the C path and longer for the Python path on a loaded 2-core
# machine); later rounds are cut when the time is up. A failure prints its seed and the
# command that replays it; the script goes on until the time is up and exits 1 if any run
# failed (0 if none did). Logs of failed runs are kept. Run it before closing parser work;
# a failure found here becomes a plain test.
set -uo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-}
if ! [[ "$minutes" =~ ^[0-9]+([.][0-9]+)?$ ]]; then
    echo "usage: scripts/fuzz.sh MINUTES [pytest args...]" >&2
    exit 2
fi
shift
end=$(python3 -c "import time, sys; print(int(time.time() + float(sys.argv[1]) * 60))" "$minutes")
logdir=$(mktemp -d "${TMPDIR:-/tmp}/xmfax-fuzz.XXXXXX")
export XMFAX_HYPOTHESIS_PROFILE=fuzz XMFAX_FUZZ_SCALE="${XMFAX_FUZZ_SCALE:-3}"
unset CI   # the ci profile would derandomise; strict skips are not the point here
failures=0 rounds=0
echo "fuzz: until $(date -d "@$end" '+%H:%M:%S'), logs of failed runs in $logdir"
while [ "$(date +%s)" -lt "$end" ] || [ $rounds -eq 0 ]; do
    rounds=$((rounds + 1))
    seed=$(python3 -c "import random; print(random.SystemRandom().randrange(1, 2**32))")
    for impl in c python; do
        log="$logdir/round$rounds-$impl-seed$seed.log"
        t0=$(date +%s)
        limit=()
        if [ $rounds -gt 1 ]; then
            left=$(( end - t0 ))
            [ $left -gt 0 ] || break
            limit=(timeout -s INT -k 30 "$left")      # pytest stops cleanly on SIGINT
        fi
        "${limit[@]}" env XMFAX_IMPL=$impl python3 -m pytest -q -p no:cacheprovider -m fuzz \
            --hypothesis-seed="$seed" "$@" >"$log" 2>&1
        rc=$?
        summary=$(tail -n 1 "$log")
        printf 'round %d  %-6s seed %-10s %3ds  %s\n' "$rounds" "$impl" "$seed" $(( $(date +%s) - t0 )) "$summary"
        if [ $rc -eq 5 ]; then
            echo "fuzz: no test selected (marker fuzz with: $*)" >&2
            rm -rf "$logdir"
            exit 2
        fi
        found=$(grep -cE '^(FAILED|ERROR) ' "$log")
        if [ $rc -eq 124 ] && [ "$found" -eq 0 ]; then
            echo "    (cut at the time limit, no failure so far)"
            rm -f "$log"
        elif [ $rc -ne 0 ]; then
            failures=$((failures + 1))
            echo "FAILED: seed $seed, XMFAX_IMPL=$impl (log: $log)"
            grep -E '^(FAILED|ERROR) ' "$log" | sed 's/^/    /'
            echo "    replay: XMFAX_HYPOTHESIS_PROFILE=fuzz XMFAX_FUZZ_SCALE=$XMFAX_FUZZ_SCALE XMFAX_IMPL=$impl python3 -m pytest -m fuzz --hypothesis-seed=$seed $*"
        else
            rm -f "$log"
        fi
    done
done
echo "fuzz: $rounds round(s), $failures failed run(s)"
[ $failures -eq 0 ] && rmdir "$logdir" 2>/dev/null
[ $failures -eq 0 ]
