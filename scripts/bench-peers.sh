#!/usr/bin/env bash
# bench-peers.sh: time natcheck replay against well-known capture tools on
# the same captures, in one run, and print wall seconds, packets/s and the
# ratios. Called by `make bench-peers` (after `make build`); the figures that
# docs/BENCHMARKS.md quotes come from this script.
#
# The peers and why they are there:
#   tshark -q -z conv,tcp -r FILE   full dissection of every packet plus a
#                                   per-conversation table: the closest
#                                   "reads a capture and keeps per-flow state"
#                                   tool most engineers already have.
#   tcpdump -r FILE -w /dev/null    libpcap read and write with no decoding:
#                                   a floor for "just move the packets".
#   tcprewrite --srcipmap … --fixcsum -i FILE -o OUT
#                                   rewrites every inside source address and
#                                   every checksum and writes a new capture,
#                                   keeping no state: what natcheck's -w does
#                                   minus the NAT.
#   natcheck replay                 decode, SNAT engine (flow table, timers,
#                                   events), in-place rewrite, pcapng output.
#
# Two captures, two tables:
#   best case: the one BenchmarkReplayEndToEnd/best-case/gap=1µs generates
#     and caches (2,000,000 Ethernet/IPv4/TCP packets of 70 bytes, 50
#     instances 10.0.0.1-.50, 40,000 flows to 198.18.x.y:443, in batches of
#     1,000 flows, packets 1 µs apart);
#   busy subnet (issue 11's class, the realistic worst case): the one
#     internal/pcapgen/busygen writes and BenchmarkReplayEndToEnd/worst-case
#     caches under the same name (2,000,000 packets of 200,000 flows of 20,000
#     hosts in 10.0.0.0/8, each packet's flow drawn at random, 70 % TCP,
#     IMIX-like sizes, mean 336 B, 1 µs apart), replayed as the issue says:
#     --backends 10.0.0.0/8, four frontends, --ports-per-instance 8. Its
#     table ends with the issue's goals as ratios of this one run: natcheck
#     with -w on one worker against tcprewrite (goal ≥ 3), and two workers
#     against one (goal ≥ 1.7).
# Both are made when missing, so this works on a fresh machine.
#
# Timing: hyperfine (mean ± σ over --runs 3 after --warmup 1) when it is
# installed or installable with apt-get; otherwise bash `time`, 3 runs each
# after one warm-up, median. The whole script stays under ~5 minutes on the
# project's 2-core VM (tshark dominates, ~9 s a run).
#
# Environment: NATCHECK (binary, default bin/natcheck), RUNS (default 3),
# SETS (default "best busy": which tables to make).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
NATCHECK=${NATCHECK:-bin/natcheck}
RUNS=${RUNS:-3}
GO=${GO:-go}
SETS=${SETS:-best busy}

[[ -x $NATCHECK ]] || { echo "bench-peers: $NATCHECK not built (run make build)" >&2; exit 2; }

# --- the captures ------------------------------------------------------------
# os.TempDir() in the test binary is $TMPDIR, else /tmp; the file names are
# the ones replay/bench_test.go uses.
TMPDIR_=${TMPDIR:-/tmp}
BEST="$TMPDIR_/natcheck-bench-2000000-1µs.pcap"
BUSY="$TMPDIR_/natcheck-busy-2000000-200000-11.pcap"
if [[ " $SETS " == *" best "* && ! -s $BEST ]]; then
	echo "bench-peers: generating $BEST (one run of the benchmark that generates it)" >&2
	"$GO" test -run '^$' -bench 'ReplayEndToEnd/best-case/gap=1µs' -benchtime 1x ./replay/ >&2
	[[ -s $BEST ]] || { echo "bench-peers: $BEST still missing after go test" >&2; exit 1; }
