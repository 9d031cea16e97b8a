#!/usr/bin/env bash
# Starts (or stops) the real servers revguard's tests use, on 127.0.0.1 only:
# a single redis-server; a Sentinel group (a master, its replica and three
# Sentinels that fail it over); a Redis Cluster of 3 masters with a replica
# each; PostgreSQL 15 and MariaDB.
# `start` prints the environment the tests read; `eval "$(scripts/servers.sh start)"`.
# `start -cluster1` also starts a Redis Cluster of one node, which owns every
# slot, and prints REVGUARD_REDIS_CLUSTER1 (scripts/bench.sh sets it beside
# the 3-node cluster to show what shards bring).
# State and PID files live in $REVGUARD_SERVERS_DIR (default ./.servers).
#
# Ports, each plus $REVGUARD_PORT_OFFSET: redis-server 16379; the Sentinel
# group's data nodes 16380 (master) and 16381 (replica), its Sentinels
# 26380-26382; the cluster's masters 17001-17003, the one-node cluster 17004,
# the cluster's replicas 17005-17007 (and every cluster port's bus, +10000);
# PostgreSQL 15432; MariaDB 13306.
#
# The Sentinel group's and the clusters' nodes run from config files in the
# servers directory (INFO server's config_file names them), which Sentinel
# rewrites when it changes a node's role: a test that kills a node restarts
# it as it was with `redis-server CONFIG_FILE`; Sentinel, or the cluster,
# makes it a replica of whichever node is master by then.
set -euo pipefail

dir=${REVGUARD_SERVERS_DIR:-$(pwd)/.servers}
off=${REVGUARD_PORT_OFFSET:-0} # to run a second set beside the first
redis_port=$((16379 + off))
sentinel_master_port=$((16380 + off))
sentinel_replica_port=$((16381 + off))
sentinel_ports=($((26380 + off)) $((26381 + off)) $((26382 + off)))
sentinel_name=revguard
cluster_ports=($((17001 + off)) $((17002 + off)) $((17003 + off)))
cluster1_port=$((17004 + off))
cluster_replica_ports=($((17005 + off)) $((17006 + off)) $((17007 + off)))
pg_port=$((15432 + off))
my_port=$((13306 + off))
pg_bin=/usr/lib/postgresql/15/bin
pg_user=revguard

# Short, so that failover tests are: Sentinel takes a master that has not
# answered for a second for down, and a cluster three seconds (the defaults
# are 30 and 15). A server that misses its pings that long on a loaded
# machine is failed over in tests that are not about failover too. A
# Sentinel retries a failover that did not finish after twice the timeout.
sentinel_down_after_ms=1000
sentinel_failover_timeout_ms=5000
cluster_node_timeout_ms=3000

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

# link_up PORT: the replica at PORT has finished its sync with its master.
link_up() { redis-cli -p "$1" info replication | grep -q '^master_link_status:up'; }

start_redis() {
	mkdir -p "$dir/redis"
	redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly yes \
		--dir "$dir/redis" --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis/log" >&2
	wait_for 10 redis-server redis-cli -p "$redis_port" ping
}

start_sentinel_group() {
	rm -rf "$dir/sentinel" && mkdir -p "$dir/sentinel"
	start_sentinel_node "$sentinel_master_port"
	start_sentinel_node "$sentinel_replica_port" "replicaof 127.0.0.1 $sentinel_master_port"
	wait_for 30 "the Sentinel group's replica" link_up "$sentinel_replica_port"
	# Sentinels started after the replica is in sync find it in the master's
	# first INFO, instead of ten seconds later.
	local p
	for p in "${sentinel_ports[@]}"; do start_sentinel "$p"; done
	for p in "${sentinel_ports[@]}"; do wait_for 30 "Sentinel $p" sentinel_ready "$p"; done
}

start_sentinel_node() { # start_sentinel_node PORT [DIRECTIVE]: a data node of the Sentinel group
	start_node "$1" "$dir/sentinel/redis-$1" "$dir/sentinel/redis-$1.pid" "${@:2}"
}

# start_node PORT DIR PIDFILE [DIRECTIVE...]: a redis-server persisted as the
# single server is, run from DIR/redis.conf so that it can be restarted as
# it was.
start_node() {
	local p=$1 d=$2 pidfile=$3
	shift 3
	mkdir -p "$d"
	{
		cat <<CONF
port $p
bind 127.0.0.1
dir "$d"
daemonize yes
pidfile "$pidfile"
logfile "$d/log"
save ""
appendonly yes
# A replica (re)syncs at once rather than after the default 5s.
repl-diskless-sync-delay 0
CONF
		printf '%s\n' "$@"
	} >"$d/redis.conf"
	redis-server "$d/redis.conf" >&2
	wait_for 10 "redis-server $p" redis-cli -p "$p" ping
}

