#!/usr/bin/env bash
# A 3-node MariaDB Galera cluster on loopback under var/cluster/, for `make cluster-run` and
# `make test-cluster`. Never a system service.
# Usage: scripts/cluster.sh start|stop|status|kill N|start-node N|sockets
#   start     starts the nodes that are down; with none running, node 1 bootstraps a new cluster.
#   stop      stops every node cleanly, node 1 last, so node 1 can bootstrap the next start.
#   kill N    kills node N outright (SIGKILL), as a crash would; start-node N brings it back.
#   sockets   prints the nodes' unix sockets, one per line.
# Node N listens for SQL on 127.0.0.1:(CLUSTER_PORT_BASE + N) and its socket var/cluster/nodeN/mysql.sock;
# Galera replication, incremental and full state transfer use the base + 10, 20 and 30 (+ N).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
dir="$root/var/cluster"
# The nodes are given real paths: a link's folder may be one the mysql user cannot pass (see place_nodes).
[ -L "$dir" ] && dir=$(readlink -f "$dir")
base=${CLUSTER_PORT_BASE:-4400}
nodes=(1 2 3)
os_user=$(id -un)
# As root the nodes run as mysql: rsync's state transfer daemon, started by root, would write as nobody.
run_as=$os_user
[ "$(id -u)" -eq 0 ] && run_as=mysql

node_dir() { echo "$dir/node$1"; }
socket() { echo "$dir/node$1/mysql.sock"; }
gcomm_port() { echo $((base + 10 + $1)); }

admin() {  # node, args...
    local n=$1
    shift
    mariadb-admin --no-defaults --socket="$(socket "$n")" --user="$os_user" --connect-timeout=2 "$@"
}

sql() {  # node, statement
    mariadb --no-defaults --socket="$(socket "$1")" --user="$os_user" --connect-timeout=2 -N -B -e "$2"
}

running() { admin "$1" ping >/dev/null 2>&1; }

synced() { [ "$(sql "$1" "SHOW STATUS LIKE 'wsrep_local_state_comment'" 2>/dev/null | cut -f2)" = "Synced" ]; }

write_config() {
    local n=$1 peers="" d
    d=$(node_dir "$n")
    for m in "${nodes[@]}"; do peers+="${peers:+,}127.0.0.1:$(gcomm_port "$m")"; done
    cat >"$d/my.cnf" <<EOF
[mysqld]
datadir=$d/data
socket=$d/mysql.sock
pid-file=$d/mysql.pid
log-error=$d/mysql.log
user=$run_as
bind-address=127.0.0.1
port=$((base + n))
character-set-server=utf8mb4
collation-server=utf8mb4_unicode_ci
innodb-buffer-pool-size=128M
max-connections=300
max-allowed-packet=64M
binlog-format=ROW
default-storage-engine=InnoDB
innodb-autoinc-lock-mode=2
innodb-flush-log-at-trx-commit=2
wsrep-on=ON
wsrep-provider=/usr/lib/galera/libgalera_smm.so
wsrep-cluster-name=noeari
wsrep-cluster-address=gcomm://$peers
wsrep-node-name=node$n
wsrep-node-address=127.0.0.1:$(gcomm_port "$n")
wsrep-node-incoming-address=127.0.0.1:$((base + n))
wsrep-provider-options=gmcast.listen_addr=tcp://127.0.0.1:$(gcomm_port "$n");ist.recv_addr=127.0.0.1:$((base + 20 + n));gcache.size=128M;pc.recovery=false
wsrep-sst-method=rsync
wsrep-sst-receive-address=127.0.0.1:$((base + 30 + n))
wsrep-slave-threads=2
EOF
}

# The mysql user must reach the nodes' folders. A checkout inside a private directory (a home, or the 0700
# folder of mktemp -d) is closed to it: the nodes' folder then lives in /var/tmp/noeari-cluster-<a hash of
# this checkout's path>, and var/cluster links to it.
place_nodes() {
    [ "$run_as" = "$os_user" ] && return
    mkdir -p "$root/var"
    su -s /bin/sh "$run_as" -c "test -x '$root/var'" && return
    [ -L "$dir" ] && return
    if [ -d "$dir" ]; then
        # A folder left by a run that failed here holds no node's data: it is replaced by the link.
        compgen -G "$dir/node*/data/mysql" >/dev/null && return
        rm -rf "$dir"
    fi
    local elsewhere
    elsewhere="${CLUSTER_DATA_PARENT:-/var/tmp}/noeari-cluster-$(printf %s "$root" | sha256sum | cut -c1-12)"
    mkdir -p "$elsewhere"
    chmod 755 "$elsewhere"
    ln -s "$elsewhere" "$dir"
    dir=$elsewhere
    echo "The $run_as user cannot reach $root/var, so the nodes' data is in $elsewhere (var/cluster links to it)."
}

