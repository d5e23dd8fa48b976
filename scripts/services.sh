#!/usr/bin/env bash
# The app's own processes for `make run`, project-local with pidfiles in var/: gunicorn on a unix
# socket, the worker, and nginx in front on BIND (default 127.0.0.1:5000). Never a system service.
# Usage: scripts/services.sh start|stop|status
#   start, when they run already, reloads them so they serve the code as it is now.
#   RUN_DIR (default var/) holds the pidfiles, sockets and logs, so a second stack can run beside this one.
#   DB_SOCKETS, a list of MariaDB sockets (the nodes of a cluster), starts one gunicorn and one worker
#   per node, each using its own node, in RUN_DIR/appN/, with nginx sharing requests among them.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
var=$(mkdir -p "${RUN_DIR:-$root/var}" && cd "${RUN_DIR:-$root/var}" && pwd)
bind=${BIND:-127.0.0.1:5000}
nginx_pid="$var/nginx/nginx.pid"
read -r -d '' -a db_sockets <<<"${DB_SOCKETS:-}" || true  # spaces or newlines between them
app_count=${#db_sockets[@]}
[ "$app_count" -eq 0 ] && app_count=1

app_dir() {  # the folder of app server N: RUN_DIR itself when there is only one
    if [ ${#db_sockets[@]} -eq 0 ]; then echo "$var"; else echo "$var/app$1"; fi
}

# The worker finishes the email in flight (at most the SMTP timeout, 15 s) before it stops.
worker_grace=25

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

wait_gone() {  # pid, pidfile, seconds (the pid is read before the signal: the process may remove its pidfile)
    for _ in $(seq 1 $(($3 * 5))); do
        kill -0 "$1" 2>/dev/null || { rm -f "$2"; return 0; }
        sleep 0.2
    done
    kill -KILL "$1" 2>/dev/null || true
    rm -f "$2"
}

start_gunicorn() {  # N
    local dir
    dir=$(app_dir "$1")
    mkdir -p "$dir/log"
    if alive "$dir/gunicorn.pid"; then
        reload_gunicorn "$1" "$dir"
        return
    fi
    rm -rf "$dir/ready"
    # setsid detaches it from make's process group, so Ctrl-C on make leaves it up; `make stop` stops it.
    (cd "$root" && export RUN_DIR="$dir" && db_env "$1" && export GUNICORN_BIND="unix:$dir/gunicorn.sock" \
        TRUSTED_PROXIES=1 && exec setsid .venv/bin/gunicorn -c gunicorn.conf.py --pid "$dir/gunicorn.pid" \
        --error-logfile "$dir/log/gunicorn.log" app:app) </dev/null >>"$dir/log/gunicorn.log" 2>&1 &
    for _ in $(seq 1 50); do
        [ -S "$dir/gunicorn.sock" ] && alive "$dir/gunicorn.pid" && { echo "gunicorn$(label "$1") started"; return; }
        sleep 0.2
    done
    echo "gunicorn did not start; see $dir/log/gunicorn.log" >&2
    tail -n 20 "$dir/log/gunicorn.log" >&2
    exit 1
}

# A rolling replacement, so requests never wait: a second master (USR2) starts workers with the code as it
# is now beside the old ones, both taking requests from the one socket; once every new worker has loaded
# the app, the old master stops gracefully (its workers finish what they are serving) and the new one takes
# over gunicorn.pid. If the new code cannot start, the old goes on serving and this says so.
reload_gunicorn() {  # N, dir
    local dir=$2 old new="" expected ready
    old=$(cat "$dir/gunicorn.pid")
    rm -f "$dir/gunicorn.pid.2"
    kill -USR2 "$old"
    for _ in $(seq 1 150); do
        new=$(cat "$dir/gunicorn.pid.2" 2>/dev/null || true)
        [ -n "$new" ] && break
        sleep 0.2
    done
    for _ in $(seq 1 300); do
        [ -n "$new" ] && kill -0 "$new" 2>/dev/null || break
        expected=$(cat "$dir/ready/$new.expected" 2>/dev/null || true)
        ready=$(find "$dir/ready" -name "$new.[0-9]*" 2>/dev/null | wc -l)
        if [ -n "$expected" ] && [ "$ready" -ge "$expected" ]; then
            kill -TERM "$old"
            wait_gone "$old" "$dir/gunicorn.pid.old" 35
            for _ in $(seq 1 50); do
                [ "$(cat "$dir/gunicorn.pid" 2>/dev/null)" = "$new" ] && break
                sleep 0.2
            done
            rm -f "$dir/ready/$old".*
            echo "gunicorn$(label "$1") reloaded"
            return
        fi
        sleep 0.2
    done
    [ -n "$new" ] && kill -TERM "$new" 2>/dev/null
    echo "gunicorn$(label "$1"): the new code did not start, so the old code goes on serving;" \
        "see $dir/log/gunicorn.log" >&2
    tail -n 20 "$dir/log/gunicorn.log" >&2
    exit 1
}

label() {  # N, said only when there are several app servers
    [ ${#db_sockets[@]} -eq 0 ] || echo " $1"
}

db_env() {  # N: point app server N at its own node, when there are several
    [ ${#db_sockets[@]} -eq 0 ] || export MYSQL_UNIX_SOCKET="${db_sockets[$(($1 - 1))]}"
}

start_worker() {  # N
    local dir
    dir=$(app_dir "$1")
    stop_one worker "$dir/worker.pid" TERM "$worker_grace" >/dev/null
    # setsid detaches it from make's process group, so Ctrl-C on make leaves it up; `make stop` stops it.
    (cd "$root" && export RUN_DIR="$dir" && db_env "$1" \
        && exec setsid .venv/bin/flask --app app worker --supervise --pidfile "$dir/worker.pid") \
        >>"$dir/log/worker.log" 2>&1 </dev/null &
    for _ in $(seq 1 50); do
        alive "$dir/worker.pid" && { echo "worker$(label "$1") started"; return; }
        sleep 0.2
    done
    echo "the worker did not start; see $dir/log/worker.log" >&2
    tail -n 20 "$dir/log/worker.log" >&2
    exit 1
}

start_nginx() {
    mkdir -p "$var/nginx"
    local user=""
    [ "$(id -u)" -eq 0 ] && user="user $(id -un) $(id -gn);"
    local upstreams=""
    for n in $(seq 1 "$app_count"); do
        upstreams+="server unix:$(app_dir "$n")/gunicorn.sock fail_timeout=0; "
    done
    local upstream_idle
    upstream_idle=$(sed -n 's/^UPSTREAM_IDLE_SECONDS = \([0-9]*\).*/\1/p' "$root/gunicorn.conf.py")
    sed -e "s|@USER@|$user|" -e "s|@VAR@|$var|g" -e "s|@ROOT@|$root|g" -e "s|@LISTEN@|$bind|" \
        -e "s|@UPSTREAMS@|$upstreams|" -e "s|@UPSTREAM_IDLE@|${upstream_idle:?}|" \
        -e "s|@PHOTO_CACHE_SECONDS@|${PHOTO_CACHE_SECONDS:-60}|" "$root/deploy/nginx.conf" >"$var/nginx/nginx.conf"
    (cd "$root" && .venv/bin/flask --app app write-unavailable-page "$var/nginx/pages/_unavailable.html")
    nginx -t -q -p "$var/nginx" -c "$var/nginx/nginx.conf"
    if alive "$nginx_pid"; then
        nginx -p "$var/nginx" -c "$var/nginx/nginx.conf" -s reload 2>>"$var/log/nginx-error.log"
        echo "nginx reloaded"
    else
        nginx -p "$var/nginx" -c "$var/nginx/nginx.conf" </dev/null >/dev/null 2>>"$var/log/nginx-error.log"
        echo "nginx started on http://$bind"
    fi
}

stop_one() {  # name, pidfile, signal[, seconds to wait before SIGKILL]
    if alive "$2"; then
        local pid
        pid=$(cat "$2")
        kill "-$3" "$pid"
        wait_gone "$pid" "$2" "${4:-15}"
        echo "$1 stopped"
    else
        rm -f "$2"
    fi
}

case "${1:-}" in
    start)
        mkdir -p "$var/log"
        for n in $(seq 1 "$app_count"); do
            start_gunicorn "$n"
            start_worker "$n"
        done
        start_nginx
        ;;
    stop)
        stop_one nginx "$nginx_pid" QUIT
        # Every app server this folder holds, however many the last start made.
        for dir in "$var" "$var"/app*; do
            [ -d "$dir" ] || continue
            stop_one worker "$dir/worker.pid" TERM "$worker_grace"
            stop_one gunicorn "$dir/gunicorn.pid.2" TERM  # a reload cut short
            stop_one gunicorn "$dir/gunicorn.pid" TERM
            rm -f "$dir/gunicorn.sock"
            rm -rf "$dir/ready"
        done
        ;;
    status)
        for dir in "$var" "$var"/app*; do
            for name in gunicorn worker; do
                [ -f "$dir/$name.pid" ] || continue
                alive "$dir/$name.pid" && echo "$name in $dir running (pid $(cat "$dir/$name.pid"))" \
                    || echo "$name in $dir not running"
            done
        done
        alive "$nginx_pid" && echo "nginx running (pid $(cat "$nginx_pid"))" || echo "nginx not running"
        ;;
    *)
        echo "usage: $0 start|stop|status" >&2
        exit 2
        ;;
esac