start_sentinel() { # start_sentinel PORT
	local p=$1 d=$dir/sentinel/sentinel-$1
	mkdir -p "$d"
	cat >"$d/sentinel.conf" <<CONF
port $p
bind 127.0.0.1
dir "$d"
daemonize yes
pidfile "$dir/sentinel/sentinel-$p.pid"
logfile "$d/log"
sentinel monitor $sentinel_name 127.0.0.1 $sentinel_master_port 2
sentinel down-after-milliseconds $sentinel_name $sentinel_down_after_ms
sentinel failover-timeout $sentinel_name $sentinel_failover_timeout_ms
sentinel parallel-syncs $sentinel_name 1
CONF
	redis-server "$d/sentinel.conf" --sentinel >&2
}

# sentinel_ready PORT: the Sentinel at PORT sees the master up, the other
# two Sentinels, and the replica, so that it can vote for and carry out a
# failover.
sentinel_ready() {
	local p=$1
	redis-cli -p "$p" sentinel ckquorum "$sentinel_name" | grep -q '^OK' &&
		field "$(redis-cli -p "$p" sentinel master "$sentinel_name")" flags | grep -qx master &&
		field "$(redis-cli -p "$p" sentinel master "$sentinel_name")" num-other-sentinels | grep -qx 2 &&
		field "$(redis-cli -p "$p" sentinel replicas "$sentinel_name")" flags | grep -qx slave
}

# field REPLY NAME: the value after NAME in a flat reply redis-cli printed
# one element a line.
field() { awk -v k="$2" 'prev == k { print; exit } { prev = $0 }' <<<"$1"; }

start_cluster() {
	local nodes=() p
	for p in "${cluster_ports[@]}" "${cluster_replica_ports[@]}"; do
		start_cluster_node "$p"
		nodes+=("127.0.0.1:$p")
	done
	# On one host redis-cli makes the first three nodes masters and the
	# others their replicas.
	redis-cli --cluster create "${nodes[@]}" --cluster-replicas 1 --cluster-yes >&2
	wait_for 30 "redis cluster" cluster_ready
}

# cluster_ready: every node serves the whole slot map, and each master has a
# replica in sync with it.
cluster_ready() {
	local p
	for p in "${cluster_ports[@]}" "${cluster_replica_ports[@]}"; do
		redis-cli -p "$p" cluster info | grep -q '^cluster_state:ok' || return 1
	done
	for p in "${cluster_ports[@]}"; do
		redis-cli -p "$p" info replication | grep -q '^connected_slaves:1' || return 1
	done
	for p in "${cluster_replica_ports[@]}"; do link_up "$p" || return 1; done
}

start_cluster_node() { # start_cluster_node PORT: a fresh node that belongs to no cluster yet
	rm -rf "$dir/cluster-$1"
	start_node "$1" "$dir/cluster-$1" "$dir/cluster-$1.pid" "cluster-enabled yes" \
		"cluster-config-file nodes.conf" "cluster-node-timeout $cluster_node_timeout_ms"
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

# stop_pids FILE...: stops the servers the pid files name, if they are still
# running and still servers (a pid file left from before a reboot may name
# some other process by now), and waits for them to exit. Builtins only, as
# forks are slow on a loaded machine.
stop_pids() {
	local f pid comm pids=()
	for f in "$@"; do
		read -r pid 2>/dev/null <"$f" || continue
		read -r comm 2>/dev/null <"/proc/$pid/comm" || continue
		case $comm in
		redis-server | mariadbd) kill "$pid" 2>/dev/null && pids+=("$pid") ;;
		esac
	done
	for pid in "${pids[@]}"; do
		for _ in {1..100}; do running "$pid" || break; sleep 0.1; done
	done
}

# running PID: the process has not exited. A daemon's parent is init, which
# may take seconds to reap it: a zombie has exited and closed its ports.
running() {
	local stat
	read -r stat 2>/dev/null <"/proc/$1/stat" || return 1
	stat=${stat##*) } # after "PID (COMM) ": the state
	[ "${stat%% *}" != Z ]
}

stop_all() {
	# The Sentinels first, so that they do not fail over a master that is
	# only being stopped.
	stop_pids "$dir"/sentinel/sentinel-*.pid
	stop_pids "$dir"/redis.pid "$dir"/sentinel/redis-*.pid "$dir"/cluster-*.pid "$dir"/my/pid
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
	# Both mostly wait: for Sentinels to hear of each other, for the
	# cluster's nodes to agree.
	start_sentinel_group &
	sentinel_group=$!
	start_cluster
	wait "$sentinel_group"
	if [ "$cluster1" = 1 ]; then start_cluster1; fi
	start_postgres
	start_mariadb
	cat <<ENV
export REVGUARD_REDIS_ADDR=127.0.0.1:$redis_port
export REVGUARD_REDIS_SENTINEL=127.0.0.1:${sentinel_ports[0]},127.0.0.1:${sentinel_ports[1]},127.0.0.1:${sentinel_ports[2]}
export REVGUARD_REDIS_MASTER=$sentinel_name
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