fi
if [[ " $SETS " == *" busy "* && ! -s $BUSY ]]; then
	echo "bench-peers: generating $BUSY (internal/pcapgen/busygen)" >&2
	"$GO" run ./internal/pcapgen/busygen -packets 2000000 -o "$BUSY"
fi

# --- the tools ---------------------------------------------------------------
# Installed from Debian packages only when missing, non-interactively, as root.
# A first failed install is usually a stale or empty package list: update once.
apt_install() {
	if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
		return 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -qq "$@" >/dev/null 2>&1 ||
		{ apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq "$@" >/dev/null 2>&1; }
}
need=()
command -v tshark >/dev/null || need+=(tshark)
command -v tcpdump >/dev/null || need+=(tcpdump)
command -v tcprewrite >/dev/null || need+=(tcpreplay)
if ((${#need[@]})); then
	echo "bench-peers: installing ${need[*]}" >&2
	# Answer the wireshark-common debconf question (non-root capture) up front.
	echo "wireshark-common wireshark-common/install-setuid boolean false" |
		debconf-set-selections 2>/dev/null || true
	apt_install "${need[@]}" || { echo "bench-peers: cannot install ${need[*]} (need root and apt-get)" >&2; exit 2; }
fi
if ! command -v hyperfine >/dev/null; then
	apt_install hyperfine || true # optional: fall back to bash `time`
fi

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# --- timing one set ------------------------------------------------------------
# run_set TITLE CAPTURE PACKETS REF: times the commands in the arrays names
# and cmds, then prints a table whose last column is each tool's wall time
# over the time of names[REF]; leaves the means in the array mean.
run_set() {
	local title=$1 capture=$2 packets=$3 ref=$4
	# Check every command once (and show its stderr) before timing anything:
	# a failing tool must not be timed as a fast one.
	for i in "${!names[@]}"; do
		bash -c "${cmds[$i]}" || { echo "bench-peers: ${names[$i]} failed: ${cmds[$i]}" >&2; exit 1; }
	done
	mean=() sd=()
	if command -v hyperfine >/dev/null; then
		timer="hyperfine $(hyperfine --version | awk '{print $2}'): mean ± σ of $RUNS runs after 1 warm-up"
		local args=()
		for i in "${!names[@]}"; do args+=(-n "${names[$i]}" "${cmds[$i]}"); done
		hyperfine --runs "$RUNS" --warmup 1 --style basic --export-csv "$TMP/times.csv" "${args[@]}" >&2
		# CSV columns: command,mean,stddev,median,user,system,min,max
		for n in "${names[@]}"; do
			line=$(awk -F, -v n="$n" '$1 == n' "$TMP/times.csv")
			mean+=("$(cut -d, -f2 <<<"$line")")
			sd+=("$(cut -d, -f3 <<<"$line")")
		done
	else
		timer="bash time: median of $RUNS runs after 1 warm-up"
		TIMEFORMAT=%R
		for i in "${!names[@]}"; do
			bash -c "${cmds[$i]}"
			ts=()
			for ((r = 0; r < RUNS; r++)); do
				ts+=("$({ time bash -c "${cmds[$i]}"; } 2>&1 >/dev/null | tail -1)")
			done
			echo "${names[$i]}: ${ts[*]} s" >&2
			mean+=("$(printf '%s\n' "${ts[@]}" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')")
			sd+=("")
		done
	fi
	local base=${mean[$ref]}
	echo
	echo "## $title"
	echo
	echo "capture: $capture ($packets packets, $(du -h "$capture" | cut -f1))"
	echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), load $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "timing:  $timer"
	echo
	printf '| %-22s | %-16s | %14s | %-26s |\n' tool "wall s" "packets/s" "its time / ${names[$ref]}'s"
	printf '|%s|%s|%s|%s|\n' ------------------------ ------------------ ---------------- ----------------------------
	for i in "${!names[@]}"; do
		w=$(awk -v m="${mean[$i]}" -v s="${sd[$i]}" 'BEGIN { if (s == "") printf "%.2f", m; else printf "%.2f ± %.2f", m, s }')
		pps=$(awk -v p="$packets" -v m="${mean[$i]}" 'BEGIN { printf "%.2f M", p / m / 1e6 }')
		r=$(awk -v a="${mean[$i]}" -v b="$base" 'BEGIN { printf "%.2f", a / b }')
		# printf pads by bytes and "±" is two bytes in UTF-8: one more to line up.
		ww=16
		[[ $w == *±* ]] && ww=17
		printf "| %-22s | %-${ww}s | %14s | %-26s |\n" "${names[$i]}" "$w" "$pps" "$r"
	done
	echo
	echo "commands (\$TMP is a fresh mktemp -d folder):"
	for i in "${!names[@]}"; do echo "  ${names[$i]}: ${cmds[$i]//$TMP/\$TMP}"; done
}

# ratio A B: mean[B] / mean[A], i.e. how many times faster A is than B.
ratio() { awk -v a="${mean[$1]}" -v b="${mean[$2]}" 'BEGIN { printf "%.2f", b / a }'; }

# --- best case -------------------------------------------------------------------
if [[ " $SETS " == *" best "* ]]; then
	# The 50 instance addresses in pool order, so natcheck runs no detection pass.
	BACKENDS=$(for i in $(seq 1 50); do printf '10.0.0.%d,' "$i"; done)
	BACKENDS=${BACKENDS%,}
	names=(tshark tcpdump tcprewrite natcheck)
	cmds=(
		"tshark -q -z conv,tcp -r '$BEST' >/dev/null 2>&1"
		"tcpdump -r '$BEST' -w /dev/null 2>/dev/null"
		"tcprewrite --srcipmap=10.0.0.0/24:203.0.113.0/24 --fixcsum -i '$BEST' -o '$TMP/tcprewrite.pcap'"
		"'$NATCHECK' replay --backends $BACKENDS -w '$TMP/outside.pcapng' '$BEST' >/dev/null"
	)
	run_set "best case: 2,000,000 packets of 70 B, 40,000 flows in batches (natcheck with its default workers, one per CPU)" "$BEST" 2000000 3
fi

# --- busy subnet (issue 11) ----------------------------------------------------------
if [[ " $SETS " == *" busy "* ]]; then
	NAT="'$NATCHECK' replay --backends 10.0.0.0/8 --frontend 203.0.113.1,203.0.113.2,203.0.113.3,203.0.113.4 --ports-per-instance 8"
	names=(tcpdump tcprewrite natcheck-w-1worker natcheck-w-2workers natcheck-1worker)
	cmds=(
		"tcpdump -r '$BUSY' -w /dev/null 2>/dev/null"
		"tcprewrite --srcipmap=10.0.0.0/8:203.0.113.0/30 --fixcsum -i '$BUSY' -o '$TMP/tcprewrite.pcap'"
		"$NAT --workers 1 -w '$TMP/outside.pcapng' '$BUSY' >/dev/null"
		"$NAT --workers 2 -w '$TMP/outside.pcapng' '$BUSY' >/dev/null"
		"$NAT --workers 1 '$BUSY' >/dev/null"
	)
	run_set "busy subnet (issue 11): 2,000,000 packets, 200,000 flows in random order, 20,000 instances" "$BUSY" 2000000 1
	echo
	echo "goals (issue 11), from this run:"
	echo "  natcheck -w on 1 worker vs tcprewrite: $(ratio 2 1)× its speed (goal ≥ 3)"
	echo "  2 workers vs 1 (both -w):               $(ratio 3 2)× (goal ≥ 1.7)"
fi
echo
echo "versions: $(tshark --version 2>/dev/null | head -1 | sed 's/\.$//'); $(tcpdump --version 2>&1 | head -2 | paste -sd' ' -); $(tcprewrite --version 2>&1 | head -1); $("$NATCHECK" version 2>/dev/null | head -1)"
