#!/usr/bin/env bash
# Benchmarks revguard on every backend beside its raw baseline
# (BenchmarkBackends in bench_test.go) and prints one markdown table:
# backend, mode, goroutines, events/s, ratio to the raw baseline, allocs/op.
#
#   scripts/bench.sh                  6 passes of 500ms a benchmark: about 10 minutes on two cores
#   scripts/bench.sh -quick           2 passes of 100ms: proves the pipeline, the figures are rough
#   scripts/bench.sh -count 10 -benchtime 2s
#   scripts/bench.sh -filter 'redis|postgres'    backends (or backend/op) matching a regexp
#   BENCH_COUNT, BENCH_TIME, BENCH_FILTER, BENCH_QUICK=1, BENCH_OUT: the same from the environment
#
# It starts servers of its own with scripts/servers.sh, as .ci/run does, plus
# a one-node Redis Cluster to set beside the 3-node one: in a temporary
# directory, on a port offset no running set uses (REVGUARD_PORT_OFFSET to
# choose one), stopped on exit. It installs nothing but benchstat, into a
# temporary GOBIN. Like .ci/run it wants root (PostgreSQL runs as its own
# user) and redis-server, mariadbd and PostgreSQL 15 on the machine.
#
# Each pass runs every benchmark once, and the passes repeat: a raw baseline
# and the guard beside it are measured seconds apart in every pass, not
# minutes apart, so the ratio survives a drifting load. The raw `go test`
# output, benchstat's report and its CSV stay in $BENCH_OUT (default a new
# /tmp/revguard-bench.* directory), named at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH

benchstat_version=v0.0.0-20260908200009-22c9c6c9d4da
count=${BENCH_COUNT:-6}
benchtime=${BENCH_TIME:-500ms}
filter=${BENCH_FILTER:-}
out=${BENCH_OUT:-}
if [ "${BENCH_QUICK:-0}" = 1 ]; then count=2 benchtime=100ms; fi
usage() {
	echo "usage: scripts/bench.sh [-quick] [-count N] [-benchtime D] [-filter REGEXP] [-out DIR]" >&2
	exit 2
}
while (($#)); do
	case $1 in
	-quick | --quick) count=2 benchtime=100ms ;;
	-count | --count) count=${2:?}; shift ;;
	-benchtime | --benchtime) benchtime=${2:?}; shift ;;
	-filter | --filter) filter=${2:?}; shift ;;
	-out | --out) out=${2:?}; shift ;;
	*) usage ;;
	esac
	shift
done
[[ $count =~ ^[1-9][0-9]*$ ]] || usage

log() { echo "bench: $*" >&2; }

