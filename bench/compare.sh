#!/usr/bin/env bash
# Compare our gearmand with C gearmand (Debian gearman-job-server) on
# loopback, with the same load generator (cmd/gearbench), queue against
# matching queue. One command runs the whole matrix:
#
#   1. for each PAIR (C queue:our store) and each of its workloads, ROUNDS
#      rounds alternating C and ours at CONNS connections × WINDOW in flight,
#      each run on a fresh server with an empty store;
#   2. a sweep of SWEEP_CONNS connection counts (one run per side each) for
#      the SWEEP_WORKLOADS, for the throughput-against-connections plots;
#   3. bench/replay.sh: REPLAY_JOBS queued jobs replayed after SIGKILL on
#      each of our durable stores, and memory per queued job.
#
# Everything lands in OUT: results.jsonl (one JSON object per run, from
# gearbench run --json), report.md (the Markdown tables of `gearbench
# report`: medians, ratios ours/C, latency percentiles), replay.md, and the
# PNG plots of `gearbench plot`. The tables are printed too.
#
#   bench/compare.sh                          # the full matrix, ~10 min on 2 cores
#   QUICK=1 bench/compare.sh                  # small counts, one round: ~3 min
#   PAIRS="libsqlite3:bolt" ROUNDS=5 OUT=/tmp/bolt bench/compare.sh
#   REPLAY=0 SWEEP_CONNS= bench/compare.sh    # no replay, no sweep
#
# The builtin pair runs every workload; the durable pairs run the
# background ones (DURABLE_WORKLOADS), since foreground jobs are never
# stored. C gearmand commits one job at a time to sqlite and PostgreSQL, so
# its runs there use SLOW_JOBS jobs (rates, not counts, are compared).
# PostgreSQL, Redis and MariaDB: the servers at PG_DSN, REDIS_ADDR and
# MYSQL_HOST (with MYSQL_PORT, MYSQL_USER, MYSQL_PASSWORD, MYSQL_DB) when
# set, otherwise throwaway ones started here (initdb/pg_ctl, redis-server,
# mariadb-install-db/mariadbd) and stopped at the end; every run gets its
# own table, key prefix or namespace, removed after the run. C gearmand
# commits one job at a time to MySQL too.
#
# Exits 1 when a run failed (errors or missing jobs; see results.jsonl).
# Needs /usr/sbin/gearmand: apt-get install gearman-job-server
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh

if [ "${QUICK:-0}" = 1 ]; then
	: "${ROUNDS:=1}" "${JOBS:=5000}" "${SLOW_JOBS:=300}" "${LARGE_JOBS:=30}" "${SWEEP_CONNS:=1 16}" "${REPLAY_JOBS:=50000}"
fi
ROUNDS=${ROUNDS:-3}
JOBS=${JOBS:-30000}
SLOW_JOBS=${SLOW_JOBS:-1000}
LARGE_JOBS=${LARGE_JOBS:-300}
CONNS=${CONNS:-4}
WINDOW=${WINDOW:-16}
WORKERS=${WORKERS:-4}
PAYLOAD=${PAYLOAD:-64}
PAIRS=${PAIRS:-builtin:builtin libsqlite3:bolt libsqlite3:pebble libsqlite3:libsqlite3 MySQL:MySQL Postgres:postgres redis:redis}
MEMORY_WORKLOADS=${MEMORY_WORKLOADS:-submit drain roundtrip storm large mixed}
DURABLE_WORKLOADS=${DURABLE_WORKLOADS:-submit drain large}
SWEEP_CONNS=${SWEEP_CONNS-1 2 16 32}
SWEEP_WORKLOADS=${SWEEP_WORKLOADS:-submit roundtrip}
REPLAY=${REPLAY:-1}
REPLAY_JOBS=${REPLAY_JOBS:-1000000}
OUT=${OUT:-bench/results/$(date -u +%Y%m%dT%H%MZ)}
C_GEARMAND=${C_GEARMAND:-/usr/sbin/gearmand}

if [ ! -x "$C_GEARMAND" ]; then
	echo "compare.sh: $C_GEARMAND not found; install Debian package gearman-job-server" >&2
	exit 1
fi
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
: >"$OUT/results.jsonl"

work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait; bench_stop_services; rm -rf "$work"' EXIT
go build -o "$work/gearmand" ./cmd/gearmand
go build -o "$work/gearbench" ./cmd/gearbench

case " $PAIRS " in *" Postgres:"*) bench_need_postgres ;; esac
case " $PAIRS " in *" redis:"*) bench_need_redis ;; esac
case " $PAIRS " in *" MySQL:"*) bench_need_mysql ;; esac
export PG_DSN REDIS_ADDR MYSQL_HOST MYSQL_PORT MYSQL_USER MYSQL_PASSWORD MYSQL_DB

runs=0 failures=0

