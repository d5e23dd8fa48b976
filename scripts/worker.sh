#!/usr/bin/env bash
# The background worker (email outbox and scheduled jobs) for `make run`: pidfile var/worker.pid, log var/worker.log.
# Usage: scripts/worker.sh start|stop|status
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
pidfile="$root/var/worker.pid"
logfile="$root/var/worker.log"

running() {
    [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

case "${1:-}" in
    start)
        if running; then
            echo "Worker already running (pid $(cat "$pidfile"))"
            exit 0
        fi
        mkdir -p "$root/var"
        cd "$root"
        # setsid detaches it from make's process group, so Ctrl-C on `make run` leaves it up; `make stop` stops it.
        setsid .venv/bin/flask --app app worker >>"$logfile" 2>&1 </dev/null &
        echo $! >"$pidfile"
        echo "Worker started (pid $!), logging to $logfile"
        ;;
    stop)
        if ! running; then
            echo "Worker is not running"
            rm -f "$pidfile"
            exit 0
        fi
        pid=$(cat "$pidfile")
        kill -TERM "$pid"
        for _ in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.2
        done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
        rm -f "$pidfile"
        echo "Worker stopped"
        ;;
    status)
        running && echo "Worker running (pid $(cat "$pidfile"))" || { echo "Worker not running"; exit 1; }
        ;;
    *)
        echo "usage: $0 start|stop|status" >&2
        exit 2
        ;;
esac
