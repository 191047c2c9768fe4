#!/usr/bin/env bash
# Start PgBouncer in transaction mode on 127.0.0.1, in front of the throwaway PostgreSQL that
# .ci/postgres.sh started, for the tests that the store works through it (docs/scale.md).
#
#   source .ci/postgres.sh && source .ci/pgbouncer.sh
#       # exports OPENLFR_TEST_PGBOUNCER_URL; call openlfr_pgbouncer_stop when done
#
# Installs Debian's `pgbouncer` package if the binary is missing (1.18 on Debian 12: no
# prepared statements in transaction mode, which is what the tests check the store copes with).
# Every database of the server is reachable by name through it, as user `openlfr` with no
# password (test data only, loopback only). Runs as the `postgres` user when run as root, since
# PgBouncer refuses to run as root.

_openlfr_pgbouncer_start() {
    if [ -z "${OPENLFR_TEST_POSTGRES_URL:-}" ]; then
        echo "pgbouncer.sh: OPENLFR_TEST_POSTGRES_URL is not set: source .ci/postgres.sh first" >&2
        return 1
    fi
    local bin
    bin=$(command -v pgbouncer || ls /usr/sbin/pgbouncer 2>/dev/null || true)
    if [ -z "$bin" ]; then
        echo "pgbouncer.sh: installing pgbouncer with apt-get" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >&2 && apt-get install -y -qq pgbouncer >&2 || return 1
        bin=$(command -v pgbouncer || echo /usr/sbin/pgbouncer)
    fi
    local dir port pg_port as=()
    # postgresql+psycopg://openlfr@127.0.0.1:<port>/openlfr_test -> <port>
    pg_port=$(python3 -c 'import sys, urllib.parse as u; print(u.urlsplit(sys.argv[1]).port)' \
        "$OPENLFR_TEST_POSTGRES_URL") || return 1
    dir=$(mktemp -d /tmp/openlfr-pgbouncer.XXXXXX) || return 1
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()') || return 1
    cat >"$dir/pgbouncer.ini" <<EOF
[databases]
* = host=127.0.0.1 port=$pg_port

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = trust
auth_file = $dir/users.txt
pool_mode = transaction
max_client_conn = 1000
default_pool_size = 20
server_idle_timeout = 10
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
EOF
    echo '"openlfr" ""' >"$dir/users.txt"
    if [ "$(id -u)" = 0 ]; then
        chown -R postgres: "$dir" || return 1
        as=(runuser -u postgres --)
    fi
    "${as[@]}" "$bin" -d "$dir/pgbouncer.ini" || { cat "$dir/pgbouncer.log" >&2; return 1; }
    local i
    for i in $(seq 1 50); do  # -d returns before the port is open
        python3 -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 0.2).close()' \
            "$port" 2>/dev/null && break
        sleep 0.1
    done
    export OPENLFR_PGBOUNCER_DIR="$dir"
    export OPENLFR_TEST_PGBOUNCER_URL="postgresql+psycopg://openlfr@127.0.0.1:$port/openlfr_test"
    echo "OPENLFR_TEST_PGBOUNCER_URL=$OPENLFR_TEST_PGBOUNCER_URL"
}

# Stop the PgBouncer started above and remove its folder.
openlfr_pgbouncer_stop() {
    [ -n "${OPENLFR_PGBOUNCER_DIR:-}" ] || return 0
    local pid
    pid=$(cat "$OPENLFR_PGBOUNCER_DIR/pgbouncer.pid" 2>/dev/null || true)
    if [ -n "$pid" ]; then
        kill -INT "$pid" 2>/dev/null || true  # SIGINT: immediate shutdown
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -rf "$OPENLFR_PGBOUNCER_DIR"
    unset OPENLFR_PGBOUNCER_DIR OPENLFR_TEST_PGBOUNCER_URL
}

_openlfr_pgbouncer_start
