#!/bin/bash
# dkim.sh: DKIM signing cost (issue 4) next to `openssl speed` on one core.
# Not a test: it prints figures and is not run by .ci/run.
#
#   tests/bench/dkim.sh [BUILD_DIR] [SECONDS]
#
# Runs, each pinned to CPU 0 with taskset (util-linux) when it is there:
#   openssl speed -seconds SECONDS rsa2048 ed25519      (the reference)
#   openssl speed -seconds SECONDS -evp sha256 -bytes 16384
#   BUILD_DIR/tests/bench/dkim SECONDS     (tests/bench/dkim.c: signing a
#       2 KiB message through dkim_sign_*, and the body hash of dkim_sign
#       over a 20 MiB body)
# and prints the per-message signing cost of each key type with its ratio
# to openssl speed (target: within 1.2x), and the body hash throughput
# next to SHA-256 alone (target: >= 1 GB/s).  Starts no daemon; only the
# processes above, each waited for.  SECONDS (default 3) bounds each case.
set -euo pipefail

cd "$(dirname "$0")/../.."
BUILD=${1:-build}
SECS=${2:-3}
bench=$BUILD/tests/bench/dkim
[ -x "$bench" ] || { echo "dkim.sh: $bench missing (ninja -C $BUILD)" >&2; exit 1; }
pin=()
command -v taskset >/dev/null && pin=(taskset -c 0)

echo "== $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load:$(uptime | sed 's/.*load average://')"
echo "== $(openssl version)"
speed=$("${pin[@]}" openssl speed -seconds "$SECS" rsa2048 ed25519 2>/dev/null)
rsa_ps=$(awk '/^rsa 2048 bits/ {print $(NF-1)}' <<<"$speed")
ed_ps=$(awk '/EdDSA \(Ed25519\)/ {print $(NF-1)}' <<<"$speed")
sha=$("${pin[@]}" openssl speed -seconds "$SECS" -evp sha256 -bytes 16384 2>/dev/null |
    awk '/^sha256/ {sub("k$", "", $2); print $2 * 1000}')
rsa_ms=$(awk -v s="$rsa_ps" 'BEGIN {printf "%.4f", 1000 / s}')
ed_ms=$(awk -v s="$ed_ps" 'BEGIN {printf "%.4f", 1000 / s}')
echo "openssl speed: rsa2048 $rsa_ps sign/s = $rsa_ms ms; ed25519 $ed_ps sign/s = $ed_ms ms; sha256 (16 KiB blocks) $(awk -v b="$sha" 'BEGIN {printf "%.2f", b / 1e9}') GB/s"

echo "== $bench $SECS"
out=$("${pin[@]}" "$bench" "$SECS")
echo "$out" | grep -v '^RESULT'
get() { awk -v k="$1" '$1 == "RESULT" && $2 == k {print $3}' <<<"$out"; }

echo "== summary"
for alg in rsa2048 ed25519; do
	ms=$(get "${alg}_ms")
	ref=$([ "$alg" = rsa2048 ] && echo "$rsa_ms" || echo "$ed_ms")
	awk -v a="$alg" -v m="$ms" -v r="$ref" 'BEGIN {
		q = m / r
		printf "signing %-8s %.4f ms/message, openssl speed %.4f ms: ratio %.2f (target <= 1.2): %s\n",
		    a, m, r, q, q <= 1.2 ? "met" : "NOT met" }'
done
awk -v r="$(get body_relaxed_gbs)" -v s="$(get body_simple_gbs)" -v h="$sha" 'BEGIN {
	printf "body hash relaxed %.2f GB/s, simple %.2f GB/s; openssl speed sha256 %.2f GB/s (target >= 1 GB/s): %s\n",
	    r, s, h / 1e9, (r >= 1 && s >= 1) ? "met" : "NOT met" }'
