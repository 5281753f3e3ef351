#!/bin/sh
# Build the libFuzzer targets with clang in their own build directory and
# run each for N seconds (first argument, default 20) on its seed corpus.
# Exits non-zero when a build fails or any target crashes, leaks or times
# out; the crashing input is kept in the work directory it names.
#
#   tests/fuzz/run.sh [SECONDS]
#   FUZZ_BUILD=build-fuzz  build directory (relative to the source root)
#   FUZZ_TARGETS="fuzz_smtp_data ..."  a subset (default: every fuzz_*.c)
set -eu

secs=${1:-20}
case $secs in
''|*[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 2 ;;
esac
root=$(cd "$(dirname "$0")/../.." && pwd)
bdir=$root/${FUZZ_BUILD:-build-fuzz}
if [ -z "${FUZZ_TARGETS:-}" ]; then
	# Every tests/fuzz/fuzz_*.c is a target (tests/fuzz/meson.build).
	FUZZ_TARGETS=$(cd "$root/tests/fuzz" && ls fuzz_*.c | sed 's/\.c$//')
fi
targets=$FUZZ_TARGETS

if [ ! -f "$bdir/build.ninja" ]; then
	CC=clang meson setup "$bdir" "$root" -Dfuzz=true \
	    -Dbuildtype=debugoptimized >/dev/null
fi
set --
for t in $targets; do
	set -- "$@" "tests/fuzz/$t"
done
ninja -C "$bdir" "$@" >/dev/null

work=$(mktemp -d "${TMPDIR:-/tmp}/relayd-fuzz.XXXXXX")
echo "fuzz: ${secs}s per target, work directory $work"
status=0
for t in $targets; do
	mkdir -p "$work/$t/corpus" "$work/$t/crash"
	# New inputs go to the work corpus; the seed corpus stays untouched.
	if "$bdir/tests/fuzz/$t" -max_total_time="$secs" -timeout=10 \
	    -rss_limit_mb=2048 -print_final_stats=1 \
	    -artifact_prefix="$work/$t/crash/" \
	    "$work/$t/corpus" "$root/tests/fuzz/corpus/$t" \
	    >"$work/$t/log" 2>&1; then
		execs=$(grep -a '^stat::number_of_executed_units:' \
		    "$work/$t/log" | tr -dc '0-9')
		rate=$(grep -a '^stat::average_exec_per_sec:' \
		    "$work/$t/log" | tr -dc '0-9')
		if [ -z "$execs" ]; then
			# Older output: "Done N runs in S second(s)".
			execs=$(grep -a '^Done [0-9]* runs' "$work/$t/log" |
			    awk '{ print $2 }')
			rate=$(grep -a '^Done [0-9]* runs' "$work/$t/log" |
			    awk '$5 > 0 { print int($2 / $5) }')
		fi
		echo "ok   $t: $execs runs, $rate execs/s"
	else
		status=1
		echo "FAIL $t: see $work/$t/log"
		ls "$work/$t/crash" 2>/dev/null | sed 's/^/     crash input: /'
		grep -m1 -E 'ERROR|runtime error|deadly signal' \
		    "$work/$t/log" | sed 's/^/     /' || true
	fi
done
exit $status
