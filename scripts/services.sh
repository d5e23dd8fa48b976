#!/usr/bin/env bash
# The app's own processes for `make run`, project-local with pidfiles in var/: gunicorn on a unix
# socket, the worker, and nginx in front on BIND (default 127.0.0.1:5000). Never a system service.
# Usage: scripts/services.sh start|stop|status
#   start, when they run already, reloads them so they serve the code as it is now.
#   RUN_DIR (default var/) holds the pidfiles, sockets and logs, so a second stack can run beside this one.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
var=$(mkdir -p "${RUN_DIR:-$root/var}" && cd "${RUN_DIR:-$root/var}" && pwd)
export RUN_DIR="$var"
bind=${BIND:-127.0.0.1:5000}
gunicorn_pid="$var/gunicorn.pid"
worker_pid="$var/worker.pid"
nginx_pid="$var/nginx/nginx.pid"

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

wait_gone() {  # pid, pidfile, seconds (the pid is read before the signal: the process may remove its pidfile)
    for _ in $(seq 1 $(($3 * 5))); do
        kill -0 "$1" 2>/dev/null || { rm -f "$2"; return 0; }
        sleep 0.2
    done
    kill -KILL "$1" 2>/dev/null || true
    rm -f "$2"
}

start_gunicorn() {
    if alive "$gunicorn_pid"; then
        kill -HUP "$(cat "$gunicorn_pid")"  # new workers, new code
        echo "gunicorn reloaded"
        return
    fi
    (cd "$root" && GUNICORN_BIND="unix:$var/gunicorn.sock" TRUSTED_PROXIES=1 \
        .venv/bin/gunicorn -c gunicorn.conf.py --daemon --pid "$gunicorn_pid" \
        --error-logfile "$var/log/gunicorn.log" app:app)
    for _ in $(seq 1 50); do
        [ -S "$var/gunicorn.sock" ] && alive "$gunicorn_pid" && { echo "gunicorn started"; return; }
        sleep 0.2
    done
    echo "gunicorn did not start; see var/log/gunicorn.log" >&2
    tail -n 20 "$var/log/gunicorn.log" >&2
    exit 1
}

start_worker() {
    stop_one worker "$worker_pid" TERM >/dev/null
    # setsid detaches it from make's process group, so Ctrl-C on make leaves it up; `make stop` stops it.
    cd "$root"
    setsid .venv/bin/flask --app app worker --pidfile "$worker_pid" >>"$var/log/worker.log" 2>&1 </dev/null &
    for _ in $(seq 1 50); do
        alive "$worker_pid" && { echo "worker started"; return; }
        sleep 0.2
    done
    echo "the worker did not start; see var/log/worker.log" >&2
    tail -n 20 "$var/log/worker.log" >&2
    exit 1
}

start_nginx() {
    mkdir -p "$var/nginx"
    local user=""
    [ "$(id -u)" -eq 0 ] && user="user $(id -un) $(id -gn);"
    sed -e "s|@USER@|$user|" -e "s|@VAR@|$var|g" -e "s|@ROOT@|$root|g" -e "s|@LISTEN@|$bind|" \
        "$root/deploy/nginx.conf" >"$var/nginx/nginx.conf"
    nginx -t -q -p "$var/nginx" -c "$var/nginx/nginx.conf"
    if alive "$nginx_pid"; then
        nginx -p "$var/nginx" -c "$var/nginx/nginx.conf" -s reload 2>>"$var/log/nginx-error.log"
        echo "nginx reloaded"
    else
        nginx -p "$var/nginx" -c "$var/nginx/nginx.conf" </dev/null >/dev/null 2>>"$var/log/nginx-error.log"
        echo "nginx started on http://$bind"
    fi
}

stop_one() {  # name, pidfile, signal
    if alive "$2"; then
        local pid
        pid=$(cat "$2")
        kill "-$3" "$pid"
        wait_gone "$pid" "$2" 15
        echo "$1 stopped"
    else
        rm -f "$2"
    fi
}

case "${1:-}" in
    start)
        mkdir -p "$var/log"
        start_gunicorn
        start_worker
        start_nginx
        ;;
    stop)
        stop_one nginx "$nginx_pid" QUIT
        stop_one worker "$worker_pid" TERM
        stop_one gunicorn "$gunicorn_pid" TERM
        rm -f "$var/gunicorn.sock"
        ;;
    status)
        for name in gunicorn worker nginx; do
            file="${name}_pid"
            alive "${!file}" && echo "$name running (pid $(cat "${!file}"))" || echo "$name not running"
        done
        ;;
    *)
        echo "usage: $0 start|stop|status" >&2
        exit 2
        ;;
esac
