#!/usr/bin/env bash
# Starts (or stops) the real servers revguard's tests use, on 127.0.0.1 only:
# a single redis-server, a 3-node Redis Cluster, PostgreSQL 15 and MariaDB.
# `start` prints the environment the tests read; `eval "$(scripts/servers.sh start)"`.
# `start -cluster1` also starts a Redis Cluster of one node, which owns every
# slot, and prints REVGUARD_REDIS_CLUSTER1 (scripts/bench.sh sets it beside
# the 3-node cluster to show what shards bring).
# State and PID files live in $REVGUARD_SERVERS_DIR (default ./.servers).
set -euo pipefail

dir=${REVGUARD_SERVERS_DIR:-$(pwd)/.servers}
off=${REVGUARD_PORT_OFFSET:-0} # to run a second set beside the first
redis_port=$((16379 + off))
cluster_ports=($((17001 + off)) $((17002 + off)) $((17003 + off)))
cluster1_port=$((17004 + off))
pg_port=$((15432 + off))
my_port=$((13306 + off))
pg_bin=/usr/lib/postgresql/15/bin
pg_user=revguard

log() { echo "servers: $*" >&2; }

wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...
	local secs=$1 what=$2; shift 2
	for _ in $(seq 1 $((secs * 10))); do
		if "$@" >/dev/null 2>&1; then return 0; fi
		sleep 0.1
	done
	log "$what did not come up in ${secs}s"
	return 1
}

start_redis() {
	mkdir -p "$dir/redis"
	redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly yes \
		--dir "$dir/redis" --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis/log" >&2
	wait_for 10 redis-server redis-cli -p "$redis_port" ping
	local nodes=()
	for p in "${cluster_ports[@]}"; do
		start_cluster_node "$p"
		nodes+=("127.0.0.1:$p")
	done
	redis-cli --cluster create "${nodes[@]}" --cluster-replicas 0 --cluster-yes >&2
	wait_for 30 "redis cluster" bash -c "redis-cli -p ${cluster_ports[0]} cluster info | grep -q cluster_state:ok"
}

start_cluster_node() { # start_cluster_node PORT: a fresh node that belongs to no cluster yet
	local p=$1
	mkdir -p "$dir/cluster-$p"
	rm -f "$dir/cluster-$p/nodes.conf" "$dir/cluster-$p"/*.aof "$dir/cluster-$p"/appendonlydir -r
	redis-server --port "$p" --bind 127.0.0.1 --save '' --appendonly yes --cluster-enabled yes \
		--cluster-config-file nodes.conf --dir "$dir/cluster-$p" --daemonize yes \
		--pidfile "$dir/cluster-$p.pid" --logfile "$dir/cluster-$p/log" >&2
	wait_for 10 "redis cluster node $p" redis-cli -p "$p" ping
}

# redis-cli --cluster create wants three masters; one node takes every slot
# itself. Its pid file matches stop_all's cluster-*.pid, so stop needs no flag.
start_cluster1() {
	start_cluster_node "$cluster1_port"
	redis-cli -p "$cluster1_port" cluster addslotsrange 0 16383 >&2
	wait_for 30 "one-node redis cluster" bash -c "redis-cli -p $cluster1_port cluster info | grep -q cluster_state:ok"
}

start_postgres() {
	id -u "$pg_user" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$pg_user"
	rm -rf "$dir/pg" && mkdir -p "$dir/pg" && chown "$pg_user" "$dir/pg"
	runuser -u "$pg_user" -- "$pg_bin/initdb" -D "$dir/pg/data" -U "$pg_user" --auth=trust -E UTF8 >&2
	runuser -u "$pg_user" -- "$pg_bin/pg_ctl" -D "$dir/pg/data" -l "$dir/pg/log" -w \
		-o "-c listen_addresses=127.0.0.1 -p $pg_port -k $dir/pg -c max_connections=200 -c fsync=off" start >&2
	runuser -u "$pg_user" -- "$pg_bin/createdb" -h 127.0.0.1 -p "$pg_port" -U "$pg_user" revguard >&2
}

start_mariadb() {
	rm -rf "$dir/my" && mkdir -p "$dir/my"
	chown mysql "$dir/my"
	mariadb-install-db --user=mysql --datadir="$dir/my/data" --skip-test-db >"$dir/my/install.log" 2>&1
	(mariadbd --user=mysql --datadir="$dir/my/data" --port="$my_port" --bind-address=127.0.0.1 \
		--socket="$dir/my/sock" --pid-file="$dir/my/pid" --log-error="$dir/my/error.log" \
		--innodb-flush-log-at-trx-commit=2 --max-connections=300 >/dev/null 2>&1 &)
	wait_for 60 mariadb mariadb-admin --socket="$dir/my/sock" -u root ping
	mariadb --socket="$dir/my/sock" -u root <<SQL
CREATE DATABASE IF NOT EXISTS revguard;
CREATE USER IF NOT EXISTS 'revguard'@'127.0.0.1' IDENTIFIED BY 'revguard';
GRANT ALL ON *.* TO 'revguard'@'127.0.0.1';
SQL
}

stop_all() {
	for f in "$dir"/redis.pid "$dir"/cluster-*.pid "$dir"/my/pid; do
		[ -f "$f" ] || continue
		local pid
		pid=$(cat "$f")
		kill "$pid" 2>/dev/null || continue
		for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	done
	if [ -f "$dir/pg/data/postmaster.pid" ]; then
		runuser -u "$pg_user" -- "$pg_bin/pg_ctl" -D "$dir/pg/data" -m fast stop >&2 || true
	fi
}

case "${1:-}" in
start)
	cluster1=0
	case "${2:-}" in
	"") ;;
	-cluster1) cluster1=1 ;;
	*)
		echo "usage: $0 start [-cluster1] | stop" >&2
		exit 2
		;;
	esac
	mkdir -p "$dir"
	stop_all 2>/dev/null || true
	start_redis
	if [ "$cluster1" = 1 ]; then start_cluster1; fi
	start_postgres
	start_mariadb
	cat <<ENV
export REVGUARD_REDIS_ADDR=127.0.0.1:$redis_port
export REVGUARD_REDIS_CLUSTER=127.0.0.1:${cluster_ports[0]},127.0.0.1:${cluster_ports[1]},127.0.0.1:${cluster_ports[2]}
export REVGUARD_POSTGRES_DSN='postgres://$pg_user@127.0.0.1:$pg_port/revguard?sslmode=disable'
export REVGUARD_MYSQL_DSN='revguard:revguard@tcp(127.0.0.1:$my_port)/revguard'
ENV
	if [ "$cluster1" = 1 ]; then echo "export REVGUARD_REDIS_CLUSTER1=127.0.0.1:$cluster1_port"; fi
	;;
stop) stop_all ;;
*)
	echo "usage: $0 start [-cluster1] | stop" >&2
	exit 2
	;;
esac
