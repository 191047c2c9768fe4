#!/usr/bin/env bash
# Start a throwaway PostgreSQL server on 127.0.0.1 for the store tests.
#
#   source .ci/postgres.sh      # exports OPENLFR_TEST_POSTGRES_URL; call openlfr_pg_stop when done
#   bash .ci/postgres.sh        # same, prints the URL and leaves the server running
#
# Installs the Debian `postgresql` package if no server binaries are found, initialises a
# cluster in a temporary folder (owned by the `postgres` user when run as root, since
# PostgreSQL refuses to run as root), starts it on a free port with durability switched off
# (test data only), and creates the database `openlfr_test` owned by superuser `openlfr`.

_openlfr_pg_start() {
    local bin
    bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    if [ -z "$bin" ]; then
        echo "postgres.sh: installing postgresql with apt-get" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >&2 && apt-get install -y -qq postgresql >&2 || return 1
        bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
    fi
    local dir port as=()
    dir=$(mktemp -d /tmp/openlfr-pg.XXXXXX) || return 1
    if [ "$(id -u)" = 0 ]; then
        chown postgres: "$dir" || return 1
        as=(runuser -u postgres --)
    fi
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()') || return 1
    "${as[@]}" "$bin/initdb" -D "$dir/data" -U openlfr -A trust --no-sync -E UTF8 >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; return 1; }
    "${as[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-h 127.0.0.1 -p $port -k $dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
        start >/dev/null || { cat "$dir/server.log" >&2; return 1; }
    "${as[@]}" "$bin/createdb" -h 127.0.0.1 -p "$port" -U openlfr openlfr_test || return 1
    export OPENLFR_PG_DIR="$dir" OPENLFR_PG_BIN="$bin"
    export OPENLFR_TEST_POSTGRES_URL="postgresql+psycopg://openlfr@127.0.0.1:$port/openlfr_test"
    echo "OPENLFR_TEST_POSTGRES_URL=$OPENLFR_TEST_POSTGRES_URL"
}

# Stop the server started above and remove its folder.
openlfr_pg_stop() {
    [ -n "${OPENLFR_PG_DIR:-}" ] || return 0
    local as=()
    [ "$(id -u)" = 0 ] && as=(runuser -u postgres --)
    "${as[@]}" "$OPENLFR_PG_BIN/pg_ctl" -D "$OPENLFR_PG_DIR/data" -m fast -w stop >/dev/null 2>&1
    rm -rf "$OPENLFR_PG_DIR"
    unset OPENLFR_PG_DIR OPENLFR_TEST_POSTGRES_URL
}

_openlfr_pg_start
