"""`make bench-resilience`: the front server under slow clients, bursts of form posts after a pause, a
reload under load, a paused database, heavy photo uploads, and the timing of forgot-password for known and
unknown emails.

It runs `make run`'s own stack (scripts/services.sh: nginx from deploy/nginx.conf, gunicorn from
gunicorn.conf.py, the worker) on its own port, database (noeari_resilience, rebuilt with the demo
data) and RUN_DIR (var/bench/resilience), so a `make run` beside it is left alone. The database
server is the project's one in var/, which the paused-database part stops for a while with SIGSTOP.
The figures are printed and written to bench/RESILIENCE.md.
"""
import datetime
import http.client
import io
import os
import re
import signal
import socket
import statistics
import subprocess
import threading
import time
import urllib.parse
import uuid

from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATABASE = "noeari_resilience"
HOST, PORT = "127.0.0.1", 5103
RUN_DIR = os.path.join(ROOT, "var", "bench", "resilience")
SLOW_CLIENTS = int(os.environ.get("BENCH_SLOW_CLIENTS", "50"))
SLOW_SECONDS = int(os.environ.get("BENCH_SLOW_SECONDS", "60"))
PAUSE_REQUESTS = 6
TIMING_PAIRS = int(os.environ.get("BENCH_TIMING_PAIRS", "200"))
PRODUCER = ("hartley@noeari.com", "password123")  # from seed.sql
ENV = dict(os.environ, MYSQL_DB=DATABASE, BIND=f"{HOST}:{PORT}", RUN_DIR=RUN_DIR,
           UPLOAD_FOLDER=os.path.join(RUN_DIR, "uploads"), OUTBOX_FOLDER=os.path.join(RUN_DIR, "outbox"),
           # Everything here comes from 127.0.0.1; the per-client reset limit would end the timing run
           # after 10 requests. The per-email limit stays, so each known email is asked once.
           RESET_CLIENT_LIMIT="1000000")
ENV.pop("SMTP_HOST", None)
MYSQL = ["mariadb", "--no-defaults", f"--socket={os.environ.get('MYSQL_UNIX_SOCKET', '')}",
         f"--user={os.environ.get('MYSQL_USER', '')}"]


def sh(*command, **kwargs):
    return subprocess.run(command, cwd=ROOT, env=ENV, check=True, capture_output=True, text=True, **kwargs).stdout


def sql(statement):
    return sh(*MYSQL, "--batch", "--skip-column-names", DATABASE, "-e", statement)


# --- A small HTTP client: one keep-alive connection, the session cookie, the CSRF token -----------

class Client:
    def __init__(self, timeout=60):
        self.timeout = timeout
        self.connection = None
        self.cookies = {}
        self.token = None

    def request(self, method, path, body=None, headers=None):
        """(status, seconds, body text); one reconnect when nginx has closed the kept connection."""
        headers = dict(headers or {})
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        for attempt in (1, 2):
            if self.connection is None:
                self.connection = http.client.HTTPConnection(HOST, PORT, timeout=self.timeout)
            started = time.perf_counter()
            try:
                self.connection.request(method, path, body=body, headers=headers)
                response = self.connection.getresponse()
                text = response.read().decode("utf-8", "replace")
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.connection.close()
                self.connection = None
                if attempt == 2:
                    raise
                continue
            elapsed = time.perf_counter() - started
            for header, value in response.getheaders():
                if header.lower() == "set-cookie":
                    name, _, rest = value.partition("=")
                    self.cookies[name] = rest.split(";")[0]
            if response.getheader("Connection", "").lower() == "close":
                self.connection.close()
                self.connection = None
            found = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', text)
            self.token = found.group(1) if found else self.token
            return response.status, elapsed, text

    def get(self, path):
        return self.request("GET", path)

    def post(self, path, fields):
        body = urllib.parse.urlencode(dict(fields, csrf_token=self.token))
        return self.request("POST", path, body, {"Content-Type": "application/x-www-form-urlencoded"})

    def post_file(self, path, fields, name, filename, content):
        boundary = uuid.uuid4().hex
        parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'.encode()
                 for key, value in dict(fields, csrf_token=self.token).items()]
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                     f"Content-Type: application/octet-stream\r\n\r\n".encode() + content + b"\r\n")
        body = b"".join(parts) + f"--{boundary}--\r\n".encode()
        return self.request("POST", path, body, {"Content-Type": f"multipart/form-data; boundary={boundary}"})


