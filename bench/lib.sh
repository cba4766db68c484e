# shellcheck shell=bash
# Shared by bench/compare.sh and bench/replay.sh (sourced, not run): ports,
# throwaway PostgreSQL, Redis and MariaDB servers, and removing what a run left in
# them. The caller sets $work (a scratch directory it removes on exit) and
# calls bench_stop_services from its EXIT trap.

# free_port prints a TCP port that was free a moment ago.
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_port PORT [PID]: wait up to 20s for something to accept on PORT,
# failing early when PID exits.
wait_port() {
	for _ in $(seq 400); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
		if [ -n "${2:-}" ] && ! kill -0 "$2" 2>/dev/null; then
			echo "bench: the server for port $1 exited" >&2
			return 1
		fi
		sleep 0.05
	done
	echo "bench: nothing accepts on port $1" >&2
	return 1
}

# bench_need_postgres: set PG_DSN, starting a throwaway PostgreSQL in $work
# when PG_DSN is not set. Returns 1 (with a message) when neither works.
bench_need_postgres() {
	if [ -n "${PG_DSN:-}" ]; then
		psql -q "$PG_DSN" -c 'SELECT 1' >/dev/null || { echo "bench: PG_DSN=$PG_DSN does not answer" >&2; return 1; }
		return 0
	fi
	local bin port as=()
	bin=$(dirname "$(command -v initdb 2>/dev/null || compgen -G '/usr/lib/postgresql/*/bin/initdb' | sort -V | tail -1)")
	if [ ! -x "$bin/initdb" ] || [ ! -x "$bin/pg_ctl" ]; then
		echo "bench: no PG_DSN and no initdb/pg_ctl to start a throwaway PostgreSQL (apt-get install postgresql)" >&2
		return 1
	fi
	if [ "$(id -u)" = 0 ]; then
		as=(setpriv --reuid postgres --regid postgres --init-groups)
	fi
	port=$(free_port)
	mkdir -p "$work/pg"
	[ "$(id -u)" = 0 ] && chown postgres: "$work/pg" && chmod a+x "$work"
	"${as[@]}" "$bin/initdb" -D "$work/pg/data" -U postgres -A trust -E UTF8 >"$work/pg/initdb.log" 2>&1 ||
		{ cat "$work/pg/initdb.log" >&2; return 1; }
	"${as[@]}" "$bin/pg_ctl" -D "$work/pg/data" -l "$work/pg/log" -w -o "-p $port -k $work/pg -c listen_addresses=127.0.0.1 -c fsync=on" start >/dev/null ||
		{ cat "$work/pg/log" >&2; return 1; }
	bench_pg_stop=("${as[@]}" "$bin/pg_ctl" -D "$work/pg/data" -m fast -w stop)
	PG_DSN="postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
	echo "bench: started a throwaway PostgreSQL at $PG_DSN" >&2
}

# bench_need_redis: set REDIS_ADDR, starting a throwaway redis-server when
# it is not set. Returns 1 (with a message) when neither works.
bench_need_redis() {
	if [ -n "${REDIS_ADDR:-}" ]; then
		redis-cli -h "${REDIS_ADDR%:*}" -p "${REDIS_ADDR##*:}" ping >/dev/null ||
			{ echo "bench: REDIS_ADDR=$REDIS_ADDR does not answer" >&2; return 1; }
		return 0
	fi
	if ! command -v redis-server >/dev/null; then
		echo "bench: no REDIS_ADDR and no redis-server to start (apt-get install redis-server)" >&2
		return 1
	fi
	local port
	port=$(free_port)
	redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no --dir "$work" >"$work/redis.log" 2>&1 &
	bench_redis_pid=$!
	wait_port "$port" "$bench_redis_pid" || return 1
	REDIS_ADDR=127.0.0.1:$port
	echo "bench: started a throwaway redis-server at $REDIS_ADDR" >&2
}

