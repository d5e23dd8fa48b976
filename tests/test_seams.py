"""The seams between nginx, gunicorn and the app, on `make run`'s own stack (scripts/services.sh): keep-alive
that never costs a POST a bare 502, reloads that keep serving, nginx's own error page, photos that go when
they are deleted, reset tokens kept out of the access log, and where email links point."""
import hashlib
import http.client
import os
import re
import runpy
import subprocess
import sys
import threading
import time

import pytest

from conftest import free_port

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SERVICES = os.path.join(ROOT, "scripts", "services.sh")
# nginx counts a cached response's life in whole seconds from the second it arrived: 2 s may last nearly 3.
PAST_PHOTO_CACHE = 3.3


class Stack:
    """nginx, gunicorn and the worker as `make run` starts them, on a port and run folder of their own."""

    def __init__(self, run_dir, port, env):
        self.run_dir, self.port, self.env = run_dir, port, env

    def services(self, action):
        done = subprocess.run([SERVICES, action], env=self.env, capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def request(self, method, path, body=None, headers=None, timeout=15):
        """One request on a new client connection: (status, headers, body)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()

    def gunicorn_pid(self):
        with open(os.path.join(self.run_dir, "gunicorn.pid")) as f:
            return int(f.read())


@pytest.fixture(scope="module")
def stack(test_database, tmp_path_factory):
    run_dir = str(tmp_path_factory.mktemp("stack") / "run")
    port = free_port()
    env = dict(os.environ, RUN_DIR=run_dir, BIND=f"127.0.0.1:{port}", MYSQL_DB=test_database, WEB_CONCURRENCY="5",
               UPLOAD_FOLDER=os.path.join(run_dir, "uploads"), OUTBOX_FOLDER=os.path.join(run_dir, "outbox"),
               PHOTO_CACHE_SECONDS="2")
    stack = Stack(run_dir, port, env)
    stack.services("start")
    yield stack
    stack.services("stop")


def in_parallel(count, call):
    results = [None] * count
    barrier = threading.Barrier(count)

    def run(index):
        barrier.wait()
        try:
            results[index] = call(index)
        except OSError as exc:
            results[index] = (type(exc).__name__, None, b"")

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def test_nginx_closes_an_idle_upstream_connection_before_gunicorn_does(stack):
    """The one number is set in gunicorn.conf.py and written into nginx.conf from there."""
    with open(os.path.join(stack.run_dir, "nginx", "nginx.conf")) as f:
        nginx_idle = int(re.search(r"keepalive_timeout (\d+)s;\s*}", f.read()).group(1))
    settings = runpy.run_path(os.path.join(ROOT, "gunicorn.conf.py"))
    assert settings["keepalive"] > nginx_idle + 5, (settings["keepalive"], nginx_idle)


def test_a_burst_of_posts_after_a_pause_never_gets_a_502(stack, db, world):
    """The reported race: 16 GETs fill nginx's kept connections, a pause as long as gunicorn's old keep-alive
    (2 s), then 16 POSTs on them. Before nginx was the one to close first, about 1 in 40 POSTs got a 502."""
    statuses = []
    for round_ in range(40):
        in_parallel(16, lambda n: stack.request("GET", "/products?page=1"))
        time.sleep(1.9 + (round_ % 5) * 0.05)
        results = in_parallel(16, lambda n: stack.request(
            "POST", "/login/customer", body="email=nobody%40example.com&password=x",
            headers={"Content-Type": "application/x-www-form-urlencoded"}))
        statuses += [result[0] for result in results]
    assert len(statuses) == 640
    assert statuses.count(502) == 0, f"{statuses.count(502)} of 640 POSTs got a 502"
    assert set(statuses) == {400}, "each reached the app, which refused it for its missing CSRF token"


def test_a_reload_under_light_load_keeps_every_request_under_a_second(stack):
    """Open-loop light load: a request every 25 ms whatever the answers, so a stall shows in every request
    that arrives during it, not only in the one each client was waiting on."""
    old = stack.gunicorn_pid()
    latencies, failures, done, requests = [], [], threading.Event(), []

    def one():
        started = time.monotonic()
        try:
            status = stack.request("GET", "/healthz", timeout=30)[0]
        except OSError as exc:
            status = type(exc).__name__
        latencies.append(time.monotonic() - started)
        if status != 200:
            failures.append(status)

    def load():
        while not done.is_set():
            requests.append(threading.Thread(target=one))
            requests[-1].start()
            time.sleep(0.025)

    launcher = threading.Thread(target=load)
    launcher.start()
    time.sleep(0.5)
    try:
        output = stack.services("start")
        time.sleep(0.5)
    finally:
        done.set()
        launcher.join(30)
        for request in requests:
            request.join(30)
    assert "gunicorn reloaded" in output
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99)]
    assert failures == [] and len(latencies) > 50
    # A reload that replaced every worker at once (HUP) measured p99 0.7 s, max 0.8 s here with 5 workers on
    # 2 cores, and stalls of several seconds under more load; the rolling one, p99 0.02 s.
    assert p99 < 0.5 and latencies[-1] < 1.0, \
        f"p99 {p99:.2f} s, max {latencies[-1]:.2f} s over {len(latencies)} requests during the reload"
    assert stack.gunicorn_pid() != old, "a new master serves the new code"
    with pytest.raises(ProcessLookupError):
        os.kill(old, 0)


def test_when_no_app_server_answers_nginx_shows_the_sites_own_page(stack):
    pid = stack.gunicorn_pid()
    os.kill(pid, 15)
    deadline = time.monotonic() + 30
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        assert time.monotonic() < deadline
        time.sleep(0.1)
    try:
        status, headers, body = stack.request("GET", "/products")
        page = body.decode()
        assert status == 502
        assert "Temporarily unavailable" in page and "/static/style.css" in page and "noeari" in page
        assert "nginx" not in page.lower(), "not nginx's bare page"
        assert headers["Cache-Control"] == "no-store" and "default-src 'self'" in headers["Content-Security-Policy"]
        status, _, body = stack.request("POST", "/checkout", body="x=1",
                                        headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert status == 502 and b"check whether it went through" in body
    finally:
        stack.services("start")
    assert stack.request("GET", "/healthz")[0] == 200


def test_a_deleted_photo_is_no_longer_served_once_the_cache_time_passes(stack, db):
    data = b"\x89PNG\r\n\x1a\n" + os.urandom(64)
    name = f"{hashlib.sha256(data).hexdigest()[:32]}.png"
    db.execute("INSERT INTO photo (name, content_type, byte_size, sha256, data) VALUES (%s, 'image/png', %s, %s, %s)",
               (name, len(data), hashlib.sha256(data).hexdigest(), data))
    status, headers, body = stack.request("GET", f"/uploads/{name}")
    assert status == 200 and body == data and headers["X-Photo-Cache"] == "MISS"
    assert stack.request("GET", f"/uploads/{name}")[1]["X-Photo-Cache"] == "HIT"
    db.execute("DELETE FROM photo WHERE name = %s", (name,))
    assert stack.request("GET", f"/uploads/{name}")[0] == 200, "kept for PHOTO_CACHE_SECONDS (2 s here)"
    time.sleep(PAST_PHOTO_CACHE)
    assert stack.request("GET", f"/uploads/{name}")[0] == 404
    with open(os.path.join(stack.run_dir, "nginx", "nginx.conf")) as f:
        assert "proxy_cache_valid 200 2s;" in f.read()


def test_the_default_photo_cache_time_is_a_minute():
    with open(os.path.join(ROOT, "scripts", "services.sh")) as f:
        assert "${PHOTO_CACHE_SECONDS:-60}" in f.read()


def test_a_photo_still_there_is_revalidated_not_sent_again(stack, db):
    data = b"\x89PNG\r\n\x1a\n" + os.urandom(64)
    name = f"{hashlib.sha256(data).hexdigest()[:32]}.png"
    db.execute("INSERT INTO photo (name, content_type, byte_size, sha256, data) VALUES (%s, 'image/png', %s, %s, %s)",
               (name, len(data), hashlib.sha256(data).hexdigest(), data))
    assert stack.request("GET", f"/uploads/{name}")[1]["X-Photo-Cache"] == "MISS"
    time.sleep(PAST_PHOTO_CACHE)
    status, headers, body = stack.request("GET", f"/uploads/{name}")
    assert status == 200 and body == data and headers["X-Photo-Cache"] == "REVALIDATED"


def test_reset_tokens_stay_out_of_the_access_log(stack):
    secret = "SECRETtoken" + os.urandom(8).hex()
    stack.request("GET", f"/password/reset/{secret}")
    stack.request("GET", "/static/style.css", headers={"Referer": f"http://127.0.0.1/password/reset/{secret}"})
    log_path = os.path.join(stack.run_dir, "log", "nginx-access.log")
    deadline = time.monotonic() + 5
    while "/static/style.css" not in open(log_path).read():
        assert time.monotonic() < deadline
        time.sleep(0.1)
    log = open(log_path).read()
    assert secret not in log
    assert "GET /password/reset/[token] HTTP/1.1" in log and "[a reset link]" in log


@pytest.mark.parametrize("environment, expected", [
    ({"BIND": "127.0.0.1:5123"}, "http://127.0.0.1:5123"),
    ({"BIND": "0.0.0.0:8080", "BASE_URL": "https://shop.example.org"}, "https://shop.example.org"),
    ({}, "http://127.0.0.1:5000"),
])
def test_email_links_follow_bind_unless_base_url_is_set(environment, expected):
    env = {key: value for key, value in os.environ.items() if key not in ("BIND", "BASE_URL")}
    done = subprocess.run([sys.executable, "-c", "from app import app; print(app.config['BASE_URL'])"], cwd=ROOT,
                          env=dict(env, **environment), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == expected