def percentile(values, share):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def ms(seconds):
    return f"{seconds * 1000:,.1f} ms"


# --- Set-up -----------------------------------------------------------------------------------

def start():
    sh(*MYSQL, "-e", f"DROP DATABASE IF EXISTS `{DATABASE}`")
    sh("scripts/db.sh", "create", DATABASE)
    sh(".venv/bin/flask", "--app", "app", "init-db", "--seed")
    # Known emails for the timing run: one customer each, with the demo password's hash.
    sql("INSERT INTO customer (first_name, email, password_hash) SELECT CONCAT('Timing ', seq),"
        " CONCAT('known', seq, '@example.com'), password_hash FROM seq_1_to_%d"
        " CROSS JOIN (SELECT password_hash FROM customer WHERE customer_id = 1) AS demo" % TIMING_PAIRS)
    print(sh("scripts/services.sh", "start").strip())
    for _ in range(50):
        try:
            if Client(timeout=2).get("/healthz")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit("the stack did not start; see var/bench/resilience/log/")


def stop():
    print(sh("scripts/services.sh", "stop").strip())


# --- 1. Slow clients --------------------------------------------------------------------------

def slow_client(until, opened):
    """Hold one connection open by sending a request's headers a line every few seconds, forever;
    when the front server gives up on it (client_header_timeout), open another."""
    while time.monotonic() < until:
        try:
            with socket.create_connection((HOST, PORT), timeout=5) as conn:
                opened.append(1)
                conn.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n")
                while time.monotonic() < until:
                    time.sleep(3)
                    conn.sendall(b"X-Slow: 1\r\n")
        except OSError:
            time.sleep(0.1)


def probe(until, latencies, failures):
    """Normal visitors: a page that needs the database, a static file, the health check, in turn."""
    client = Client(timeout=30)
    paths = ["/products", "/static/style.css", "/", "/healthz"]
    n = 0
    while time.monotonic() < until:
        try:
            status, elapsed, _ = client.get(paths[n % len(paths)])
            latencies.append(elapsed)
            if status != 200:
                failures.append(status)
        except OSError as error:
            failures.append(repr(error))
            client = Client(timeout=30)
        n += 1
        time.sleep(0.02)


