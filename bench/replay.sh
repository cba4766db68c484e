#!/usr/bin/env bash
# Replay after a crash: queue JOBS background jobs (PAYLOAD bytes each) on
# our server with each durable store, SIGKILL it, start it again on the same
# store, and time until the admin `status` command lists all of them. Also
# reports the server's resident memory per queued job after replay.
#
#   bench/replay.sh                       # 1,000,000 jobs, bolt and pebble
#   JOBS=100000 STORES=bolt bench/replay.sh
#   STORES="postgres redis" bench/replay.sh   # PG_DSN, REDIS_ADDR as in compare.sh
set -euo pipefail
cd "$(dirname "$0")/.."

JOBS=${JOBS:-1000000}
PAYLOAD=${PAYLOAD:-64}
STORES=${STORES:-bolt pebble}
CONNS=${CONNS:-4}
WINDOW=${WINDOW:-64}
PG_DSN=${PG_DSN:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}
REDIS_ADDR=${REDIS_ADDR:-127.0.0.1:6379}
ns="replay_$$"

work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
go build -o "$work/gearmand" ./cmd/gearmand
go build -o "$work/gearbench" ./cmd/gearbench

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# total PORT: the TOTAL column summed over `status`, or nothing if the
# server does not answer yet.
total() {
	{ exec 3<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null || return 0
	printf 'status\r\n' >&3
	awk -F'\t' '$0 == "." {exit} {t += $2} END {print t + 0}' <&3
	exec 3<&-
}

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

printf '%-8s %10s %12s %14s %16s\n' store jobs "submit s" "replay s" "bytes/job (RSS)"
for st in $STORES; do
	port=$(free_port)
	case $st in
	bolt) args=(-q bolt --bolt-file "$work/$st.db") ;;
	pebble) args=(-q pebble --pebble-dir "$work/$st.pebble") ;;
	postgres) args=(-q postgres --dsn "$PG_DSN" --store-namespace "$ns") ;;
	redis) args=(-q redis --redis-addr "$REDIS_ADDR" --store-namespace "$ns") ;;
	*) echo "replay.sh: unknown store $st" >&2; exit 1 ;;
	esac
	"$work/gearmand" -p "$port" -L 127.0.0.1 "${args[@]}" -l none -P "$work/pid" &
	pid=$!
	until [ -n "$(total "$port")" ]; do sleep 0.05; done
	base=$(rss_kib "$pid")
	start=$(date +%s.%N)
	"$work/gearbench" --addr "127.0.0.1:$port" --workload submit --jobs "$JOBS" \
		--conns "$CONNS" --window "$WINDOW" --payload "$PAYLOAD" >&2
	submitted=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN {printf "%.1f", e-s}')
	kill -9 "$pid"
	wait "$pid" 2>/dev/null || true

	start=$(date +%s.%N)
	"$work/gearmand" -p "$port" -L 127.0.0.1 "${args[@]}" -l none -P "$work/pid" &
	pid=$!
	until [ "$(total "$port")" = "$JOBS" ]; do
		if ! kill -0 "$pid" 2>/dev/null; then
			echo "replay.sh: the server exited during replay" >&2
			exit 1
		fi
		sleep 0.02
	done
	replayed=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN {printf "%.2f", e-s}')
	rss=$(rss_kib "$pid")
	printf '%-8s %10d %12s %14s %16d\n' "$st" "$JOBS" "$submitted" "$replayed" $(((rss - base) * 1024 / JOBS))
	kill "$pid"
	wait "$pid" 2>/dev/null || true
	case $st in
	postgres) psql -q "$PG_DSN" -c "DELETE FROM gearmand_jobs WHERE namespace = '$ns'" >/dev/null ;;
	redis) redis-cli -h "${REDIS_ADDR%:*}" -p "${REDIS_ADDR##*:}" --scan --pattern "gearmand:{$ns}:*" |
		xargs -r -n 1000 redis-cli -h "${REDIS_ADDR%:*}" -p "${REDIS_ADDR##*:}" del >/dev/null ;;
	esac
done