out=${out:-$(mktemp -d /tmp/revguard-bench.XXXXXX)}
mkdir -p "$out"
gobin=$(mktemp -d /tmp/revguard-benchstat.XXXXXX)
export REVGUARD_SERVERS_DIR
REVGUARD_SERVERS_DIR=$(mktemp -d /tmp/revguard-bench-servers.XXXXXX)
chmod 755 "$REVGUARD_SERVERS_DIR" # PostgreSQL's user writes below it
cleanup() {
	scripts/servers.sh stop >/dev/null 2>&1 || true
	rm -rf "$REVGUARD_SERVERS_DIR" "$gobin"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# free_offset prints the first port offset at which none of the ports
# scripts/servers.sh uses (and their cluster bus ports) has a listener.
free_offset() {
	local off p busy
	for off in 600 700 800 900 1000 1100 1200 1300 1400 1500; do
		busy=0
		for p in 16379 16380 16381 26380 26381 26382 17001 17002 17003 17004 17005 17006 17007 27001 27002 27003 27004 27005 27006 27007 15432 13306; do
			if (: </dev/tcp/127.0.0.1/$((p + off))) 2>/dev/null; then busy=1 && break; fi
		done
		if [ "$busy" = 0 ]; then echo "$off" && return; fi
	done
	log "no free port offset between 600 and 1500: set REVGUARD_PORT_OFFSET"
	return 1
}
if [ -z "${REVGUARD_PORT_OFFSET:-}" ]; then
	REVGUARD_PORT_OFFSET=$(free_offset)
fi
export REVGUARD_PORT_OFFSET

log "installing benchstat $benchstat_version into $gobin"
GOBIN=$gobin GOFLAGS= go install "golang.org/x/perf/cmd/benchstat@$benchstat_version"
log "building the benchmarks"
go test -c -o "$out/revguard.test" .

log "starting servers in $REVGUARD_SERVERS_DIR at port offset $REVGUARD_PORT_OFFSET"
if ! servers=$(scripts/servers.sh start -cluster1 2>"$out/servers.log"); then
	tail -n 20 "$out/servers.log" >&2
	log "the servers did not start; their log is in $out/servers.log"
	exit 1
fi
eval "$servers"
export REVGUARD_REQUIRE_SERVERS=1 # a server that did not come up fails the run, never skips it

pattern='^BenchmarkBackends$'
[ -z "$filter" ] || pattern+="/$filter"
raw=$out/bench.txt
: >"$raw"
started=$(date +%s)
for pass in $(seq 1 "$count"); do
	log "pass $pass of $count (-benchtime $benchtime), $(($(date +%s) - started))s so far"
	if ! "$out/revguard.test" -test.run '^$' -test.bench "$pattern" -test.benchtime "$benchtime" \
		-test.count 1 -test.timeout 60m >>"$raw" 2>&1; then
		grep -E -A3 -e '^--- FAIL' -e '^panic:' "$raw" | head -n 40 >&2 || tail -n 30 "$raw" >&2
		log "the benchmarks failed; their output is in $raw"
		exit 1
	fi
done
log "$count pass(es) in $(($(date +%s) - started))s"

"$gobin/benchstat" "$raw" >"$out/benchstat.txt"
"$gobin/benchstat" -format csv "$raw" >"$out/benchstat.csv" 2>/dev/null

# The table. benchstat's CSV has a section per unit: a line ",UNIT,CI", then
# "name,median,ci" rows up to a blank line. A row's baseline is the row of
# the same backend, op and goroutines whose mode starts with "raw-".
awk -F, -v count="$count" -v benchtime="$benchtime" '
function human(x) {
	if (x >= 1e6) return sprintf("%.2fM", x / 1e6)
	if (x >= 1e4) return sprintf("%.0fk", x / 1e3)
	if (x >= 1e3) return sprintf("%.1fk", x / 1e3)
	return sprintf("%.0f", x)
}
function num(x) { return x == int(x) ? sprintf("%d", x) : sprintf("%.1f", x) }
/^,[^,]+,CI$/ { unit = $2; next }
/^$/ { unit = ""; next }
unit != "" && $1 != "geomean" {
	name = $1
	sub(/^Backends\//, "", name)
	sub(/-[0-9]+$/, "", name) # GOMAXPROCS
	if (unit == "events/s") {
		if (!(name in rate)) order[n++] = name
		rate[name] = $2
		ci[name] = $3
	} else if (unit == "allocs/op") {
		allocs[name] = $2
	}
}
END {
	if (n == 0) { print "bench: no events/s in the benchstat output" > "/dev/stderr"; exit 1 }
	for (i = 0; i < n; i++) {
		k = split(order[i], p, "/")
		if (p[3] ~ /^raw-/) base[p[1] "/" p[2] "/" p[k]] = order[i]
	}
	printf "| backend | mode | goroutines | events/s | × raw | allocs/op |\n"
	printf "|---|---|--:|--:|--:|--:|\n"
	for (i = 0; i < n; i++) {
		name = order[i]
		k = split(name, p, "/")
		mode = p[2]
		for (j = 3; j < k; j++) mode = mode "/" p[j]
		g = p[k]
		sub(/^g=/, "", g)
		b = base[p[1] "/" p[2] "/" p[k]]
		if (b == name) ratio = "baseline"
		else if (b != "" && rate[b] > 0) ratio = sprintf(rate[name] / rate[b] >= 10 ? "%.0f" : "%.2f", rate[name] / rate[b])
		else ratio = "?"
		printf "| %s | %s | %s | %s ± %s | %s | %s |\n", p[1], mode, g, human(rate[name]), ci[name], ratio, (name in allocs) ? num(allocs[name]) : "?"
	}
	printf "\nMedians of %d pass%s of -benchtime %s; ± is the 95%% confidence interval (∞ under 6 passes).\n", count, count == 1 ? "" : "es", benchtime
	# The targets the decision pipeline was built to (issue 12): each is
	# revguard over its raw baseline, or a time per event on memstore.
	nt = split("redis/Handle/Claim/g=64:1.0 redis/Handle/AtMostOnce/g=64:1.2 redis/HandleBatch100/Claim/g=1:0.8 " \
		"postgres/Handle/Claim/g=64:1.0 postgres/HandleBatch100/Claim/g=8:0.7 cluster/Handle/Claim/g=64:1.0", T, " ")
	for (i = 1; i <= nt; i++) {
		split(T[i], q, ":")
		k = split(q[1], p, "/")
		b = base[p[1] "/" p[2] "/" p[k]]
		if (!(q[1] in rate) || b == "" || rate[b] <= 0) continue
		r = rate[q[1]] / rate[b]
		printf "%s- Target, %s: ×%.2f raw (target ≥ %s): %s\n", (tn++ ? "" : "\n"), q[1], r, q[2], r >= q[2] ? "met" : "missed"
	}
	nt = split("memstore/Handle/Claim/g=1:150 memstore/drop/dup/g=1:100 memstore/drop/stale/g=1:100", T, " ")
	for (i = 1; i <= nt; i++) {
		split(T[i], q, ":")
		if (!(q[1] in rate) || rate[q[1]] <= 0) continue
		ns = 1e9 / rate[q[1]]
		printf "%s- Target, %s: %.0f ns/event, %s allocs (target < %s ns): %s\n", (tn++ ? "" : "\n"), q[1], ns, (q[1] in allocs) ? num(allocs[q[1]]) : "?", q[2], ns < q[2] ? "met" : "missed"
	}
	# What shards bring: the 3-node cluster over the 1-node one, case by case.
	for (i = 0; i < n; i++) {
		name = order[i]
		if (name !~ /^cluster-1node\// || name ~ /\/raw-/) continue
		three = name
		sub(/^cluster-1node\//, "cluster/", three)
		if (!(three in rate) || rate[name] <= 0) continue
		k = split(name, p, "/")
		mode = p[2]
		for (j = 3; j < k; j++) mode = mode "/" p[j]
		printf "%s- Scaling, %s, %s: 3-node cluster %s events/s, 1-node %s: ×%.2f\n", (s++ ? "" : "\n"), mode, p[k], human(rate[three]), human(rate[name]), rate[three] / rate[name]
	}
}' "$out/benchstat.csv"

echo
echo "Raw output: $raw; benchstat: $out/benchstat.txt (CSV: $out/benchstat.csv)"
