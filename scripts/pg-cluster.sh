#!/usr/bin/env bash
# A private PostgreSQL cluster for the tests, reachable only over a Unix socket.
#
#   scripts/pg-cluster.sh start DIR     create DIR (0700), initdb, start; prints the URL
#   scripts/pg-cluster.sh start-tls DIR PORT CERT KEY
#                                       the same, also on 127.0.0.1:PORT with TLS only
#                                       (CERT/KEY: the server's certificate chain and key)
#   scripts/pg-cluster.sh restart DIR   immediate restart (a crash, as the server sees it)
#   scripts/pg-cluster.sh stop DIR      immediate stop, then remove DIR
#
# The printed URL names the superuser `postgres` (trust over the socket in
# DIR; no TCP listener). Roles named `canary` or in the group
# `authvault_scram` must log in with a SCRAM password, so tests can check a
# password never leaks. The binaries come from AUTHVAULT_TEST_PGBIN, else the
# newest /usr/lib/postgresql/*/bin. Run as root, the server runs as the user
# `postgres` (it refuses root). The server's output goes to DIR/log, never to
# an inherited pipe: a caller capturing the URL does not wait for the server.
set -euo pipefail

PGBIN=${AUTHVAULT_TEST_PGBIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)}
[[ -x "$PGBIN/initdb" ]] || {
    echo "pg-cluster.sh: PostgreSQL binaries not found (apt-get install postgresql)" >&2
    exit 1
}

as_pg() { # the server refuses to run as root
    if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}
server_options() { # DIR
    local listen="''"
    [[ ! -f "$1/tls-port" ]] || listen="'127.0.0.1' -c port=$(cat "$1/tls-port") -c ssl=on"
    printf '%s' "-c listen_addresses=$listen -c unix_socket_directories='$1' -c max_connections=300"
}

usage() {
    echo "usage: scripts/pg-cluster.sh start|stop|restart DIR | start-tls DIR PORT CERT KEY" >&2
    exit 2
}
[[ $# -ge 2 ]] || usage
cmd=$1 dir=$2
case $cmd in
start-tls)
    [[ $# -eq 5 ]] || usage
    mkdir -p "$dir"
    echo "$3" >"$dir/tls-port"
    cp "$4" "$dir/server.crt"
    cp "$5" "$dir/server.key"
    ;&
start)
    [[ $cmd == start-tls || $# -eq 2 ]] || usage
    mkdir -p "$dir"
    chmod 700 "$dir"
    [[ $(id -u) -ne 0 ]] || chown postgres: "$dir"
    as_pg "$PGBIN/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 --locale=C --no-sync \
        >"$dir/initdb.log" 2>&1 || {
        cat "$dir/initdb.log" >&2
        exit 1
    }
    # Checked top down: these roles need their password, everyone else is trusted.
    sed -i '1i local all canary scram-sha-256\nlocal all +authvault_scram scram-sha-256' \
        "$dir/data/pg_hba.conf"
    if [[ -f "$dir/tls-port" ]]; then # TCP takes TLS only
        mv "$dir/server.crt" "$dir/server.key" "$dir/data/"
        chmod 600 "$dir/data/server.key"
        [[ $(id -u) -ne 0 ]] || chown postgres: "$dir/data/server.crt" "$dir/data/server.key"
        sed -i '1i hostnossl all all 0.0.0.0/0 reject\nhostssl all all 127.0.0.1/32 trust' \
            "$dir/data/pg_hba.conf"
    fi
    as_pg "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 30 -o "$(server_options "$dir")" \
        start >/dev/null || {
        cat "$dir/log" >&2
        exit 1
    }
    port=""
    [[ ! -f "$dir/tls-port" ]] || port=":$(cat "$dir/tls-port")"
    url="postgres://postgres@localhost$port/postgres?host=$dir"
    "$PGBIN/psql" "$url" -Atqc 'CREATE ROLE authvault_scram NOLOGIN' >/dev/null
    echo "$url"
    ;;
restart)
    as_pg "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 30 -m immediate \
        -o "$(server_options "$dir")" restart >/dev/null
    ;;
stop)
    if [[ -d "$dir/data" ]]; then
        as_pg "$PGBIN/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
    ;;
*)
    usage
    ;;
esac
