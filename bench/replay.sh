#!/usr/bin/env bash
# Replay after a crash: queue JOBS background jobs (PAYLOAD bytes each) on
# our server with each durable store, SIGKILL it, start it again on the same
# store, and time until the admin `status` command lists all of them. Also
# reports the server's resident memory per queued job after the replay
# (RSS growth over the empty server's, divided by JOBS). The store
# "builtin" (memory only) gets no replay, only the memory figure; with
# C_BUILTIN=1 C gearmand's builtin queue is measured the same way, for
# reference. Prints a Markdown table.
#
#   bench/replay.sh                           # 1,000,000 jobs, bolt and pebble
#   JOBS=100000 STORES=bolt bench/replay.sh
#   STORES="builtin postgres redis" C_BUILTIN=1 bench/replay.sh
#
# PostgreSQL and Redis as in bench/compare.sh: PG_DSN and REDIS_ADDR when
# set, otherwise throwaway servers; the run's namespace is removed after.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh

JOBS=${JOBS:-1000000}
PAYLOAD=${PAYLOAD:-64}
STORES=${STORES:-bolt pebble}
CONNS=${CONNS:-4}
WINDOW=${WINDOW:-64}
C_BUILTIN=${C_BUILTIN:-0}
C_GEARMAND=${C_GEARMAND:-/usr/sbin/gearmand}
ns="replay_$$"

work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait; bench_stop_services; rm -rf "$work"' EXIT
# BIN_DIR: where compare.sh already built gearmand and gearbench.
bin_dir=${BIN_DIR:-$work}
if [ -z "${BIN_DIR:-}" ]; then
	go build -o "$work/gearmand" ./cmd/gearmand
	go build -o "$work/gearbench" ./cmd/gearbench
fi
case " $STORES " in *" postgres "*) bench_need_postgres ;; esac
case " $STORES " in *" redis "*) bench_need_redis ;; esac

# total PORT: the TOTAL column summed over `status`, or nothing if the
# server does not answer yet.
total() {
	{ exec 3<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null || return 0
	printf 'status\r\n' >&3
	awk -F'\t' '$0 == "." || $0 == ".\r" {exit} {t += $2} END {print t + 0}' <&3
	exec 3<&-
}

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# start BIN ARGS...: start a server on $port and set $pid.
start() {
	"$@" -p "$port" -L 127.0.0.1 -l none -P "$work/pid" >"$work/log" 2>&1 &
	pid=$!
}

now() { date +%s.%N; }
since() { awk -v s="$1" -v e="$(now)" 'BEGIN {printf "%.1f", e-s}'; }

rows=()
[ "$C_BUILTIN" = 1 ] && rows+=(c/builtin)
for st in $STORES; do rows+=("go/$st"); done

echo "| server/store | jobs | submit s | replay s | bytes/job (RSS) |"
echo "|---|---:|---:|---:|---:|"
for row in "${rows[@]}"; do
	side=${row%%/*} st=${row##*/}
	port=$(free_port)
	bin=$bin_dir/gearmand
	[ "$side" = c ] && bin=$C_GEARMAND
	case $st in
	builtin) args=(-q builtin) ;;
	bolt) args=(-q bolt --bolt-file "$work/$st.db") ;;
	pebble) args=(-q pebble --pebble-dir "$work/$st.pebble") ;;
	postgres) args=(-q postgres --dsn "$PG_DSN" --store-namespace "$ns") ;;
	redis) args=(-q redis --redis-addr "$REDIS_ADDR" --store-namespace "$ns") ;;
	*) echo "replay.sh: unknown store $st" >&2; exit 1 ;;
	esac
	start "$bin" "${args[@]}"
	wait_port "$port" "$pid"
	base=$(rss_kib "$pid")
	start_at=$(now)
	"$bin_dir/gearbench" --addr "127.0.0.1:$port" --workload submit --jobs "$JOBS" \
		--conns "$CONNS" --window "$WINDOW" --payload "$PAYLOAD" --progress 10s | sed "s|^|$row |" >&2
	submitted=$(since "$start_at")
	replayed=–
	if [ "$st" != builtin ]; then
		kill -9 "$pid"
		wait "$pid" 2>/dev/null || true
		start_at=$(now)
		start "$bin" "${args[@]}"
	fi
	until [ "$(total "$port")" = "$JOBS" ]; do
		if ! kill -0 "$pid" 2>/dev/null; then
			cat "$work/log" >&2
			echo "replay.sh: $row: the server exited during replay" >&2
			exit 1
		fi
		sleep 0.02
	done
	[ "$st" != builtin ] && replayed=$(since "$start_at")
	rss=$(rss_kib "$pid")
	printf '| %s | %d | %s | %s | %d |\n' "$row" "$JOBS" "$submitted" "$replayed" $(((rss - base) * 1024 / JOBS))
	kill "$pid"
	wait "$pid" 2>/dev/null || true
	rm -rf "$work/$st.db" "$work/$st.pebble"
	cleanup_store go "$st" "$ns"
done