def measure_probes(seconds, slow=0):
    until = time.monotonic() + seconds
    latencies, failures, opened = [], [], []
    threads = [threading.Thread(target=slow_client, args=(until, opened)) for _ in range(slow)]
    threads += [threading.Thread(target=probe, args=(until, latencies, failures)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"requests": len(latencies), "failures": len(failures), "p50": percentile(latencies, 0.5),
            "p99": percentile(latencies, 0.99), "max": max(latencies), "slow connections opened": len(opened)}


# --- 2. Posts after a pause, and reloads ---------------------------------------------------------

def one_request(method, path, body=None):
    """One request on a new connection to nginx: (status or error name, seconds)."""
    started = time.monotonic()
    conn = http.client.HTTPConnection(HOST, PORT, timeout=60)
    try:
        conn.request(method, path, body=body, headers={"Content-Type": "application/x-www-form-urlencoded"})
        response = conn.getresponse()
        response.read()
        return response.status, time.monotonic() - started
    except OSError as error:
        return type(error).__name__, time.monotonic() - started
    finally:
        conn.close()


def at_once(count, call):
    results, barrier = [None] * count, threading.Barrier(count)

    def run(index):
        barrier.wait()
        results[index] = call()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def posts_after_a_pause(rounds=40, width=16):
    """The reported race: GETs fill nginx's kept connections to gunicorn, a pause of about gunicorn's old
    2 s keep-alive, then POSTs on them. Each POST lacks a CSRF token: the app answers 400, nginx alone 502."""
    statuses = []
    for n in range(rounds):
        at_once(width, lambda: one_request("GET", "/products?page=1"))
        time.sleep(1.9 + (n % 5) * 0.05)
        statuses += [status for status, _ in at_once(width, lambda: one_request(
            "POST", "/login/customer", "email=nobody%40example.com&password=x"))]
    return {"posts": len(statuses), "502": statuses.count(502),
            "other": sorted({str(status) for status in statuses} - {"400", "502"})}


def during(action, rate=40):
    """Run action while requests for /healthz start every 1/rate s whatever the answers (open loop, so a
    stall shows in every request that arrives during it); their latencies and failures."""
    results, done, threads = [], threading.Event(), []

    def launch():
        while not done.is_set():
            threads.append(threading.Thread(target=lambda: results.append(one_request("GET", "/healthz"))))
            threads[-1].start()
            time.sleep(1 / rate)

    launcher = threading.Thread(target=launch)
    launcher.start()
    time.sleep(1)
    started = time.monotonic()
    action()
    took = time.monotonic() - started
    time.sleep(1)
    done.set()
    launcher.join()
    for thread in threads:
        thread.join()
    latencies = [elapsed for _, elapsed in results]
    return {"requests": len(results), "failures": sum(status != 200 for status, _ in results),
            "p50": percentile(latencies, 0.5), "p99": percentile(latencies, 0.99), "max": max(latencies),
            "took": took}


def plain_hup():
    """What `make run` used to do: HUP, which replaces every worker at once; then wait for the new ones."""
    pid = int(open(os.path.join(RUN_DIR, "gunicorn.pid")).read())
    os.kill(pid, signal.SIGHUP)
    time.sleep(6)


def reloads():
    return {"`make run` on a running stack (rolling: a new master beside the old)":
            during(lambda: sh("scripts/services.sh", "start")),
            "gunicorn HUP, as before (every worker replaced at once)": during(plain_hup)}


# --- 3. A paused database ---------------------------------------------------------------------

def paused_database():
    pid = int(open(os.path.join(ROOT, "var", "mysql.pid")).read())
    client = Client(timeout=120)
    client.get("/products")
    results = []
    os.kill(pid, signal.SIGSTOP)
    try:
        for n in range(PAUSE_REQUESTS):
            path = "/healthz" if n % 3 == 2 else "/products"
            status, elapsed, _ = client.get(path)
            results.append((path, status, elapsed))
    finally:
        paused_for = time.monotonic()
        os.kill(pid, signal.SIGCONT)
    recovered = None
    while recovered is None and time.monotonic() - paused_for < 60:
        status, elapsed, _ = client.get("/products")
        if status == 200:
            recovered = time.monotonic() - paused_for
    return results, recovered


# --- 3. Photo uploads -------------------------------------------------------------------------

def png(mode, size):
    buffer = io.BytesIO()
    Image.new(mode, size).save(buffer, "PNG", optimize=False, compress_level=9)
    return buffer.getvalue()


def photo(size, quality=85, grain=8):
    """A photo-like JPEG: smooth noise, so it compresses as a real photo does."""
    buffer = io.BytesIO()
    Image.effect_noise((size[0] // grain, size[1] // grain), 60).convert("RGB").resize(size, Image.BILINEAR) \
        .save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


UPLOADS = [
    ("1 × 39,000,000 PNG (F1)", "tall.png", lambda: png("L", (1, 39_000_000)), 400),
    ("6300 × 6300 RGBA PNG (F1)", "rgba.png", lambda: png("RGBA", (6300, 6300)), 400),
    ("4000 × 3000 JPEG photo", "photo.jpg", lambda: photo((4000, 3000)), 302),
    ("10000 × 7000 JPEG", "huge.jpg", lambda: photo((10000, 7000), 50, grain=16), 302),  # under the 5 MB limit
]


def workers():
    master = open(os.path.join(RUN_DIR, "gunicorn.pid")).read().strip()
    return subprocess.run(["pgrep", "-P", master], capture_output=True, text=True).stdout.split()


def memory(pid, field):
    with open(f"/proc/{pid}/status") as status:
        return int(next(line for line in status if line.startswith(field)).split()[1]) / 1024


def reset_peaks(pids):
    for pid in pids:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current resident size


def producer():
    client = Client(timeout=120)
    client.get("/login/producer")
    status, _, _ = client.post("/login/producer", {"email": PRODUCER[0], "password": PRODUCER[1]})
    assert status == 302, f"the demo producer could not log in ({status})"
    client.get("/dashboard/products/new")
    return client


def upload(client, filename, content, results, at_once=1):
    fields = {"name": f"Upload {uuid.uuid4().hex[:8]}", "description": "", "category": "Vegetables",
              "price": "1.00", "unit": "each", "quantity_available": "1", "reorder_threshold": "0"}
    status, elapsed, text = client.post_file("/dashboard/products/new", fields, "image", filename, content)
    message = re.search(r'class="field-error"[^>]*>([^<]+)<', text)
    results.append((status, elapsed, message.group(1).strip() if message else ""))


def uploads():
    rows = []
    for label, filename, make, expected in UPLOADS:
        content = make()
        for at_once in (1, 3):
            clients = [producer() for _ in range(at_once)]
            pids = workers()
            before = {pid: memory(pid, "VmRSS") for pid in pids}
            reset_peaks(pids)
            results = []
            threads = [threading.Thread(target=upload, args=(c, filename, content, results)) for c in clients]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            growth = [memory(pid, "VmHWM") - before[pid] for pid in pids]
            peak = max(memory(pid, "VmHWM") for pid in pids)
            rows.append({"file": label, "bytes": len(content), "at once": at_once,
                         "statuses": sorted({r[0] for r in results}), "expected": expected,
                         "seconds": max(r[1] for r in results), "peak": peak, "growth": max(growth),
                         "total growth": sum(growth), "message": results[0][2]})
    return rows


# --- 4. Forgot-password timing ----------------------------------------------------------------

def forgot_timing():
    client = Client()
    client.get("/password/forgot/customer")
    known, unknown = [], []
    for n in range(1, TIMING_PAIRS + 1):
        for email, times in ((f"known{n}@example.com", known), (f"nobody{n}-{uuid.uuid4().hex[:6]}@example.com",
                                                                 unknown)):
            status, elapsed, _ = client.post("/password/forgot/customer", {"email": email})
            assert status == 302, status
            times.append(elapsed)
    threshold = (statistics.median(known) + statistics.median(unknown)) / 2
    right = sum(t > threshold for t in known) + sum(t <= threshold for t in unknown)
    if statistics.median(known) < statistics.median(unknown):
        right = 2 * TIMING_PAIRS - right
    return {"known": statistics.median(known), "unknown": statistics.median(unknown),
            "known p90": percentile(known, 0.9), "unknown p90": percentile(unknown, 0.9),
            "classified": right / (2 * TIMING_PAIRS)}


# --- Report -----------------------------------------------------------------------------------

def main():
    settings = {key: os.environ.get(key) for key in ("MYSQL_CONNECT_TIMEOUT", "MYSQL_READ_TIMEOUT",
                                                      "MYSQL_WRITE_TIMEOUT") if os.environ.get(key)}
    start()
    try:
        print("normal requests alone ...", flush=True)
        alone = measure_probes(10)
        print(f"{SLOW_CLIENTS} slow-header connections for {SLOW_SECONDS} s ...", flush=True)
        attacked = measure_probes(SLOW_SECONDS, slow=SLOW_CLIENTS)
        print("posts after a pause ...", flush=True)
        bursts = posts_after_a_pause()
        print("reloads under load ...", flush=True)
        reload_rows = reloads()
        print("uploads ...", flush=True)
        upload_rows = uploads()
        print("forgot-password timing ...", flush=True)
        timing = forgot_timing()
        print("paused database ...", flush=True)
        paused, recovered = paused_database()
    finally:
        stop()
    lines = [f"# Resilience, measured {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
             "", f"`make bench-resilience` on {os.cpu_count()} cores, through nginx in front of gunicorn "
             f"(`scripts/services.sh`), database timeouts {settings or 'at their defaults'}.", "",
             "## Slow clients", "",
             "4 clients request /products, /static/style.css, / and /healthz in turn, with and without "
             f"{SLOW_CLIENTS} connections that send a header line every 3 s.", "",
             "| | requests | failures | p50 | p99 | max | slow connections opened |", "|---|---|---|---|---|---|---|"]
    for label, row in (("alone, 10 s", alone), (f"with {SLOW_CLIENTS} slow clients, {SLOW_SECONDS} s", attacked)):
        lines.append(f"| {label} | {row['requests']:,} | {row['failures']} | {ms(row['p50'])} | {ms(row['p99'])} "
                     f"| {ms(row['max'])} | {row['slow connections opened']} |")
    lines += ["", "## Form posts after a pause", "",
              "40 rounds: 16 GETs at once, a pause of 1.9–2.1 s (gunicorn's old keep-alive), 16 POSTs at once, each "
              "on a new client connection. nginx closes an idle connection to gunicorn after "
              "`UPSTREAM_IDLE_SECONDS`, and gunicorn only after three times that.", "",
              "| POSTs | bare 502 from nginx | other answers than the app's 400 |", "|---|---|---|",
              f"| {bursts['posts']} | {bursts['502']} | {', '.join(bursts['other']) or 'none'} |", "",
              "## Reloads under light load", "",
              "A request for /healthz every 25 ms (open loop), from 1 s before to 1 s after the reload; "
              "the default workers (2 × cores + 1).", "",
              "| reload | took | requests | failures | p50 | p99 | max |", "|---|---|---|---|---|---|---|"]
    for label, row in reload_rows.items():
        lines.append(f"| {label} | {row['took']:.1f} s | {row['requests']} | {row['failures']} | {ms(row['p50'])} "
                     f"| {ms(row['p99'])} | {ms(row['max'])} |")
    lines += ["", "## Photo uploads", "",
              "Peak resident memory (VmHWM, reset before each upload) of the gunicorn workers.", "",
              "| file | size | at once | status | seconds | peak of a worker | largest growth of a worker "
              "| growth of all workers | message |", "|---|---|---|---|---|---|---|---|---|"]
    for row in upload_rows:
        lines.append(f"| {row['file']} | {row['bytes'] / 1024:,.0f} KB | {row['at once']} "
                     f"| {', '.join(map(str, row['statuses']))} | {row['seconds']:.2f} | {row['peak']:.0f} MiB "
                     f"| {row['growth']:.0f} MiB | {row['total growth']:.0f} MiB | {row['message']} |")
    lines += ["", "## Forgot-password timing", "",
              f"{TIMING_PAIRS} known and {TIMING_PAIRS} unknown emails, alternating, over HTTP through nginx.", "",
              "| | median | p90 |", "|---|---|---|",
              f"| known email | {ms(timing['known'])} | {ms(timing['known p90'])} |",
              f"| unknown email | {ms(timing['unknown'])} | {ms(timing['unknown p90'])} |", "",
              f"Told apart by a threshold at the midpoint of the medians: {timing['classified']:.0%} right "
              "(50% is a coin toss).", "",
              "## A paused database (SIGSTOP on mariadbd)", "", "| request | status | seconds |", "|---|---|---|"]
    for path, status, elapsed in paused:
        lines.append(f"| {path} | {status} | {elapsed:.2f} |")
    lines += ["", f"After SIGCONT, /products answered 200 again after {recovered:.2f} s." if recovered is not None
              else "After SIGCONT, /products did not recover within 60 s."]
    report = "\n".join(lines) + "\n"
    print(report)
    with open(os.path.join(ROOT, "bench", "RESILIENCE.md"), "w") as f:
        f.write(report)
    bad = [row for row in upload_rows if row["expected"] not in row["statuses"]]
    if bad:
        raise SystemExit(f"unexpected upload answers: {bad}")


if __name__ == "__main__":
    main()
