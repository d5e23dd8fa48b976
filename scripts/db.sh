#!/usr/bin/env bash
# Project-local MariaDB: data in var/mysql, socket var/mysql.sock, networking off.
# Usage: scripts/db.sh start|stop|status|create DATABASE
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
var="$root/var"
datadir="$var/mysql"
socket="$var/mysql.sock"
pidfile="$var/mysql.pid"
logfile="$var/mysql.log"
os_user=$(id -un)

running() {
    mariadb-admin --no-defaults --socket="$socket" --user="$os_user" ping >/dev/null 2>&1
}

start() {
    if running; then
        echo "MariaDB already running on $socket"
        return
    fi
    mkdir -p "$var"
    if [ ! -d "$datadir/mysql" ]; then
        echo "Creating a project-local MariaDB in $datadir"
        mariadb-install-db --no-defaults --datadir="$datadir" --user="$os_user" \
            --auth-root-authentication-method=socket --skip-test-db >"$var/mysql-install.log" 2>&1 \
            || { cat "$var/mysql-install.log"; exit 1; }
    fi
    # setsid detaches the server from make's process group, so Ctrl-C on `make run` leaves it up.
    setsid mariadbd --no-defaults --datadir="$datadir" --socket="$socket" --pid-file="$pidfile" \
        --log-error="$logfile" --user="$os_user" --skip-networking \
        --character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci \
        --innodb-buffer-pool-size=256M --max-connections=300 \
        </dev/null >/dev/null 2>&1 &
    for _ in $(seq 1 60); do
        if running; then
            echo "MariaDB started on $socket"
            return
        fi
        sleep 0.5
    done
    echo "MariaDB did not start; see $logfile" >&2
    tail -n 20 "$logfile" >&2 || true
    exit 1
}

stop() {
    if running; then
        mariadb-admin --no-defaults --socket="$socket" --user="$os_user" shutdown
        echo "MariaDB stopped"
    else
        echo "MariaDB is not running"
    fi
}

create() {
    mariadb --no-defaults --socket="$socket" --user="$os_user" \
        -e "CREATE DATABASE IF NOT EXISTS \`$1\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
}

case "${1:-}" in
    start) start ;;
    create) create "${2:?usage: $0 create DATABASE}" ;;
    stop) stop ;;
    status) running && echo "running on $socket" || { echo "not running"; exit 1; } ;;
    *) echo "usage: $0 start|stop|status|create DATABASE" >&2; exit 2 ;;
esac
