"""`make bench`: build the catalogue at 50,000 products, serve the app and the reference side by side,
drive every scenario with wrk, measure checkout throughput, measure how each page's time grows with the data,
and report against the targets.

Two server set-ups, each for the app and the reference alike: the production settings (gunicorn.conf.py,
clients that close each connection) and 4 plain sync workers with keep-alive clients.
BENCH_SCALE=small runs at 1,000 products instead, for a quick look, without the growth table (BENCH_GROWTH=1
adds it; BENCH_GROWTH=0 leaves it out at the large scale). BENCH_SECONDS and BENCH_CONNECTIONS
set wrk's duration and concurrency. The report is printed and written to bench/RESULTS.md.
"""
import contextlib
import datetime
import http.cookiejar
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "bench"))

import generate  # noqa: E402
from app import app  # noqa: E402
from db import mysql  # noqa: E402

DATABASE = "noeari_bench"
SECONDS = int(os.environ.get("BENCH_SECONDS", "6"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "32"))
ALONE_SECONDS, ALONE_ROUNDS, GROWTH_SECONDS = 1, 5, 3
QUIET_SECONDS = 2
APP_PORT, REFERENCE_PORT = 5101, 5102
SETUPS = {
    "production": {"args": [], "close": True, "connections": CONNECTIONS,
                   "label": "gunicorn.conf.py (gthread, 2 × cores + 1 workers × 2 threads); clients close each connection"},
    "sync": {"args": ["-k", "sync", "-w", "4"], "close": False, "connections": 16,
             "label": "4 sync workers; 16 keep-alive clients"},
}
GUNICORN = os.path.join(os.path.dirname(sys.executable), "gunicorn")
LOGS = os.path.join(ROOT, "var", "bench")
CHECKOUT_CUSTOMERS, CHECKOUT_STOCK, CHECKOUT_THREADS = 190, 95, 8
CHECKOUT_ROUNDS = int(os.environ.get("BENCH_CHECKOUT_ROUNDS", "3"))


# --- Database access for set-up and plans --------------------------------------

def sql(statement, args=(), database=DATABASE):
    with app.app_context():
        app.config["MYSQL_DB"] = database
        conn = mysql.connect
        try:
            cur = conn.cursor()
            cur.execute(statement, args)
            rows = cur.fetchall()
            cur.close()
            return rows
        finally:
            conn.close()


def server_status(name):
    return int(sql("SHOW GLOBAL STATUS LIKE %s", (name,), database=None)[0]["Value"])


def settle(timeout=300):
    """Wait until MariaDB has written out what a build left in memory and purged its undo history, so that
    the measurements after it do not share the machine with that work; the seconds it took."""
    started = time.monotonic()
    before = sql("SELECT @@GLOBAL.innodb_max_dirty_pages_pct AS pct", database=None)[0]["pct"]
    sql("SET GLOBAL innodb_max_dirty_pages_pct = 0", database=None)
    try:
        while time.monotonic() - started < timeout and (
                server_status("Innodb_buffer_pool_pages_dirty") > 100 or server_status("Innodb_history_list_length") > 100):
            time.sleep(0.5)
    finally:
        sql("SET GLOBAL innodb_max_dirty_pages_pct = %s", (before,), database=None)
    return time.monotonic() - started


# --- Servers ------------------------------------------------------------------

def answers(port):
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/products", timeout=2).read()
        return True
    except OSError:
        return False


@contextlib.contextmanager
def serving(target, port, args=(), **env):
    """A gunicorn serving target on port for the with block, stopped however the block ends."""
    server = serve(target, port, args, **env)
    try:
        yield server
    finally:
        stop(server)