# bench_need_mysql: set MYSQL_HOST, MYSQL_PORT, MYSQL_USER, MYSQL_PASSWORD
# and MYSQL_DB, starting a throwaway MariaDB in $work (mariadb-install-db,
# mariadbd; its defaults, so every commit is flushed to disk) when
# MYSQL_HOST is not set. Returns 1 (with a message) when neither works.
bench_need_mysql() {
	if [ -n "${MYSQL_HOST:-}" ]; then
		: "${MYSQL_PORT:=3306}" "${MYSQL_DB:=gearman}"
		bench_mysql -e 'SELECT 1' >/dev/null || { echo "bench: MYSQL_HOST=$MYSQL_HOST does not answer" >&2; return 1; }
		return 0
	fi
	local server as_root=()
	server=$(command -v mariadbd || echo /usr/sbin/mariadbd)
	if ! command -v mariadb-install-db >/dev/null || [ ! -x "$server" ]; then
		echo "bench: no MYSQL_HOST and no mariadb-install-db/mariadbd to start a throwaway MariaDB (apt-get install mariadb-server)" >&2
		return 1
	fi
	[ "$(id -u)" = 0 ] && as_root=(--user=root)
	mkdir -p "$work/my"
	mariadb-install-db --no-defaults --datadir="$work/my/data" "${as_root[@]}" --auth-root-authentication-method=normal \
		--skip-test-db >"$work/my/install.log" 2>&1 || { cat "$work/my/install.log" >&2; return 1; }
	MYSQL_PORT=$(free_port)
	"$server" --no-defaults --datadir="$work/my/data" "${as_root[@]}" --socket="$work/my/sock" --port="$MYSQL_PORT" \
		--bind-address=127.0.0.1 --skip-name-resolve --log-error="$work/my/log" >/dev/null 2>&1 &
	bench_mysql_pid=$!
	wait_port "$MYSQL_PORT" "$bench_mysql_pid" || { cat "$work/my/log" >&2; return 1; }
	mariadb --no-defaults -S "$work/my/sock" -u root -e "CREATE USER bench@'%' IDENTIFIED BY 'bench'; GRANT ALL ON *.* TO bench@'%'; CREATE DATABASE gearman" ||
		return 1
	MYSQL_HOST=127.0.0.1 MYSQL_USER=bench MYSQL_PASSWORD=bench MYSQL_DB=gearman
	echo "bench: started a throwaway MariaDB at $MYSQL_HOST:$MYSQL_PORT" >&2
}

# bench_mysql ARGS...: the mariadb client on MYSQL_DB.
bench_mysql() {
	mariadb --no-defaults -h "$MYSQL_HOST" -P "$MYSQL_PORT" -u "$MYSQL_USER" --password="$MYSQL_PASSWORD" "$MYSQL_DB" "$@"
}

# bench_stop_services stops the throwaway servers started above.
bench_stop_services() {
	if [ -n "${bench_mysql_pid:-}" ]; then
		kill "$bench_mysql_pid" 2>/dev/null || true
		wait "$bench_mysql_pid" 2>/dev/null || true
	fi
	if [ -n "${bench_redis_pid:-}" ]; then
		kill "$bench_redis_pid" 2>/dev/null || true
		wait "$bench_redis_pid" 2>/dev/null || true
	fi
	if [ -n "${bench_pg_stop:-}" ]; then
		"${bench_pg_stop[@]}" >/dev/null 2>&1 || true
	fi
}

# redis_del PATTERN: delete every key matching PATTERN at REDIS_ADDR.
redis_del() {
	redis-cli -h "${REDIS_ADDR%:*}" -p "${REDIS_ADDR##*:}" --scan --pattern "$1" |
		xargs -r -n 1000 redis-cli -h "${REDIS_ADDR%:*}" -p "${REDIS_ADDR##*:}" del >/dev/null
}

# cleanup_store SIDE QUEUE TAG: remove what a run with table, prefix or
# namespace TAG left in PostgreSQL or Redis (SIDE is c or go).
cleanup_store() {
	case $1/$2 in
	c/Postgres) psql -q "$PG_DSN" -c "DROP TABLE IF EXISTS $3" >/dev/null ;;
	go/postgres) psql -q "$PG_DSN" -c "DELETE FROM gearmand_jobs WHERE namespace = '$3'; DELETE FROM gearmand_owners WHERE namespace = '$3'" >/dev/null ;;
	c/redis) redis_del "$3*" ;;
	go/redis) redis_del "gearmand:{$3}:*" ;;
	*/MySQL) bench_mysql -e "DROP TABLE IF EXISTS $3" ;;
	esac
}