prepare() {
    local n=$1 d
    d=$(node_dir "$n")
    mkdir -p "$d/data"
    write_config "$n"
    if [ ! -d "$d/data/mysql" ]; then
        mariadb-install-db --no-defaults --datadir="$d/data" --user="$run_as" \
            --auth-root-authentication-method=socket --skip-test-db >"$d/install.log" 2>&1 \
            || { cat "$d/install.log" >&2; exit 1; }
    fi
    [ "$run_as" = "$os_user" ] || chown -R "$run_as:" "$d"
    if [ "$run_as" != "$os_user" ] && ! su -s /bin/sh "$run_as" -c "test -w '$d/data'"; then
        echo "The $run_as user cannot reach $d: each folder above it must be open to others (chmod o+x)." >&2
        exit 1
    fi
}

launch() {  # node, extra server options...
    local n=$1
    shift
    rm -f "$(node_dir "$n")/mysql.sock"
    setsid mariadbd --defaults-file="$(node_dir "$n")/my.cnf" "$@" </dev/null >/dev/null 2>&1 &
    for _ in $(seq 1 240); do
        if running "$n" && synced "$n"; then
            echo "node $n is up and synced on $(socket "$n")"
            return
        fi
        sleep 0.5
    done
    echo "node $n did not join; see $(node_dir "$n")/mysql.log" >&2
    tail -n 30 "$(node_dir "$n")/mysql.log" >&2 || true
    exit 1
}

any_running() {
    for n in "${nodes[@]}"; do running "$n" && return 0; done
    return 1
}

start_node() {
    local n=$1
    if running "$n"; then
        echo "node $n already running"
        return
    fi
    prepare "$n"
    launch "$n"
}

start() {
    if ! any_running; then
        prepare 1
        # The last node stopped holds every commit; `stop` stops node 1 last, and a test cluster's
        # data is disposable, so node 1 may always found the new cluster.
        local state
        state="$(node_dir 1)/data/grastate.dat"
        [ -f "$state" ] && sed -i 's/^safe_to_bootstrap: 0/safe_to_bootstrap: 1/' "$state"
        launch 1 --wsrep-new-cluster
    fi
    for n in "${nodes[@]}"; do running "$n" || start_node "$n"; done
    sql 1 "CREATE DATABASE IF NOT EXISTS \`${MYSQL_DB:-noeari}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
}

stop_node() {
    local n=$1 pid
    if running "$n"; then
        pid=$(cat "$(node_dir "$n")/mysql.pid" 2>/dev/null || true)
        admin "$n" shutdown
        [ -n "$pid" ] && while kill -0 "$pid" 2>/dev/null; do sleep 0.2; done
        echo "node $n stopped"
    fi
}

kill_node() {
    local pidfile
    pidfile="$(node_dir "$1")/mysql.pid"
    [ -f "$pidfile" ] || { echo "node $1 is not running" >&2; return 1; }
    kill -KILL "$(cat "$pidfile")"
    echo "node $1 killed"
}

status() {
    local up=0
    for n in "${nodes[@]}"; do
        if running "$n"; then
            up=$((up + 1))
            echo "node $n: $(sql "$n" "SHOW STATUS LIKE 'wsrep_local_state_comment'" | cut -f2)," \
                "cluster size $(sql "$n" "SHOW STATUS LIKE 'wsrep_cluster_size'" | cut -f2)"
        else
            echo "node $n: down"
        fi
    done
    [ "$up" -gt 0 ]
}

case "${1:-}" in
    start) place_nodes; start ;;
    stop) for n in 3 2 1; do stop_node "$n"; done ;;
    status) status ;;
    kill) kill_node "${2:?usage: $0 kill N}" ;;
    start-node) place_nodes; start_node "${2:?usage: $0 start-node N}" ;;
    sockets) for n in "${nodes[@]}"; do socket "$n"; done ;;
    *) echo "usage: $0 start|stop|status|kill N|start-node N|sockets" >&2; exit 2 ;;
esac