def serve(target, port, args=(), **env):
    # A server left from an interrupted run would answer in this one's place, measuring old code and data.
    if answers(port):
        raise SystemExit(f"port {port} already answers: stop the server left there before benchmarking")
    run_dir = os.path.join(LOGS, str(port))  # its own gunicorn control socket, beside any `make run`
    os.makedirs(run_dir, exist_ok=True)
    log = open(os.path.join(LOGS, f"{port}.log"), "ab")
    environment = dict(os.environ, MYSQL_DB=DATABASE, BIND=f"127.0.0.1:{port}", RUN_DIR=run_dir, **env)
    server = subprocess.Popen([GUNICORN, "-c", os.path.join(ROOT, "gunicorn.conf.py"), *args, target],
                              cwd=ROOT, env=environment, stdout=log, stderr=log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and server.poll() is None:
        if answers(port):
            return server
        time.sleep(0.2)
    server.terminate()
    raise SystemExit(f"{target} did not start on port {port}; see {log.name}")


def stop(server):
    server.terminate()
    server.wait(timeout=30)


def worker_memory(server):
    """Resident memory of each gunicorn worker, in MiB."""
    children = subprocess.run(["pgrep", "-P", str(server.pid)], capture_output=True, text=True).stdout.split()
    sizes = []
    for pid in children:
        with open(f"/proc/{pid}/status") as f:
            rss = next(line for line in f if line.startswith("VmRSS"))
        sizes.append(int(rss.split()[1]) / 1024)
    return sizes


class KeepRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args):
        return None


class Browser:
    """A logged-in HTTP client: cookies, and the CSRF token from the last page it read."""

    def __init__(self, port):
        self.base = f"http://127.0.0.1:{port}"
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))
        self.no_redirect = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar), KeepRedirect)
        self.token = None

    def get(self, path):
        page = self.opener.open(self.base + path, timeout=30).read().decode()
        found = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
        self.token = found.group(1) if found else self.token
        return page

    def post(self, path, data, follow=True):
        """The response's status; with follow=False, a redirect's own (302) rather than its target's."""
        body = urllib.parse.urlencode(dict(data, csrf_token=self.token)).encode()
        try:
            return (self.opener if follow else self.no_redirect).open(self.base + path, body, timeout=60).status
        except urllib.error.HTTPError as error:
            return error.code

    def log_in(self, role, email):
        self.get(f"/login/{role}")
        assert self.post(f"/login/{role}", {"email": email, "password": generate.BENCH_PASSWORD}) == 200
        return self

    def cookie(self):
        return "; ".join(f"{c.name}={c.value}" for c in self.jar)


# --- Load ---------------------------------------------------------------------

def to_ms(text):
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1, "s": 1000, "m": 60000}[unit]


def wrk(url, header=None, seconds=SECONDS, connections=CONNECTIONS, close=True):
    # Connection: close sends every request to whichever worker is free; with keep-alive, gunicorn's
    # workers hold uneven shares of the connections and one GIL-bound process sets the pace.
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    if close:
        command[1:1] = ["-H", "Connection: close"]
    if header:  # who is asking: a session's Cookie, or an API token's Authorization
        command[1:1] = ["-H", header]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    percentile = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", out, re.MULTILINE))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "p50": to_ms(percentile["50"]), "p99": to_ms(percentile["99"]),
            "bad": (int(bad.group(1)) if bad else 0) + (sum(map(int, errors.groups())) if errors else 0)}


def measure(url, setup, header=None):
    """Throughput and tail latency under the set-up's clients."""
    loaded = wrk(url, header, connections=setup["connections"], close=setup["close"])
    # Requests the loaded run left queued (sync workers hold a backlog of connections) are answered first.
    time.sleep(QUIET_SECONDS)
    return loaded


def measure_alone(found, targets, setup):
    """Each target's (name, url, header) p50 from one client, free of queueing, into found[name]: ALONE_ROUNDS
    rounds of ALONE_SECONDS each, every round taking the pages in turn, so that a slow moment of the machine
    falls on each page alike rather than on whichever was being timed; the median round counts."""
    for _ in range(ALONE_ROUNDS):
        for name, url, header in targets:
            alone = wrk(url, header, seconds=ALONE_SECONDS, connections=1, close=setup["close"])
            found[name].setdefault("alone_rounds", []).append(alone["p50"])
            found[name]["bad"] += alone["bad"]
    for name, _, _ in targets:
        found[name]["alone_p50"] = statistics.median(found[name]["alone_rounds"])


LOGGED_IN = "/products (logged in)"
API = "GET /api/v1/products (a customer's token)"
SEARCH = "search, a word in 1 product in 16 (logged in, never cached)"
CART, DASHBOARD, SCHEDULE, BALANCE = "/cart (customer)", "/dashboard (producer)", "/dashboard/schedule/<date>", \
    "/account/balance (customer)"
# Each at most 1.5× the logged-in /products p50; search at most 2×.
WITHIN = {API: 1.5, CART: 1.5, DASHBOARD: 1.5, SCHEDULE: 1.5, BALANCE: 1.5, SEARCH: 2}


