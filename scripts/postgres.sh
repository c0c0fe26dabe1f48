#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the test suite and benchmarks.
#
#   scripts/postgres.sh start [DIR]        initdb (if needed) and start a cluster in DIR, print its URL
#   scripts/postgres.sh stop [DIR]         stop it and delete DIR
#   scripts/postgres.sh run [DIR] -- CMD   start, run CMD with ENROLKIT_TEST_POSTGRES_URL set, stop
#   scripts/postgres.sh found              print the PostgreSQL bin directory, fail if none
#
# DIR defaults to $ENROLKIT_PG_DIR or ${TMPDIR:-/tmp}/enrolkit-postgres. The cluster listens on
# 127.0.0.1 only, at port $ENROLKIT_PG_PORT (default 54329) or the next free one, and trusts every
# local connection: it is for tests, never for data. PostgreSQL refuses to run as root, so under root
# the server runs as the `postgres` system user (created if missing). Starting twice reuses the
# running cluster. Only the URL goes to stdout; progress and errors go to stderr.
set -euo pipefail

MARKER=.enrolkit-postgres   # written into DIR so `stop` never deletes a directory it did not make
BASE_PORT=${ENROLKIT_PG_PORT:-54329}

die() { echo "postgres.sh: $*" >&2; exit 1; }
say() { echo "postgres.sh: $*" >&2; }

# The directory holding initdb, pg_ctl and pg_isready: from PATH, else the newest Debian install.
find_bindir() {
    local initdb
    if initdb=$(command -v initdb); then
        dirname "$(readlink -f "$initdb")"
        return
    fi
    local candidate
    for candidate in $(printf '%s\n' /usr/lib/postgresql/*/bin/initdb | sort -V -r); do
        [[ -x $candidate ]] && { dirname "$candidate"; return; }
    done
    die "PostgreSQL not found (no initdb on PATH or in /usr/lib/postgresql/*/bin)"
}

# Run a command as the cluster's owner: `postgres` under root (from DIR, as root's working
# directory may be closed to it), the caller otherwise.
as_owner() {
    if [[ $EUID -ne 0 ]]; then
        "$@"
    elif command -v runuser >/dev/null; then
        (cd "$DIR" && runuser -u postgres -- "$@")
    else
        (cd "$DIR" && su -s /bin/sh postgres -c "$(printf '%q ' "$@")")
    fi
}

ensure_postgres_user() {
    [[ $EUID -eq 0 ]] || return 0
    id -u postgres >/dev/null 2>&1 && return 0
    say "creating system user postgres"
    useradd --system --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin postgres
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

url_for() { echo "postgresql://postgres@127.0.0.1:$1/postgres"; }

running() { as_owner "$BIN/pg_ctl" status -D "$DIR/data" >/dev/null 2>&1; }

wait_ready() {
    local port=$1
    for _ in $(seq 1 60); do
        if [[ -x $BIN/pg_isready ]]; then
            "$BIN/pg_isready" -q -h 127.0.0.1 -p "$port" -U postgres -d postgres && return 0
        elif "$BIN/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -Atqc 'select 1' \
            >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.5
    done
    die "server on port $port did not become ready (log: $DIR/server.log)"
}

init_cluster() {
    if [[ -e $DIR && ! -e $DIR/$MARKER && -n $(ls -A "$DIR") ]]; then
        die "$DIR exists, is not empty and was not made by this script"
    fi
    mkdir -p "$DIR"
    touch "$DIR/$MARKER"
    [[ $EUID -eq 0 ]] && chown postgres: "$DIR"
    chmod 700 "$DIR"
    as_owner test -w "$DIR" || die "user postgres cannot write to $DIR (pick a DIR under /tmp)"
    say "initdb in $DIR/data"
    # Speed over durability: the data is thrown away after the run.
    as_owner "$BIN/initdb" -D "$DIR/data" -U postgres --auth=trust --encoding=UTF8 --no-locale \
        --no-sync >"$DIR/initdb.log" 2>&1 || { cat "$DIR/initdb.log" >&2; die "initdb failed"; }
    as_owner tee -a "$DIR/data/postgresql.conf" >/dev/null <<EOF

# enrolkit test cluster
listen_addresses = '127.0.0.1'
unix_socket_directories = '$DIR'
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
}

# Start the cluster on the first free port from BASE_PORT (or the port it had before).
start_server() {
    local port
    port=$(cat "$DIR/port" 2>/dev/null || echo "$BASE_PORT")
    for _ in $(seq 1 20); do
        if ! port_busy "$port" \
            && as_owner "$BIN/pg_ctl" start -w -t 60 -D "$DIR/data" -l "$DIR/server.log" \
                -o "-p $port" >/dev/null; then
            as_owner tee "$DIR/port" >/dev/null <<<"$port"
            wait_ready "$port"
            return
        fi
        port=$((port + 1))
    done
    tail -n 20 "$DIR/server.log" >&2 || true
    die "could not start PostgreSQL on ports $BASE_PORT..$port"
}

cmd_start() {
    ensure_postgres_user
    [[ -e $DIR/data/PG_VERSION ]] || init_cluster
    if running; then
        say "reusing the cluster running in $DIR"
        wait_ready "$(cat "$DIR/port")"
    else
        start_server
    fi
    url_for "$(cat "$DIR/port")"
}

cmd_stop() {
    [[ -e $DIR ]] || return 0
    [[ -e $DIR/$MARKER ]] || die "$DIR was not made by this script; not touching it"
    if [[ -e $DIR/data/PG_VERSION ]] && running; then
        as_owner "$BIN/pg_ctl" stop -D "$DIR/data" -m fast -w >/dev/null
    fi
    rm -rf "$DIR"
    say "stopped and removed $DIR"
}

cmd_run() {
    local url
    trap cmd_stop EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    url=$(cmd_start)
    say "ENROLKIT_TEST_POSTGRES_URL=$url"
    ENROLKIT_TEST_POSTGRES_URL=$url "$@"
}

usage() { sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

action=${1:-}
shift || true
DIR=${ENROLKIT_PG_DIR:-${TMPDIR:-/tmp}/enrolkit-postgres}
if [[ $# -gt 0 && $1 != -- ]]; then
    DIR=$1
    shift
fi
[[ ${1:-} == -- ]] && shift
DIR=$(readlink -m "$DIR")
[[ $DIR != / ]] || die "refusing to use / as the cluster directory"

case $action in
    start) BIN=$(find_bindir); cmd_start ;;
    stop) BIN=$(find_bindir); cmd_stop ;;
    run) [[ $# -gt 0 ]] || usage; BIN=$(find_bindir); cmd_run "$@" ;;
    found) find_bindir ;;
    *) usage ;;
esac
