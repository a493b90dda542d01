#!/usr/bin/env bash
# bench-peers.sh: time natcheck replay against two well-known capture readers
# on the same capture, in one run, and print wall seconds, packets/s and the
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
#   natcheck replay                 decode, SNAT engine (flow table, timers,
#                                   events), in-place rewrite, pcapng output.
#
# The capture is the one BenchmarkReplayEndToEnd/gap=1µs generates and caches
# (2,000,000 Ethernet/IPv4/TCP packets, 50 instances 10.0.0.1-.50, 40,000
# flows to 198.18.x.y:443, packets 1 µs apart). It is made with that same
# go test command when missing, so this works on a fresh machine.
#
# Timing: hyperfine (mean ± σ over --runs 3 after --warmup 1) when it is
# installed or installable with apt-get; otherwise bash `time`, 3 runs each
# after one warm-up, median. The whole script stays under ~3 minutes on the
# project's 2-core VM (tshark dominates, ~9 s a run).
#
# Environment: NATCHECK (binary, default bin/natcheck), CAPTURE (a pcap to
# use instead of the generated one; PACKETS then gives its packet count),
# RUNS (default 3).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
NATCHECK=${NATCHECK:-bin/natcheck}
RUNS=${RUNS:-3}
GO=${GO:-go}

[[ -x $NATCHECK ]] || { echo "bench-peers: $NATCHECK not built (run make build)" >&2; exit 2; }

# --- the capture -----------------------------------------------------------
# os.TempDir() in the test binary is $TMPDIR, else /tmp; the file name is the
# one replay/bench_test.go uses: natcheck-bench-<packets>-<gap>.pcap.
if [[ -z ${CAPTURE:-} ]]; then
	PACKETS=2000000
	CAPTURE="${TMPDIR:-/tmp}/natcheck-bench-${PACKETS}-1µs.pcap"
	if [[ ! -s $CAPTURE ]]; then
		echo "bench-peers: generating $CAPTURE (one run of BenchmarkReplayEndToEnd/gap=1µs)" >&2
		"$GO" test -run '^$' -bench 'ReplayEndToEnd/gap=1µs' -benchtime 1x ./replay/ >&2
	fi
	[[ -s $CAPTURE ]] || { echo "bench-peers: $CAPTURE still missing after go test" >&2; exit 1; }
else
	: "${PACKETS:?set PACKETS to the packet count of CAPTURE}"
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
if ((${#need[@]})); then
	echo "bench-peers: installing ${need[*]}" >&2
	# Answer the wireshark-common debconf question (non-root capture) up front.
	echo "wireshark-common wireshark-common/install-setuid boolean false" |
		debconf-set-selections 2>/dev/null || true
	apt_install tcpdump tshark || { echo "bench-peers: cannot install ${need[*]} (need root and apt-get)" >&2; exit 2; }
fi
if ! command -v hyperfine >/dev/null; then
	apt_install hyperfine || true # optional: fall back to bash `time`
fi

# --- the commands ------------------------------------------------------------
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
# The 50 instance addresses in pool order, so natcheck runs no detection pass.
BACKENDS=$(for i in $(seq 1 50); do printf '10.0.0.%d,' "$i"; done)
BACKENDS=${BACKENDS%,}

names=(tshark tcpdump natcheck)
cmds=(
	"tshark -q -z conv,tcp -r '$CAPTURE' >/dev/null 2>&1"
	"tcpdump -r '$CAPTURE' -w /dev/null 2>/dev/null"
	"'$NATCHECK' replay --backends $BACKENDS -w '$TMP/outside.pcapng' '$CAPTURE' >/dev/null"
)

# Check every command once (and show its stderr) before timing anything: a
# failing tool must not be timed as a fast one.
for i in "${!names[@]}"; do
	bash -c "${cmds[$i]}" || { echo "bench-peers: ${names[$i]} failed: ${cmds[$i]}" >&2; exit 1; }
done

mean=() sd=()
if command -v hyperfine >/dev/null; then
	timer="hyperfine $(hyperfine --version | awk '{print $2}'): mean ± σ of $RUNS runs after 1 warm-up"
	args=()
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
			ts+=("$({ time bash -c "${cmds[$i]}" ; } 2>&1 >/dev/null | tail -1)")
		done
		echo "${names[$i]}: ${ts[*]} s" >&2
		mean+=("$(printf '%s\n' "${ts[@]}" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')")
		sd+=("")
	done
fi

# --- the table ---------------------------------------------------------------
# ratio = natcheck's wall time / the tool's: above 1, natcheck is slower.
nat=${mean[2]}
echo
echo "capture: $CAPTURE ($PACKETS packets, $(du -h "$CAPTURE" | cut -f1))"
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "timing:  $timer"
echo
printf '| %-8s | %-16s | %14s | %-28s |\n' tool "wall s" "packets/s" "natcheck time / tool time"
printf '|%s|%s|%s|%s|\n' ---------- ------------------ ---------------- ------------------------------
for i in "${!names[@]}"; do
	w=$(awk -v m="${mean[$i]}" -v s="${sd[$i]}" 'BEGIN { if (s == "") printf "%.2f", m; else printf "%.2f ± %.2f", m, s }')
	pps=$(awk -v p="$PACKETS" -v m="${mean[$i]}" 'BEGIN { printf "%.2f M", p / m / 1e6 }')
	if ((i == 2)); then r="1 (itself)"; else r=$(awk -v a="$nat" -v b="${mean[$i]}" 'BEGIN { printf "%.2f", a / b }'); fi
	# printf pads by bytes and "±" is two bytes in UTF-8: one more to line up.
	ww=16
	[[ $w == *±* ]] && ww=17
	printf "| %-8s | %-${ww}s | %14s | %-28s |\n" "${names[$i]}" "$w" "$pps" "$r"
done
echo
echo "versions: $(tshark --version 2>/dev/null | head -1 | sed 's/\.$//'); $(tcpdump --version 2>&1 | head -2 | paste -sd' ' -); $("$NATCHECK" version 2>/dev/null | head -1)"
