#!/usr/bin/env bash
# A private MariaDB for a strata team server on this machine (Debian's mariadb-server,
# which `make servers` installs), on a free port of 127.0.0.1, its data in a directory of
# its own. It prints the variable that names the database:
#
#   eval "$(scripts/mariadb.sh start)"   # STRATA_DATABASE=mysql://strata:PW@127.0.0.1:PORT/strata
#   scripts/mariadb.sh stop              # stops it, removes its data
#
# Nothing of a MariaDB the machine runs itself is touched (--no-defaults). The files live
# in STRATA_MARIADB (default: /tmp/strata-mariadb).
set -euo pipefail
DIR="${STRATA_MARIADB:-/tmp/strata-mariadb}"

start() {
    command -v mariadbd >/dev/null || [ -x /usr/sbin/mariadbd ] \
        || { echo "mariadbd is missing: run \`make servers\` (or apt-get install mariadb-server)" >&2; exit 1; }
    if [ -s "$DIR/pid" ]; then
        echo "a MariaDB from an earlier start is recorded in $DIR: run \`scripts/mariadb.sh stop\` first" >&2
        exit 1
    fi
    mkdir -p "$DIR/tmp"
    local port password
    # A free port: one the kernel hands out for a moment, then lets go.
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null \
        || shuf -i 20000-60000 -n 1)
    password=$(openssl rand -hex 12 2>/dev/null || head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
    TMPDIR="$DIR/tmp" mariadb-install-db --no-defaults --datadir="$DIR/data" --user="$(id -un)" \
        --auth-root-authentication-method=normal --skip-test-db >"$DIR/install.log" 2>&1 \
        || { echo "mariadb-install-db failed; see $DIR/install.log" >&2; exit 1; }
    PATH="$PATH:/usr/sbin" mariadbd --no-defaults --datadir="$DIR/data" --socket="$DIR/sock" \
        --pid-file="$DIR/mariadb.pid" --tmpdir="$DIR/tmp" --port="$port" --bind-address=127.0.0.1 \
        --user="$(id -un)" --skip-name-resolve --skip-log-bin >"$DIR/mariadb.log" 2>&1 &
    echo $! >"$DIR/pid"
    for _ in $(seq 1 120); do
        if mariadb --no-defaults -S "$DIR/sock" -uroot -e 'SELECT 1' >/dev/null 2>&1; then
            mariadb --no-defaults -S "$DIR/sock" -uroot -e "
                CREATE DATABASE strata;
                CREATE USER 'strata'@'127.0.0.1' IDENTIFIED BY '$password';
                GRANT ALL ON strata.* TO 'strata'@'127.0.0.1';"
            echo "export STRATA_DATABASE=mysql://strata:$password@127.0.0.1:$port/strata"
            return 0
        fi
        sleep 0.25
    done
    echo "MariaDB did not start within 30 s; its log is $DIR/mariadb.log" >&2
    exit 1
}

stop() {
    if [ -s "$DIR/pid" ]; then
        kill "$(cat "$DIR/pid")" 2>/dev/null || true
        for _ in $(seq 1 120); do
            kill -0 "$(cat "$DIR/pid")" 2>/dev/null || break
            sleep 0.25
        done
        kill -9 "$(cat "$DIR/pid")" 2>/dev/null || true
    fi
    rm -rf "$DIR"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