def scenarios():
    """(name, path, role) for each scenario, with ids picked from the data at this scale."""
    product = sql("SELECT MIN(product_id) AS id FROM product WHERE is_listed = 1")[0]["id"]
    return [
        ("/products (anonymous)", "/products", None),
        (LOGGED_IN, "/products", "customer"),
        (API, "/api/v1/products", "customer token"),
        ("/products/<id> (anonymous)", f"/products/{product}", None),
        ("/producers/<id> (anonymous)", "/producers/1", None),
        # Its parameters out of their usual order: a URL the shared cache never keeps, so every request searches.
        (SEARCH, f"/products?page=1&q={generate.COMMON_WORD}", "customer"),
        ("category + sort + last page (logged in)", f"/products?category=Vegetables&sort=price_desc&page={deep_page()}",
         "customer"),
        *busy_scenarios(),
    ]


def busy_scenarios():
    """The per-person pages the latency targets compare with the logged-in catalogue."""
    day = sql("SELECT fulfilment_date AS day FROM orders WHERE producer_id = 1 AND fulfilment_date > CURDATE()"
              " ORDER BY fulfilment_date LIMIT 1")[0]["day"]
    return [(CART, "/cart", "customer"), (DASHBOARD, "/dashboard", "producer"),
            (SCHEDULE, f"/dashboard/schedule/{day}", "producer"), (BALANCE, "/account/balance", "customer")]


def data_notes():
    """What the dashboards' producer and the schedule's day hold at this scale."""
    day = sql("SELECT fulfilment_date AS day FROM orders WHERE producer_id = 1 AND fulfilment_date > CURDATE()"
              " ORDER BY fulfilment_date LIMIT 1")[0]["day"]
    return {"producer_orders": sql("SELECT COUNT(*) AS n FROM orders WHERE producer_id = 1")[0]["n"],
            "day_orders": day_orders(day)}


def day_orders(day):
    return sql("SELECT COUNT(*) AS n FROM orders WHERE producer_id = 1 AND fulfilment_date = %s", (day,))[0]["n"]


