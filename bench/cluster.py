"""`make bench-cluster`: the p50 of /products and of checkout on the 3-node Galera cluster against one
MariaDB server, side by side, and writes bench/CLUSTER.md.

Both get the demo data in a database of their own (noeari_bench_cluster, never the dev one) and the same
stack, nginx in front: one app server on the single server; one per node on the cluster, with causal reads
(MYSQL_SYNC_WAIT=1) as `make cluster-run` has them. One client sends each request in turn to each stack,
so both see the same machine at the same moment."""
import os
import re
import secrets
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))
from cluster_stack import Visitor  # noqa: E402  (a plain HTTP client with cookies and the CSRF token)

DATABASE = "noeari_bench_cluster"
SAMPLES = int(os.environ.get("BENCH_SAMPLES", "300"))
CHECKOUTS = int(os.environ.get("BENCH_CHECKOUTS", "150"))
SINGLE_SOCKET = os.path.join(ROOT, "var", "mysql.sock")


def run(argv, **env):
    done = subprocess.run(argv, cwd=ROOT, env=dict(os.environ, **env), capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{' '.join(argv)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def mariadb(socket, statement):
    run(["mariadb", "--no-defaults", f"--socket={socket}", f"--user={os.environ.get('MYSQL_USER', 'root')}",
         "-e", statement])


def build(socket):
    """A new database with the demo data, and plenty of one product to buy."""
    mariadb(socket, f"DROP DATABASE IF EXISTS {DATABASE}; CREATE DATABASE {DATABASE}")
    flask = [os.path.join(ROOT, ".venv", "bin", "flask"), "--app", "app"]
    run(flask + ["init-db", "--seed"], MYSQL_UNIX_SOCKET=socket, MYSQL_DB=DATABASE)
    mariadb(socket, f"UPDATE {DATABASE}.stock SET quantity_available = 100000")


def stack(name, port, **env):
    env = dict(RUN_DIR=os.path.join(ROOT, "var", "bench-cluster", name), BIND=f"127.0.0.1:{port}",
               MYSQL_DB=DATABASE, WEB_CONCURRENCY="2", PAGE_CACHE_MB="16", **env)
    run([os.path.join(ROOT, "scripts", "services.sh"), "start"], **env)
    return env


def stop(env):
    run([os.path.join(ROOT, "scripts", "services.sh"), "stop"], **env)


def timed(action):
    started = time.perf_counter()
    reply = action()
    return (time.perf_counter() - started) * 1000, reply


def customer(front):
    visitor = Visitor(front)
    visitor.login("customer", "jane@example.com", "password123")
    return visitor


def checkout(visitor, product):
    """One checkout of one unit of product, by arrangement or the first time offered; its time in ms."""
    visitor.get(f"/products/{product}")
    # The add form carries no token: the app checks the browser's Origin instead, as a browser sends it.
    assert visitor.post("/cart/add", {"product_id": product, "quantity": 1},
                        headers={"Origin": "http://localhost"}).status == 302
    cart = visitor.get("/cart").text
    choices = {}
    for field, value in re.findall(r'name="(when_\d+)" value="([^"]+)"', cart):
        if field not in choices or value.endswith("@arranged"):
            choices[field] = value
    ms, reply = timed(lambda: visitor.post("/checkout", choices))
    assert reply.status == 302, (reply.status, reply.text[:300])
    return ms


def percentile(values, share):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main():
    run([os.path.join(ROOT, "scripts", "db.sh"), "start"])
    run([os.path.join(ROOT, "scripts", "cluster.sh"), "start"])
    sockets = run([os.path.join(ROOT, "scripts", "cluster.sh"), "sockets"]).split()
    build(SINGLE_SOCKET)
    build(sockets[0])
    key = secrets.token_hex(32)
    stacks = {"single": stack("single", 5201, MYSQL_UNIX_SOCKET=SINGLE_SOCKET, SECRET_KEY=key),
              "cluster": stack("cluster", 5202, DB_SOCKETS=" ".join(sockets), MYSQL_SYNC_WAIT="1",
                               MYSQL_TRANSACTION_ATTEMPTS="5", SECRET_KEY=key)}
    fronts = {"single": "127.0.0.1:5201", "cluster": "127.0.0.1:5202"}
    try:
        visitors = {name: customer(front) for name, front in fronts.items()}
        guests = {name: Visitor(front) for name, front in fronts.items()}
        times = {(name, what): [] for name in fronts for what in ("products", "guest", "checkout")}
        for name in fronts:  # warm every process
            for _ in range(20):
                visitors[name].get("/products")
                guests[name].get("/products")
        for n in range(SAMPLES):
            for name in fronts:
                times[name, "products"].append(timed(lambda: visitors[name].get(f"/products?page={1 + n % 2}"))[0])
                times[name, "guest"].append(timed(lambda: guests[name].get("/products"))[0])
        for n in range(CHECKOUTS):
            for name in fronts:
                times[name, "checkout"].append(checkout(visitors[name], 1 + n % 5))
    finally:
        for env in stacks.values():
            stop(env)
    rows = []
    for what, label in (("guest", "anonymous `/products` (page cache)"), ("products", "logged-in `/products`"),
                        ("checkout", "checkout (`POST /checkout`)")):
        single, clustered = times["single", what], times["cluster", what]
        rows.append(f"| {label} | {len(single)} | {statistics.median(single):.1f} | {percentile(single, .9):.1f} | "
                    f"{statistics.median(clustered):.1f} | {percentile(clustered, .9):.1f} | "
                    f"{statistics.median(clustered) / statistics.median(single):.2f}× |")
    report = "\n".join([
        "# Cluster against one server",
        "",
        f"`make bench-cluster`, {time.strftime('%Y-%m-%d %H:%M')}, on this machine ({os.cpu_count()} cores): one",
        "client, each request sent in turn to one MariaDB server's stack and to the 3-node Galera cluster's",
        "(one app server per node, causal reads, nginx round-robin), demo data. Milliseconds.",
        "",
        "| Request | samples | single p50 | single p90 | cluster p50 | cluster p90 | cluster ÷ single (p50) |",
        "|---|---:|---:|---:|---:|---:|---:|",
        *rows,
        "",
    ])
    with open(os.path.join(ROOT, "bench", "CLUSTER.md"), "w", encoding="utf-8") as f:
        f.write(report)
    print(report)


if __name__ == "__main__":
    main()
