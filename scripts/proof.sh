#!/usr/bin/env bash
# Runs revguard's proof under faults (the module in proof/) and prints its
# tables: linearizability of every store, the delivery storm per store and
# mode, network faults and restarts, swallowed replies, failovers of
# Redis Sentinel and Cluster, the soak, known issues.
#
#   scripts/proof.sh              short: what CI runs on every change, a couple of minutes on two cores
#   scripts/proof.sh -long        release: larger histories and storms, a soak of a million deliveries
#                                 over 100,000 entities on Redis and on PostgreSQL (about 4 minutes on
#                                 two cores), then each fuzz target for a minute
#   PROOF_LONG=1 scripts/proof.sh the same as -long
#   scripts/proof.sh -race        either size under the race detector (slower; leases grow to match)
#   scripts/proof.sh -strict      fail on the known library issues too, instead of reporting them
#
# The servers come from the environment that `scripts/servers.sh start`
# prints (REVGUARD_REDIS_ADDR, REVGUARD_REDIS_SENTINEL, REVGUARD_REDIS_CLUSTER,
# REVGUARD_POSTGRES_DSN, REVGUARD_MYSQL_DSN); a store whose variable is unset is
# skipped, unless REVGUARD_REQUIRE_SERVERS=1 makes that a failure. The
# restarts and failovers use servers of their own: redis-server (a Sentinel
# group and a Cluster with replicas, redis-cli to create it), a PostgreSQL and
# a MariaDB (redis-server on
# PATH, /usr/lib/postgresql/15/bin and the user revguard, mariadbd and
# mariadb-install-db and the user mysql; the users only when run as root).
# The full log is kept in $PROOF_LOG (default: a temporary file).
set -euo pipefail
cd "$(dirname "$0")/../proof"
export PATH=/usr/local/go/bin:$PATH

long=${PROOF_LONG:-0}
race=()
strict=()
for arg in "$@"; do
	case $arg in
	-long | --long) long=1 ;;
	-race | --race) race=(-race) ;;
	-strict | --strict) strict=(-strict) ;;
	*)
		echo "usage: scripts/proof.sh [-long] [-race] [-strict]" >&2
		exit 2
		;;
	esac
done

size=short timeout=10m fuzztime=
args=()
if [ "$long" = 1 ]; then
	size=long timeout=90m fuzztime=60s
	args=(-long)
fi
args+=("${strict[@]}")

for v in REVGUARD_REDIS_ADDR REVGUARD_REDIS_SENTINEL REVGUARD_REDIS_CLUSTER REVGUARD_POSTGRES_DSN REVGUARD_MYSQL_DSN; do
	[ -n "${!v:-}" ] || echo "proof: $v is not set: its store is skipped"
done

log=${PROOF_LOG:-$(mktemp /tmp/revguard-proof.XXXXXX)}
echo "proof: $size run, log in $log"
started=$(date +%s)
go vet ./...
status=0
go test "${race[@]}" -count=1 -timeout "$timeout" -run 'Proof|Fuzz' -v ./... -args "${args[@]}" >"$log" 2>&1 || status=$?

# Top-level results, then the tables TestMain prints last.
grep -E '^(--- |ok |FAIL|PASS)' "$log" || true
sed -n '/^revguard proof (/,$p' "$log" | grep -vE '^(ok|FAIL|PASS)' || true
if [ "$status" != 0 ]; then
	echo
	echo "proof: FAILED; what failed:"
	grep -E -- '--- FAIL|_test\.go:[0-9]+: ' "$log" | grep -v 'main_test.go' | head -100
	exit "$status"
fi

if [ -n "$fuzztime" ]; then
	for target in FuzzMemstore FuzzMiniredis FuzzSQLite; do
		echo "proof: fuzzing $target for $fuzztime"
		go test -run '^$' -fuzz "^$target\$" -fuzztime "$fuzztime" . >>"$log" 2>&1 || {
			tail -30 "$log"
			echo "proof: $target found a failing input (written under proof/testdata/fuzz/$target)"
			exit 1
		}
	done
fi
echo "proof: passed in $(($(date +%s) - started))s"
