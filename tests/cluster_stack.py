"""Fixtures for `make test-cluster` (tests/test_cluster.py): the 3-node Galera cluster of scripts/cluster.sh,
with the test database on it, and the app as `make cluster-run` serves it: one gunicorn and one worker per
node, nginx in front.

The test database is the one tests/conftest.py builds, on node 1 (make test-cluster points MYSQL_UNIX_SOCKET
there); the cluster copies it to the other nodes."""
import http.client
import os
import re
import secrets
import socket
import subprocess
import time
import urllib.parse

import MySQLdb
import pytest
from aiosmtpd.controller import Controller

from conftest import PASSWORD, Inbox, free_port

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLUSTER = os.path.join(ROOT, "scripts", "cluster.sh")
SERVICES = os.path.join(ROOT, "scripts", "services.sh")


def node_connection(node, database=None, **options):
    """A new connection to one node, by its socket, as the test's OS user."""
    kwargs = {"db": database} if database else {}
    return MySQLdb.connect(unix_socket=node, user=os.environ.get("MYSQL_USER") or None, **kwargs, **options)


def cluster(*args, timeout=180):
    done = subprocess.run([CLUSTER, *args], capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture(scope="session", name="nodes")
def nodes_fixture():
    """The nodes' sockets, with every node up and synced."""
    cluster("start")
    return cluster("sockets").split()


class Reply:
    def __init__(self, response):
        self.status, self.headers, self.body = response.status, response.headers, response.read()

    @property
    def text(self):
        return self.body.decode(errors="replace")

    @property
    def location(self):
        return urllib.parse.urlsplit(self.headers.get("Location", "")).path


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout):
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.socket_path)


class Visitor:
    """One browser's cookies, sending each request to the app server it is told (a gunicorn socket) or
    to nginx (host:port)."""

    def __init__(self, server):
        self.server, self.cookies, self.csrf = server, {}, None

    def request(self, method, path, body=None, content_type=None, server=None, headers=None, timeout=30):
        server = server or self.server
        if server.startswith("/"):
            conn = UnixConnection(server, timeout)
        else:
            conn = http.client.HTTPConnection(server, timeout=timeout)
        sent = {"Host": "localhost", **(headers or {})}
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{name}={value}" for name, value in self.cookies.items())
        if content_type:
            sent["Content-Type"] = content_type
        try:
            conn.request(method, path, body=body, headers=sent)
            reply = Reply(conn.getresponse())
        finally:
            conn.close()
        for header in reply.headers.get_all("Set-Cookie") or []:
            name, _, rest = header.partition("=")
            value = rest.split(";", 1)[0]
            if value and "Max-Age=0" not in header and "expires=Thu, 01 Jan 1970" not in header:
                self.cookies[name] = value
            else:
                self.cookies.pop(name, None)
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', reply.text)
        if token:
            self.csrf = token.group(1)
        return reply

    def get(self, path, **kwargs):
        return self.request("GET", path, **kwargs)

    def post(self, path, data=None, **kwargs):
        fields = dict(data or {}, csrf_token=self.csrf)
        return self.request("POST", path, urllib.parse.urlencode(fields),
                            "application/x-www-form-urlencoded", **kwargs)

    def post_file(self, path, data, field, filename, content, **kwargs):
        boundary = secrets.token_hex(16)
        parts = []
        for name, value in dict(data, csrf_token=self.csrf).items():
            parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
                     f"Content-Type: application/octet-stream\r\n\r\n".encode() + content + b"\r\n")
        parts.append(f"--{boundary}--\r\n".encode())
        return self.request("POST", path, b"".join(parts), f"multipart/form-data; boundary={boundary}", **kwargs)

    def login(self, role, email, password=PASSWORD):
        self.get(f"/login/{role}")
        reply = self.post(f"/login/{role}", {"email": email, "password": password})
        assert reply.status == 302, (reply.status, reply.text[:500])
        return reply


class Stack:
    """The app servers (one per node), nginx in front of them, and a worker on each node."""

    def __init__(self, run_dir, port, env, nodes):
        self.run_dir, self.front, self.env, self.nodes = run_dir, f"127.0.0.1:{port}", env, nodes
        self.apps = [os.path.join(run_dir, f"app{n}", "gunicorn.sock") for n in (1, 2, 3)]

    def services(self, action):
        done = subprocess.run([SERVICES, action], env=self.env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def logs(self, name):
        """The text of one log file (gunicorn.log or worker.log) of every app server."""
        text = ""
        for n in (1, 2, 3):
            path = os.path.join(self.run_dir, f"app{n}", "log", name)
            if os.path.exists(path):
                with open(path, encoding="utf-8", errors="replace") as f:
                    text += f.read()
        return text

    def certification_failures(self):
        """Galera's count, summed over the nodes, of transactions that failed certification at commit or were
        aborted by a conflicting write set from another node."""
        total = 0
        for node in self.nodes:
            conn = node_connection(node)
            cur = conn.cursor()
            cur.execute("SHOW GLOBAL STATUS WHERE Variable_name IN ('wsrep_local_cert_failures', 'wsrep_local_bf_aborts')")
            total += sum(int(value) for _, value in cur.fetchall())
            conn.close()
        return total

    def conflicts_retried(self):
        """How many times a unit of work was rolled back and run again after a deadlock or conflict."""
        return len(re.findall(r"attempt \d+ of \d+ hit \(1213", self.logs("gunicorn.log") + self.logs("worker.log")))


@pytest.fixture(scope="session", name="inbox")
def inbox_fixture():
    """A real SMTP server for the workers; messages land in inbox.messages."""
    box = Inbox(None)
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    box.port = controller.port
    yield box
    controller.stop()


@pytest.fixture(scope="session", name="stack")
def stack_fixture(nodes, test_database, inbox, tmp_path_factory):
    run_dir = str(tmp_path_factory.mktemp("cluster-run"))
    port = free_port()
    env = dict(os.environ, RUN_DIR=run_dir, BIND=f"127.0.0.1:{port}", DB_SOCKETS=" ".join(nodes),
               MYSQL_DB=test_database, MYSQL_SYNC_WAIT="1", MYSQL_TRANSACTION_ATTEMPTS="5",
               WEB_CONCURRENCY="2", SECRET_KEY=secrets.token_hex(32), BCRYPT_ROUNDS="4",
               SMTP_HOST="127.0.0.1", SMTP_PORT=str(inbox.port), BASE_URL="https://shop.example",
               WORKER_POLL_SECONDS="1", REMINDER_HOUR="0", UPLOAD_FOLDER=os.path.join(run_dir, "uploads"),
               OUTBOX_FOLDER=os.path.join(run_dir, "outbox"))
    running = Stack(run_dir, port, env, nodes)
    running.services("start")
    yield running
    running.services("stop")


@pytest.fixture(name="fresh")
def fresh_fixture(db, inbox, stack):
    """A clean database (tests/conftest's db fixture) and an empty inbox, the stack running."""
    inbox.messages.clear()
    time.sleep(0.2)
    return db