# run SIDE QUEUE PAIR WORKLOAD CONNS ROUND: start a fresh server (C or ours)
# with an empty store, run one workload, append its result to results.jsonl.
# ROUND 0 marks a sweep run: report and plot take latencies from the rounds.
run() {
	local side=$1 queue=$2 pair=$3 workload=$4 conns=$5 round=$6
	local port pid jobs=$JOBS dir qargs=(-q "$queue") bin=$work/gearmand
	runs=$((runs + 1))
	local tag="bench_$$_$runs"
	port=$(free_port)
	dir=$(mktemp -d "$work/run.XXXX")
	case $side/$queue in
	c/libsqlite3) qargs+=(--libsqlite3-db "$dir/q.sqlite") jobs=$SLOW_JOBS ;;
	c/Postgres) qargs+=(--libpq-conninfo "$PG_DSN" --libpq-table "$tag") jobs=$SLOW_JOBS ;;
	c/redis) qargs+=(--redis-server "${REDIS_ADDR%:*}" --redis-port "${REDIS_ADDR##*:}" --redis-prefix "$tag") ;;
	c/MySQL) jobs=$SLOW_JOBS ;&
	go/MySQL) qargs+=(--mysql-host "$MYSQL_HOST" --mysql-port "$MYSQL_PORT" --mysql-user "$MYSQL_USER"
		--mysql-password "$MYSQL_PASSWORD" --mysql-db "$MYSQL_DB" --mysql-table "$tag") ;;
	go/libsqlite3) qargs+=(--libsqlite3-db "$dir/q.sqlite") ;;
	go/bolt) qargs+=(--bolt-file "$dir/q.db") ;;
	go/pebble) qargs+=(--pebble-dir "$dir/q.pebble") ;;
	go/postgres) qargs+=(--dsn "$PG_DSN" --store-namespace "$tag") ;;
	go/redis) qargs+=(--redis-addr "$REDIS_ADDR" --store-namespace "$tag") ;;
	esac
	[ "$side" = c ] && bin=$C_GEARMAND
	[ "$workload" = large ] && jobs=$LARGE_JOBS
	"$bin" -p "$port" -L 127.0.0.1 "${qargs[@]}" -l none -P "$dir/pid" >"$dir/log" 2>&1 &
	pid=$!
	if wait_port "$port" "$pid"; then
		if ! "$work/gearbench" --addr "127.0.0.1:$port" --workload "$workload" --jobs "$jobs" \
			--conns "$conns" --window "$WINDOW" --workers "$WORKERS" $([ "$workload" = large ] || echo --payload "$PAYLOAD") \
			--side "$side" --pair "$pair" --round "$round" --json "$OUT/results.jsonl" --progress 10s \
			| sed "s|^|$side/$queue |" >&2; then
			failures=$((failures + 1))
		fi
	else
		cat "$dir/log" >&2
		failures=$((failures + 1))
	fi
	kill "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	rm -rf "$dir"
	cleanup_store "$side" "$queue" "$tag"
}

# workloads_of PAIR: the workloads a pair runs.
workloads_of() {
	case $1 in
	builtin:*) echo "$MEMORY_WORKLOADS" ;;
	*) echo "$DURABLE_WORKLOADS" ;;
	esac
}

{
	echo "# $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
	echo "# $(awk '/^MemTotal/ {printf "%.1f GiB RAM", $2 / 1048576}' /proc/meminfo), Linux $(uname -r), $(go version | cut -d' ' -f3-)"
	echo "# C: $("$C_GEARMAND" --version 2>&1 | grep -m 1 .); ours: $(git rev-parse --short HEAD)"
	echo "# jobs=$JOBS slow_jobs=$SLOW_JOBS large_jobs=$LARGE_JOBS conns=$CONNS window=$WINDOW workers=$WORKERS payload=$PAYLOAD rounds=$ROUNDS sweep=[$SWEEP_CONNS]"
} | tee "$OUT/setup.txt" >&2

for pair in $PAIRS; do
	cq=${pair%%:*} gq=${pair##*:}
	for w in $(workloads_of "$pair"); do
		for r in $(seq "$ROUNDS"); do
			run c "$cq" "$pair" "$w" "$CONNS" "$r"
			run go "$gq" "$pair" "$w" "$CONNS" "$r"
		done
	done
	for w in $(workloads_of "$pair"); do
		case " $SWEEP_WORKLOADS " in *" $w "*) ;; *) continue ;; esac
		for n in $SWEEP_CONNS; do
			[ "$n" = "$CONNS" ] && continue
			run c "$cq" "$pair" "$w" "$n" 0
			run go "$gq" "$pair" "$w" "$n" 0
		done
	done
done

"$work/gearbench" report -in "$OUT/results.jsonl" | tee "$OUT/report.md"
"$work/gearbench" plot -in "$OUT/results.jsonl" -out "$OUT" >/dev/null

if [ "$REPLAY" = 1 ]; then
	stores=builtin
	for pair in $PAIRS; do
		[ "${pair##*:}" = builtin ] || stores="$stores ${pair##*:}"
	done
	echo
	BIN_DIR=$work JOBS=$REPLAY_JOBS STORES="$stores" C_BUILTIN=1 bench/replay.sh | tee "$OUT/replay.md" || failures=$((failures + 1))
fi

echo "compare.sh: $runs runs, $failures failed; results in $OUT" >&2
[ "$failures" = 0 ]
