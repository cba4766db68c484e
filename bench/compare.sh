#!/usr/bin/env bash
# Compare our gearmand with C gearmand (Debian gearman-job-server) on
# loopback, with the same load generator (cmd/gearbench), queue against
# matching queue: PAIRS lists C-queue:our-queue pairs (builtin is memory
# only on both sides; libsqlite3 is C gearmand's durable store). Each
# workload runs ROUNDS times per pair, alternating servers, each run on a
# fresh server and an empty store; the script prints each run on stderr and
# the median jobs/s and ratio ours/C per pair and workload.
#
#   bench/compare.sh                                   # defaults below
#   ROUNDS=7 JOBS=100000 bench/compare.sh
#   PAIRS="libsqlite3:bolt libsqlite3:pebble" WORKLOADS=submit bench/compare.sh
#
#   PAIRS="Postgres:postgres redis:redis" WORKLOADS=submit bench/compare.sh
#
# C gearmand commits one job at a time to sqlite and PostgreSQL, so those
# runs use SLOW_JOBS jobs (the rate, not the count, is compared). The
# PostgreSQL and Redis pairs use the servers at PG_DSN and REDIS_ADDR, the
# same for both sides; every run gets its own table, key prefix or
# namespace, removed again after the run (with psql and redis-cli).
#
# Needs /usr/sbin/gearmand: apt-get install gearman-job-server
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-5}
JOBS=${JOBS:-50000}
CONNS=${CONNS:-4}
WINDOW=${WINDOW:-16}
WORKERS=${WORKERS:-4}
PAYLOAD=${PAYLOAD:-64}
WORKLOADS=${WORKLOADS:-submit drain roundtrip}
PAIRS=${PAIRS:-builtin:builtin}
SLOW_JOBS=${SLOW_JOBS:-2000}
PG_DSN=${PG_DSN:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}
REDIS_ADDR=${REDIS_ADDR:-127.0.0.1:6379}
runs=0
C_GEARMAND=${C_GEARMAND:-/usr/sbin/gearmand}

if [ ! -x "$C_GEARMAND" ]; then
	echo "compare.sh: $C_GEARMAND not found; install Debian package gearman-job-server" >&2
	exit 1
fi

work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
go build -o "$work/gearmand" ./cmd/gearmand
go build -o "$work/gearbench" ./cmd/gearbench

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_port() {
	for _ in $(seq 100); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
		sleep 0.05
	done
	echo "compare.sh: server on port $1 did not start" >&2
	return 1
}

# run SERVER QUEUE WORKLOAD: start a fresh server with an empty store, run
# one workload, print jobs/s.
run() {
	local server=$1 queue=$2 workload=$3 port pid line jobs=$JOBS dir
	port=$(free_port)
	dir=$(mktemp -d "$work/run.XXXX")
	runs=$((runs + 1))
	local tag="bench_$$_$runs"
	if [ "$server" = c ]; then
		local qargs=(-q "$queue")
		case $queue in
		libsqlite3)
			qargs+=(--libsqlite3-db "$dir/q.sqlite")
			jobs=$SLOW_JOBS
			;;
		Postgres)
			qargs+=(--libpq-conninfo "$PG_DSN" --libpq-table "$tag")
			jobs=$SLOW_JOBS
			;;
		redis) qargs+=(--redis-server "${REDIS_ADDR%:*}" --redis-port "${REDIS_ADDR##*:}" --redis-prefix "$tag") ;;
		esac
		"$C_GEARMAND" -p "$port" -L 127.0.0.1 "${qargs[@]}" -l none -P "$dir/pid" >/dev/null 2>&1 &
	else
		local qargs=(-q "$queue")
		case $queue in
		bolt) qargs+=(--bolt-file "$dir/q.db") ;;
		pebble) qargs+=(--pebble-dir "$dir/q.pebble") ;;
		postgres) qargs+=(--dsn "$PG_DSN" --store-namespace "$tag") ;;
		redis) qargs+=(--redis-addr "$REDIS_ADDR" --store-namespace "$tag") ;;
		esac
		"$work/gearmand" -p "$port" -L 127.0.0.1 "${qargs[@]}" -l none -P "$dir/pid" >/dev/null 2>&1 &
	fi
	pid=$!
	wait_port "$port"
	line=$("$work/gearbench" --addr "127.0.0.1:$port" --workload "$workload" --jobs "$jobs" \
		--conns "$CONNS" --window "$WINDOW" --workers "$WORKERS" --payload "$PAYLOAD")
	kill "$pid"
	wait "$pid" 2>/dev/null || true
	rm -rf "$dir"
	cleanup "$server" "$queue" "$tag"
	echo "$server/$queue $line" >&2
	sed -n 's/.*jobs\/s=\([0-9]*\).*/\1/p' <<<"$line"
}

# cleanup SERVER QUEUE TAG: remove what a run left in PostgreSQL or Redis.
cleanup() {
	case $1/$2 in
	c/Postgres) psql -q "$PG_DSN" -c "DROP TABLE IF EXISTS $3" >/dev/null ;;
	go/postgres) psql -q "$PG_DSN" -c "DELETE FROM gearmand_jobs WHERE namespace = '$3'" >/dev/null ;;
	c/redis) redis-cli -h "${REDIS_ADDR%:*}" -p "${REDIS_ADDR##*:}" --scan --pattern "$3*" | xargs -r redis-cli -h "${REDIS_ADDR%:*}" -p "${REDIS_ADDR##*:}" del >/dev/null ;;
	go/redis) redis-cli -h "${REDIS_ADDR%:*}" -p "${REDIS_ADDR##*:}" --scan --pattern "gearmand:{$3}:*" | xargs -r redis-cli -h "${REDIS_ADDR%:*}" -p "${REDIS_ADDR##*:}" del >/dev/null ;;
	esac
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(nproc) cores; jobs=$JOBS conns=$CONNS window=$WINDOW workers=$WORKERS payload=$PAYLOAD rounds=$ROUNDS"
echo "# C: $("$C_GEARMAND" --version 2>&1 | tr -s '\n' ' ')"
printf '%-22s %-10s %12s %12s %8s\n' "C queue:our queue" workload "C jobs/s" "Go jobs/s" "Go/C"
for pair in $PAIRS; do
	cq=${pair%%:*} gq=${pair##*:}
	for w in $WORKLOADS; do
		: >"$work/c"
		: >"$work/go"
		for _ in $(seq "$ROUNDS"); do
			run c "$cq" "$w" >>"$work/c"
			run go "$gq" "$w" >>"$work/go"
		done
		c=$(median <"$work/c")
		g=$(median <"$work/go")
		printf '%-22s %-10s %12s %12s %8s\n' "$pair" "$w" "$c" "$g" "$(awk -v a="$g" -v b="$c" 'BEGIN {printf "%.2f", a/b}')"
	done
done