def deep_page():
    vegetables = sql("SELECT COUNT(*) AS n FROM product WHERE is_listed = 1 AND category = 'Vegetables'")[0]["n"]
    return max(1, -(-vegetables // 24))


def search_is_complete(browser):
    """The search's count equals the listed products whose text holds the word, and its last page shows the rest."""
    word = generate.COMMON_WORD
    expected = sql("SELECT COUNT(*) AS n FROM product p JOIN producer pr ON pr.producer_id = p.producer_id"
                   " WHERE p.is_listed = 1 AND CONCAT_WS(' ', p.name, p.description, p.category, pr.business_name)"
                   " LIKE %s", (f"%{word}%",))[0]["n"]
    page = browser.get(f"/products?q={word}")
    shown = int(re.search(r'class="result-count"[^>]*>([\d,]+) product', page).group(1).replace(",", ""))
    last = -(-expected // 24)
    cards = len(re.findall(r'class="card-title"', browser.get(f"/products?q={word}&page={last}")))
    return {"expected": expected, "shown": shown, "last_page_cards": cards,
            "complete": shown == expected and cards == expected - 24 * (last - 1)}


def checkout_throughput(contested):
    """Concurrent checkouts over HTTP, each a cart from two producers; contested, the customers compete for the
    last units of one of its products (half of them get one). The POST is timed, not the page it redirects to.
    The same customers check out CHECKOUT_ROUNDS times, their carts and the stock set up again before each
    round; the round with the median rate is reported, with every round's rate."""
    first = sql("SELECT product_id FROM product WHERE producer_id = 2 AND is_available = 1 LIMIT 1")[0]["product_id"]
    plenty = sql("SELECT product_id FROM product WHERE producer_id = 3 AND is_available = 1 LIMIT 1")[0]["product_id"]
    offset = 2 if contested else 2 + CHECKOUT_CUSTOMERS
    customers = list(range(offset, offset + CHECKOUT_CUSTOMERS))
    browsers = [Browser(APP_PORT).log_in("customer", f"customer{customer}@bench.noeari") for customer in customers]
    rounds = [checkout_round(browsers, customers, first if contested else None, first, plenty)
              for _ in range(CHECKOUT_ROUNDS)]
    median = sorted(rounds, key=lambda r: r["orders_per_second"])[len(rounds) // 2]
    return dict(median, contested=contested, rounds=[r["orders_per_second"] for r in rounds],
                oversold=any(r["lowest_stock"] < 0 or r["contested_left"] < 0 or r["contested_sold"] > CHECKOUT_STOCK
                             for r in rounds if contested),
                errors=sum(r["errors"] for r in rounds))


def checkout_round(browsers, customers, contested, first, plenty):
    """One round of checkout_throughput: each customer's cart filled with one of first and of plenty, the
    stock of first CHECKOUT_STOCK when contested, then every customer checks out, CHECKOUT_THREADS at a time."""
    sql("UPDATE stock SET quantity_available = %s WHERE product_id = %s",
        (CHECKOUT_STOCK if contested else 1000000, first))
    sql("UPDATE stock SET quantity_available = 1000000 WHERE product_id = %s", (plenty,))
    for customer in customers:
        sql("DELETE FROM cart_item WHERE customer_id = %s", (customer,))
        sql("INSERT INTO cart_item (customer_id, product_id, quantity, price_when_added)"
            " SELECT %s, product_id, 1, price FROM product WHERE product_id IN (%s, %s)", (customer, first, plenty))
    for browser in browsers:
        browser.get("/cart")
    last_order = sql("SELECT COALESCE(MAX(order_id), 0) AS n FROM orders")[0]["n"]
    statuses, lock = [], threading.Lock()

    def work(share):
        for browser in share:
            status = browser.post("/checkout", {"when_2": "2@arranged", "when_3": "3@arranged"}, follow=False)
            with lock:
                statuses.append(status)

    threads = [threading.Thread(target=work, args=(browsers[i::CHECKOUT_THREADS],)) for i in range(CHECKOUT_THREADS)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    orders = sql("SELECT COUNT(*) AS n FROM orders WHERE order_id > %s", (last_order,))[0]["n"]
    lowest = sql("SELECT MIN(quantity_available) AS n FROM stock")[0]["n"]
    left = sql("SELECT quantity_available AS n FROM stock WHERE product_id = %s", (first,))[0]["n"]
    sold = sql("SELECT COALESCE(SUM(quantity), 0) AS n FROM order_item WHERE product_id = %s AND order_id > %s",
               (first, last_order))[0]["n"]
    return {"orders": orders, "checkouts": len(statuses),
            "succeeded": statuses.count(302), "refused": statuses.count(409),
            "errors": len([s for s in statuses if s not in (302, 409)]), "seconds": elapsed,
            "orders_per_second": orders / elapsed, "checkouts_per_second": len(statuses) / elapsed,
            "lowest_stock": lowest, "contested_left": left, "contested_sold": int(sold)}


# --- Plans --------------------------------------------------------------------

def tables_in(plan):
    """Every table access in an ANALYZE FORMAT=JSON plan."""
    if isinstance(plan, dict):
        if "table_name" in plan:
            yield plan
        for value in plan.values():
            yield from tables_in(value)
    elif isinstance(plan, list):
        for value in plan:
            yield from tables_in(value)


def plans(paths):
    """For one request to each path, the SELECTs the app sent and how each was executed."""
    sql("SET GLOBAL log_output = 'TABLE'", database=None)
    sql("TRUNCATE TABLE mysql.general_log", database=None)
    found = {}
    for name, path, browser in paths:
        sql("SET GLOBAL general_log = 1", database=None)
        browser.get(path)
        sql("SET GLOBAL general_log = 0", database=None)
        rows = sql("SELECT argument FROM mysql.general_log WHERE command_type = 'Query'", database=None)
        sql("TRUNCATE TABLE mysql.general_log", database=None)
        statements = [row["argument"].decode() if isinstance(row["argument"], bytes) else row["argument"]
                      for row in rows]
        found[name] = []
        for statement in statements:
            if not statement.lstrip().upper().startswith("SELECT") or "general_log" in statement:
                continue
            # The statement as sent, values in place: no arguments, so a % in it (a LIKE pattern) is only text.
            plan = json.loads(sql("ANALYZE FORMAT=JSON " + statement, None)[0]["ANALYZE"])
            accesses = list(tables_in(plan))
            examined = sum(int(t.get("r_loops", 1) * (t.get("r_rows") or 0)) for t in accesses)
            steps = ", ".join(f"{t['table_name']}:{t.get('access_type')}"
                              f"{'(' + t['key'] + ')' if t.get('key') else ''}" for t in accesses)
            full_scans = [t["table_name"] for t in accesses
                          if t.get("access_type") == "ALL" and t["table_name"] in ("product", "orders", "order_item")]
            found[name].append({"sql": " ".join(statement.split())[:90], "examined": examined, "steps": steps,
                                "full_scans": full_scans})
    return found


# --- One scale ------------------------------------------------------------------

def headers_for(port):
    """wrk's header for each kind of caller: a customer's and a producer's session, a customer's API token."""
    headers = {role: "Cookie: " + Browser(port).log_in(role, f"{role}1@bench.noeari").cookie()
               for role in ("customer", "producer")}
    headers["customer token"] = f"Authorization: Bearer {api_token(port, 'customer1@bench.noeari')}"
    return headers


def run_setup(setup, todo):
    """Every scenario, and the reference, under one server set-up."""
    config = SETUPS[setup]
    with serving("bench.reference_app:app", REFERENCE_PORT, config["args"], PYTHONPATH=ROOT):
        wrk(f"http://127.0.0.1:{REFERENCE_PORT}/products", seconds=2, close=config["close"])
        found = {"reference": measure(f"http://127.0.0.1:{REFERENCE_PORT}/products", config)}
        measure_alone(found, [("reference", f"http://127.0.0.1:{REFERENCE_PORT}/products", None)], config)
    print(f"   [{setup}] reference /products: {found['reference']['rps']:.0f} req/s", flush=True)
    # A token's rate limit is counted as ever, set past what wrk sends.
    with serving("app:app", APP_PORT, config["args"], API_RATE_PER_MINUTE=str(10**9)) as server:
        headers = headers_for(APP_PORT)
        wrk(f"http://127.0.0.1:{APP_PORT}/products", seconds=2, close=config["close"])
        for name, path, role in todo:
            found[name] = measure(f"http://127.0.0.1:{APP_PORT}{path}", config, headers.get(role))
            print(f"   [{setup}] {name}: {found[name]}", flush=True)
        measure_alone(found, [(name, f"http://127.0.0.1:{APP_PORT}{path}", headers.get(role))
                              for name, path, role in todo], config)
        for name, _, _ in todo:
            print(f"   [{setup}] {name} alone: {found[name]['alone_rounds']}", flush=True)
        found["memory"] = worker_memory(server)
    return found


def api_token(port, email):
    """A customer's API token, as a program gets one."""
    body = urllib.parse.urlencode({"email": email, "password": generate.BENCH_PASSWORD, "role": "customer"}).encode()
    return json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/tokens", body, timeout=30).read())["token"]


def run_scale(scale):
    print(f"\n== {scale}: building {DATABASE}", flush=True)
    counts, build_seconds = generate.build(generate.SCALES[scale], DATABASE)
    settle_seconds = settle()
    print(f"   {counts} in {build_seconds:.1f} s, written out in {settle_seconds:.1f} s", flush=True)
    todo = scenarios()
    result = {"scale": scale, "counts": counts, "build_seconds": build_seconds, "settle_seconds": settle_seconds,
              "data": data_notes(),
              "setups": {setup: run_setup(setup, todo) for setup in SETUPS}}

    with serving("app:app", APP_PORT):
        customer = Browser(APP_PORT).log_in("customer", "customer1@bench.noeari")
        producer = Browser(APP_PORT).log_in("producer", "producer1@bench.noeari")
        result["search"] = search_is_complete(customer)
        print(f"   search: {result['search']}", flush=True)
        anonymous = Browser(APP_PORT)
        result["plans"] = plans([(name, path, {"customer": customer, "producer": producer}.get(role, anonymous))
                                 for name, path, role in todo])
        result["checkout"] = [checkout_throughput(contested) for contested in (True, False)]
        print(f"   checkout: {result['checkout']}", flush=True)
    return result


GROWN = [LOGGED_IN, SEARCH, API, CART, DASHBOARD, SCHEDULE, BALANCE]


def run_growth():
    """At each growth point, each page's p50 with one client under the production settings."""
    points = []
    for point in generate.GROWTH:
        sizes = generate.growth_sizes(**point)
        print(f"\n== growth: building {DATABASE} with {sizes}", flush=True)
        generate.build(sizes, DATABASE)
        settle()
        todo = [(name, path, role) for name, path, role in scenarios() if name in GROWN]
        with serving("app:app", APP_PORT, API_RATE_PER_MINUTE=str(10**9)):
            headers = headers_for(APP_PORT)
            wrk(f"http://127.0.0.1:{APP_PORT}/products", seconds=1, connections=1)
            p50 = {name: wrk(f"http://127.0.0.1:{APP_PORT}{path}", headers.get(role), seconds=GROWTH_SECONDS,
                             connections=1)["p50"] for name, path, role in todo}
        points.append(dict(point, p50=p50, **data_notes()))
        print(f"   {points[-1]}", flush=True)
    return points


# --- Report ---------------------------------------------------------------------

def targets(result):
    lines = []

    def check(ok, text):
        lines.append(f"- {'MET' if ok else 'MISSED'}: {text}")

    for setup, s in result["setups"].items():
        ref, logged_in = s["reference"], s[LOGGED_IN]
        for name, floor in [("/products (anonymous)", 1.0), (LOGGED_IN, 0.6), ("/products/<id> (anonymous)", 1.0),
                            ("/producers/<id> (anonymous)", 1.0)]:
            ratio = s[name]["rps"] / ref["rps"]
            check(ratio >= floor, f"{setup}: {name} reaches {ratio:.2f}× the reference's requests/s (target ≥ {floor}×)")
        for name, most in WITHIN.items():
            ratio = s[name]["alone_p50"] / logged_in["alone_p50"]
            check(ratio <= most, f"{setup}: {name} p50 (one connection) is {ratio:.2f}× the logged-in /products p50 "
                                 f"(target ≤ {most}×)")
        bad = sum(v["bad"] for k, v in s.items() if k != "memory")
        check(bad == 0, f"{setup}: {bad} non-2xx/3xx responses or socket errors across the scenarios")
    found = result["search"]
    check(found["complete"], f"search is complete: it shows {found['shown']:,} products for "
                             f"“{generate.COMMON_WORD}”, the listed products holding the word are {found['expected']:,}, "
                             f"and its last page shows the remaining {found['last_page_cards']}")
    full = sorted({t for plans in result["plans"].values() for p in plans for t in p["full_scans"]})
    check(not full, f"full scans of product, orders or order_item: {', '.join(full) or 'none'}")
    for c in result["checkout"]:
        kind = "contested" if c["contested"] else "uncontested"
        if c["contested"]:
            check(c["orders_per_second"] >= 300, f"contested checkout places {c['orders_per_second']:.0f} orders/s "
                                                 f"(median of {len(c['rounds'])} rounds; target ≥ 300)")
            check(not c["oversold"], f"contested checkout oversold nothing in {len(c['rounds'])} rounds: in the "
                                     f"median one, {c['contested_sold']} of {CHECKOUT_STOCK} units sold, "
                                     f"{c['contested_left']} left, lowest stock {c['lowest_stock']}")
        check(c["errors"] == 0, f"{kind} checkout: {c['errors']} responses other than placed (302) or refused (409)")
    return lines


def report(result, started):
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    free = subprocess.run(["free", "-g"], capture_output=True, text=True).stdout.rstrip()
    out = ["# Benchmark results", "",
           f"- Date: {started:%Y-%m-%d %H:%M} UTC",
           f"- Machine: `nproc` = {os.cpu_count()}; `free -g`:", "", "```", free, "```", "",
           f"- Commit: {commit}{' (with uncommitted changes)' if dirty else ''}",
           f"- Command: `make bench` (BENCH_SCALE={result['scale']}); per scenario wrk -t1 for {SECONDS} s under load, "
           f"then one connection for {ALONE_SECONDS} s a page, {ALONE_ROUNDS} rounds taking the pages in turn (the "
           "median round counts); the app and the reference under each set-up:",
           *[f"  - {name}: {config['label']}" for name, config in SETUPS.items()],
           f"- Data: {', '.join(f'{v:,} {k}' for k, v in result['counts'].items())}; "
           f"built in {result['build_seconds']:.1f} s, then written out by MariaDB (its dirty pages flushed, its undo "
           f"history purged) in {result['settle_seconds']:.1f} s before anything is measured, as at each growth point. "
           f"The dashboards' producer has "
           f"{result['data']['producer_orders']:,} orders, {result['data']['day_orders']} on the schedule's day.",
           "", "## Targets", "", *targets(result), ""]
    for setup, s in result["setups"].items():
        ref = s["reference"]
        out += [f"## {setup}: {SETUPS[setup]['label']}", "",
                f"req/s, p50 and p99 under {SETUPS[setup]['connections']} clients; \"p50 alone\" with one client "
                "(the page's own time, no queue), which the latency targets use: the median round, with the rounds' range.", "",
                "| Scenario | req/s | p50 ms | p99 ms | p50 alone ms | × reference req/s | bad responses |",
                "|---|---:|---:|---:|---:|---:|---:|"]
        for name, m in s.items():
            if name == "memory":
                continue
            label = "reference /products (one query, minimal template)" if name == "reference" else name
            spread = f"{min(m['alone_rounds']):.2f}–{max(m['alone_rounds']):.2f}"
            out.append(f"| {label} | {m['rps']:.0f} | {m['p50']:.2f} | {m['p99']:.2f} | {m['alone_p50']:.2f} ({spread}) | "
                       f"{m['rps'] / ref['rps']:.2f} | {m['bad']} |")
        out += ["", "Worker memory (RSS): " + ", ".join(f"{m:.0f} MiB" for m in s["memory"]), ""]
    out += ["## Checkout", "",
            f"Over HTTP, {CHECKOUT_THREADS} at a time, each a cart from two producers; the POST is timed, not the "
            "confirmation page it redirects to. Contested: the customers compete for the last "
            f"{CHECKOUT_STOCK} units of one of the two products, so half of them get it (and order the other "
            "producer's alone: the sold-out line stays in their cart). The same customers check out in "
            f"{CHECKOUT_ROUNDS} rounds, their carts and the stock set up again before each; the median round is "
            "shown, with every round's rate.", ""]
    for c in result["checkout"]:
        out.append(f"- {'Contested' if c['contested'] else 'Uncontested'} (rounds: "
                   + ", ".join(f"{rate:.0f}" for rate in c["rounds"]) + f" orders/s): {c['checkouts']} checkouts in "
                   f"{c['seconds']:.2f} s placed {c['orders']} orders = **{c['orders_per_second']:.0f} orders/s** "
                   f"({c['checkouts_per_second']:.0f} checkouts/s; {c['succeeded']} placed, {c['refused']} refused, "
                   f"{c['errors']} errors). Lowest stock afterwards: {c['lowest_stock']}; first product "
                   f"{c['contested_sold']} sold, {c['contested_left']} left.")
    out += [""]
    if result.get("growth"):
        points = result["growth"]
        out += ["## Growth", "",
                f"p50 in ms with one client (wrk, {GROWTH_SECONDS} s each) under the production settings, as the data "
                "grows: products at 10,000 orders, then orders at 10,000 products. 100 products a producer; the "
                "dashboards' producer holds half the orders up to 5,000.", "",
                "| Scenario | " + " | ".join(f"{p['products']:,} products, {p['orders']:,} orders" for p in points) + " |",
                "|---|" + "---:|" * len(points)]
        for name in GROWN:
            out.append(f"| {name} | " + " | ".join(f"{p['p50'][name]:.2f}" for p in points) + " |")
        out += ["| (the dashboards' producer's orders; the schedule day's) | " +
                " | ".join(f"{p['producer_orders']:,}; {p['day_orders']}" for p in points) + " |", ""]
    out += ["Query plans (ANALYZE of each SELECT one request sends; rows examined = r_loops × r_rows):", "",
            "| Scenario | Statement | Access per table | Rows examined |", "|---|---|---|---:|"]
    for name, statements in result["plans"].items():
        for p in statements:
            out.append(f"| {name} | `{p['sql'].replace('|', '/')}` | {p['steps']} | {p['examined']:,} |")
    out.append("")
    notes = os.path.join(ROOT, "bench", "NOTES.md")
    if os.path.exists(notes):
        out += ["", open(notes, encoding="utf-8").read()]
    text = "\n".join(out)
    print("\n" + text)
    with open(os.path.join(ROOT, "bench", "RESULTS.md"), "w") as f:
        f.write(text)


def main():
    started = datetime.datetime.now(datetime.timezone.utc)
    scale = os.environ.get("BENCH_SCALE", "large")
    if scale not in generate.SCALES:
        raise SystemExit("BENCH_SCALE must be small or large")
    result = run_scale(scale)
    if os.environ.get("BENCH_GROWTH", "1" if scale == "large" else "0") == "1":
        result["growth"] = run_growth()
    report(result, started)


if __name__ == "__main__":
    main()
