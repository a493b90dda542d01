#!/usr/bin/env bash
# record-device.sh: record again what the built-in live device (linux-nft:
# Linux nftables SNAT in network namespaces natcheck makes) does with the
# corpus's captures, for natcheck's regression corpus (captures/device/).
#
#   sudo scripts/record-device.sh [EXPECTATION.json...]   (default: every
#                                  captures/expected/*.json with a device)
#
# Each expectation file with a "device" section names its recording and
# the natcheck record command that made it; this script runs that command
# again (with bin/natcheck, built first), then `natcheck regress --update`
# on those files, which records the differences natcheck diff now finds
# between the replay's outside view and the device's, keeping the
# hand-written predicted_by of each difference that is the same. A new
# difference has none: `natcheck regress` then fails on it until someone
# names, in predicted_by, the items of SEMANTICS.md that predict it (or
# finds a bug). Needs root (network namespaces, nftables) and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v python3 >/dev/null || { echo "record-device.sh: python3 is missing" >&2; exit 2; }
make build >/dev/null
if [ $# -eq 0 ]; then
	set -- captures/expected/*.json
fi
files=()
declare -A done
for f in "$@"; do
	cmd=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])).get("device"); print(d["command"] if d else "")' "$f")
	[ -n "$cmd" ] || continue
	files+=("$f")
	[ -z "${done[$cmd]:-}" ] || continue # one recording serves several expectations
	done[$cmd]=1
	echo "== $cmd" >&2
	read -r -a argv <<<"$cmd"
	[ "${argv[0]}" = natcheck ] || { echo "record-device.sh: $f: the command does not start with natcheck: $cmd" >&2; exit 2; }
	bin/natcheck "${argv[@]:1}"
done
[ ${#files[@]} -gt 0 ] || { echo "record-device.sh: no expectation with a device section" >&2; exit 2; }
bin/natcheck regress --update "${files[@]}"
bin/natcheck regress "${files[@]}"
