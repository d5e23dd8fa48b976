"""When clients, the database or people misbehave: parallel cart adds, the health check, outages logged
once per burst, and backups that restore."""
import io
import logging
import os
import selectors
import socket
import subprocess
import tarfile
import threading
import urllib.request

import pytest

from conftest import PASSWORD, connect, free_port, hash_fast, make_database
from test_products import VALID, png_bytes, with_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("round_", range(4))
def test_twenty_parallel_adds_to_one_cart_all_count_and_none_deadlocks(app, db, world, round_):
    honey = db.add_product(world.producer, "Honey", quantity=1000)
    clients = [app.test_client() for _ in range(20)]
    for client in clients:
        assert client.post("/login/customer", data={"email": "jane@example.com", "password": PASSWORD}).status_code == 302
    barrier = threading.Barrier(len(clients))
    results = [None] * len(clients)

    def add(index):
        barrier.wait()
        results[index] = clients[index].post("/cart/add", data={"product_id": honey, "quantity": index + 1}).status_code

    threads = [threading.Thread(target=add, args=(n,)) for n in range(len(clients))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert results == [302] * 20, "every add was accepted: no deadlock became a 503"
    assert db.cart(world.customer) == {honey: sum(range(1, 21))}


def test_parallel_adds_by_many_customers_do_not_deadlock(app, db, world):
    products = [db.add_product(world.producer, f"Jar {n}", quantity=100) for n in range(4)]
    emails = [f"buyer{n}@example.com" for n in range(16)]
    clients = []
    for address in emails:
        db.add_customer(address)
        client = app.test_client()
        client.post("/login/customer", data={"email": address, "password": PASSWORD})
        clients.append(client)
    barrier = threading.Barrier(len(clients))
    statuses = []

    def add(client):
        barrier.wait()
        for product in products:
            statuses.append(client.post("/cart/add", data={"product_id": product, "quantity": 1}).status_code)

    threads = [threading.Thread(target=add, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert statuses.count(302) == 64
    assert db.value("SELECT COUNT(*) FROM cart_item WHERE product_id IN (%s, %s, %s, %s)", products) == 64


def test_a_cart_change_that_keeps_waiting_on_a_lock_says_please_try_again_not_the_outage_page(
        app, client, auth, db, world, test_database, caplog):
    """Another transaction holds the customer's cart lock longer than the lock wait timeout, every attempt:
    the add is tried three times, then the customer is told to try again, and the cart is unchanged."""
    options = app.config["MYSQL_CUSTOM_OPTIONS"]
    app.config["MYSQL_CUSTOM_OPTIONS"] = {**options, "init_command": "SET time_zone = '+00:00', innodb_lock_wait_timeout = 1"}
    auth.login_customer()
    holder = connect(test_database)
    cur = holder.cursor()
    cur.execute("START TRANSACTION")
    cur.execute("SELECT * FROM customer WHERE customer_id = %s FOR UPDATE", (world.customer,))
    try:
        response = client.post("/cart/add", data={"product_id": world.product, "quantity": 2})
    finally:
        holder.rollback()
        holder.close()
    page = response.get_data(as_text=True)
    assert response.status_code == 503 and response.headers["Retry-After"] == "1"
    assert "Please try again" in page and "nothing was changed" in page and "temporarily unavailable" not in page
    assert caplog.text.count("attempt") == 3 and "Database unavailable" not in caplog.text
    assert db.cart(world.customer) == {}
    assert client.post("/cart/add", data={"product_id": world.product, "quantity": 2}).status_code == 302
    assert db.cart(world.customer) == {world.product: 2}


def test_healthz_says_ok_with_the_backlog_and_the_worker(client, db, world):
    db.execute("INSERT INTO email_outbox (dedupe_key, recipient, subject, body_text) VALUES ('a', 'a@x', 'S', 'B')")
    response = client.get("/healthz")
    assert response.status_code == 200 and response.mimetype == "application/json"
    body = response.get_json()
    assert body["status"] == "degraded" and body["database"] == "ok" and body["migrations"] == "current"
    assert body["outbox_backlog"] == 1 and body["worker_last_seen_seconds"] is None
    assert body["warnings"] == ["no worker seen in the last two minutes: email and jobs wait"]
    assert "Set-Cookie" not in response.headers
    db.execute("INSERT INTO worker_heartbeat (worker_id, started_at, last_seen) VALUES ('w', UTC_TIMESTAMP(6),"
               " UTC_TIMESTAMP(6))")
    body = client.get("/healthz").get_json()
    assert body["status"] == "ok" and body["warnings"] == []


def test_healthz_is_degraded_but_200_for_failed_email_and_claims_held_by_a_gone_worker(client, db, world):
    db.execute("INSERT INTO worker_heartbeat (worker_id, started_at, last_seen) VALUES ('w', UTC_TIMESTAMP(6),"
               " UTC_TIMESTAMP(6))")
    for n in range(20):
        db.execute("INSERT INTO email_outbox (dedupe_key, recipient, subject, body_text, attempts, failed_at)"
                   " VALUES (%s, 'a@x', 'S', 'B', 5, UTC_TIMESTAMP(6))", (f"failed-{n}",))
    for n in range(16):
        db.execute("INSERT INTO email_outbox (dedupe_key, recipient, subject, body_text, attempts, claimed_by,"
                   " claimed_until) VALUES (%s, 'a@x', 'S', 'B', 1, 'dead:1', UTC_TIMESTAMP(6) + INTERVAL 500 SECOND)",
                   (f"stuck-{n}",))
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "degraded" and body["outbox_failed"] == 20 and body["outbox_stuck"] == 16
    assert body["warnings"] == ["20 emails have failed for good: see the outbox and retry",
                                "16 emails are claimed by a worker that is gone: they wait for the claim to run out"]
    # A claim held by a worker seen just now is work in progress, not stuck.
    db.execute("UPDATE email_outbox SET claimed_by = 'w' WHERE dedupe_key LIKE 'stuck-%%'")
    assert client.get("/healthz").get_json()["outbox_stuck"] == 0


def test_healthz_names_a_missing_migration_and_an_unreachable_database(app, client, db, world):
    db.execute("DELETE FROM schema_migrations WHERE filename = '0011_catalogue_in_stock.sql'")
    try:
        response = client.get("/healthz")
        assert response.status_code == 503
        assert response.get_json()["problems"] == ["1 migrations not applied"]
    finally:
        db.execute("INSERT INTO schema_migrations (filename) VALUES ('0011_catalogue_in_stock.sql')")
    app.config.update(MYSQL_HOST="localhost", MYSQL_UNIX_SOCKET="/nonexistent/mysql.sock")
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.get_json() == {"status": "failing", "problems": ["database unreachable (2002)"]}


def test_an_outage_is_logged_once_per_burst_not_per_request(app, client, world, caplog):
    caplog.set_level(logging.WARNING)
    socket = app.config["MYSQL_UNIX_SOCKET"]
    app.config.update(MYSQL_HOST="localhost", MYSQL_UNIX_SOCKET="/nonexistent/mysql.sock")
    for _ in range(30):
        assert client.get("/products").status_code == 503
    assert caplog.text.count("Database unavailable") == 1
    app.config["MYSQL_UNIX_SOCKET"] = socket
    assert client.get("/products").status_code == 200
    assert "Database available again" in caplog.text and "30 refused requests" in caplog.text


class StallingProxy:
    """A unix socket in front of the test MariaDB that passes bytes both ways until told to stall. Then,
    as with a paused mariadbd, connections are still accepted but nothing is ever answered."""

    def __init__(self, target, path):
        self.target, self.path = target, path
        self.listener = socket.socket(socket.AF_UNIX)
        self.listener.bind(path)
        self.listener.listen(16)
        self.accepted, self.stalled, self.done = 0, threading.Event(), threading.Event()
        self.sockets = [self.listener]
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        selector = selectors.DefaultSelector()
        selector.register(self.listener, selectors.EVENT_READ)
        while not self.done.is_set():
            for key, _ in selector.select(0.05):
                if key.fileobj is self.listener:
                    conn, _ = self.listener.accept()
                    self.accepted += 1
                    self.sockets.append(conn)
                    if self.stalled.is_set():
                        continue  # parked: never answered
                    upstream = socket.socket(socket.AF_UNIX)
                    upstream.connect(self.target)
                    self.sockets.append(upstream)
                    selector.register(conn, selectors.EVENT_READ, upstream)
                    selector.register(upstream, selectors.EVENT_READ, conn)
                elif not self.stalled.is_set():
                    try:
                        data = key.fileobj.recv(65536)
                        if data:
                            key.data.sendall(data)
                            continue
                    except OSError:  # the client gave up on its read timeout: this pair is over
                        pass
                    for side in (key.fileobj, key.data):
                        try:
                            selector.unregister(side)
                        except (KeyError, ValueError):
                            pass
            if self.stalled.is_set():
                self.done.wait(0.05)

    def close(self):
        self.done.set()
        self.thread.join()
        for sock in self.sockets:
            sock.close()


def test_a_stalled_database_is_a_503_after_the_read_timeout_without_waiting_again_to_connect(app, client, world,
                                                                                              tmp_path):
    proxy = StallingProxy(app.config["MYSQL_UNIX_SOCKET"], str(tmp_path / "proxy.sock"))
    try:
        app.config.update(MYSQL_HOST="localhost", MYSQL_UNIX_SOCKET=proxy.path, MYSQL_CONNECT_TIMEOUT=1,
                          MYSQL_CUSTOM_OPTIONS=dict(app.config["MYSQL_CUSTOM_OPTIONS"], read_timeout=1))
        assert client.get("/products").status_code == 200
        assert client.get("/products").status_code == 200
        assert proxy.accepted == 1, "the connection is kept from request to request"
        proxy.stalled.set()
        stalled = client.get("/products")
        assert stalled.status_code == 503 and "temporarily unavailable" in stalled.get_data(as_text=True)
        assert proxy.accepted == 1, "a server that stalled is not asked for a second connection in that request"
        assert client.get("/products").status_code == 503
        assert proxy.accepted == 2, "the next request tries a new connection, which times out too"
        proxy.stalled.clear()
        assert client.get("/products").status_code == 200, "it recovers without a restart"
    finally:
        proxy.close()


def test_schema_commands_wait_for_slow_statements_beyond_the_read_timeout(app, db):
    import db as db_module
    with app.app_context():
        app.config["MYSQL_CUSTOM_OPTIONS"] = dict(app.config["MYSQL_CUSTOM_OPTIONS"], read_timeout=1)
        db_module.lift_query_timeouts()
        assert db_module.query("SELECT SLEEP(1.5) AS slept", one=True)["slept"] == 0
        assert app.config["MYSQL_CUSTOM_OPTIONS"]["init_command"].startswith("SET time_zone")


def test_an_error_in_a_statement_is_a_500_not_an_outage(app, db, caplog):
    import MySQLdb

    from app import database_unavailable
    with app.test_request_context("/"):
        try:
            with app.app_context():
                from db import query
                query("SELECT no_such_column FROM product")
        except MySQLdb.OperationalError as exc:
            response = database_unavailable(exc)
    assert response.status_code == 500 and "Something went wrong" in response.get_data(as_text=True)
    assert "Database unavailable" not in caplog.text


def checksums(database):
    conn = connect(database)
    cur = conn.cursor()
    cur.execute("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s ORDER BY TABLE_NAME",
                (database,))
    tables = [row["TABLE_NAME"] for row in cur.fetchall()]
    sums = {}
    for table in tables:
        cur.execute(f"CHECKSUM TABLE `{database}`.`{table}`")
        sums[table] = cur.fetchone()["Checksum"]
    cur.execute("SELECT TRIGGER_NAME, ACTION_STATEMENT FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = %s"
                " ORDER BY TRIGGER_NAME", (database,))
    triggers = cur.fetchall()
    conn.close()
    return sums, triggers


def test_a_backup_restores_into_an_empty_database_with_identical_checksums_and_the_app_runs_on_it(
        app, client, auth, db, world, test_database, scratch_databases, tmp_path):
    auth.login_producer()
    assert client.post("/dashboard/products/new", data=with_file(VALID, png_bytes())).status_code == 302
    auth.logout()
    auth.login_customer()
    client.post("/cart/add", data={"product_id": world.product, "quantity": 3})
    auth.logout()
    photos = db.rows("SELECT name, sha256 FROM photo ORDER BY name")
    assert len(photos) == 2, "the new product's photo and thumbnail are in the database"
    app.instance_path = str(tmp_path / "instance")
    os.makedirs(app.instance_path)
    with open(os.path.join(app.instance_path, "secret_key"), "w") as f:
        f.write("the-live-key")

    result = app.test_cli_runner().invoke(args=["backup", "--folder", str(tmp_path / "backups")])
    assert result.exit_code == 0, result.output
    [archive] = os.listdir(tmp_path / "backups")
    assert archive.startswith("noeari-") and archive.endswith("Z.tar.gz")
    path = str(tmp_path / "backups" / archive)
    with tarfile.open(path) as tar:
        names = tar.getnames()
        modes = {member.name: member.mode for member in tar.getmembers()}
    assert {"manifest.json", "database.sql", "secret_key"} <= set(names)
    assert set(modes.values()) == {0o600}, "every member, the dump too, is readable by its owner alone"
    assert not [n for n in names if n.startswith("uploads/")], "the photos are in the dump"

    restored = scratch_databases()
    connect(None).cursor().execute(f"CREATE DATABASE `{restored}`")
    app.config.update(MYSQL_DB=restored, UPLOAD_FOLDER=str(tmp_path / "restored-uploads"))
    app.instance_path = str(tmp_path / "new-instance")
    result = app.test_cli_runner().invoke(args=["restore", path])
    assert result.exit_code == 0, result.output
    assert checksums(restored) == checksums(test_database)
    cur = connect(restored).cursor()
    cur.execute("SELECT name, sha256 FROM photo ORDER BY name")
    assert list(cur.fetchall()) == list(photos)
    assert not os.path.exists(tmp_path / "restored-uploads")
    image_url = db.value("SELECT image_url FROM product WHERE name = 'Duck eggs'")
    assert client.get(image_url).status_code == 200, "the restored shop serves the photo"
    with open(os.path.join(app.instance_path, "secret_key")) as f:
        assert f.read() == "the-live-key"

    page = client.get("/products?q=duck").get_data(as_text=True)
    assert "Duck eggs" in page
    auth.login_customer()
    assert "Potatoes" in client.get("/cart").get_data(as_text=True)

    before = checksums(restored)
    result = app.test_cli_runner().invoke(args=["restore", path])
    assert result.exit_code != 0 and "is not empty" in result.output
    assert checksums(restored) == before, "a refused restore changed nothing"


def test_a_backup_from_an_older_version_is_migrated_as_it_is_restored(app, client, scratch_databases, tmp_path):
    from db import migration_files, mysql, run_sql_file

    def build_one_version_behind():
        cur = mysql.connection.cursor()
        for name in migration_files()[:-1]:
            run_sql_file(cur, os.path.join(ROOT, "migrations", name))
            cur.execute("INSERT INTO schema_migrations (filename) VALUES (%s)", (name,))
        cur.execute("INSERT INTO customer (first_name, email, password_hash) VALUES ('Ada', 'ada@example.com', %s)",
                    (hash_fast(PASSWORD),))
        cur.close()

    old, restored = scratch_databases(), scratch_databases()
    make_database(old, build_one_version_behind)
    app.config["MYSQL_DB"] = old
    assert app.test_cli_runner().invoke(args=["backup", "--folder", str(tmp_path)]).exit_code == 0
    [archive] = os.listdir(tmp_path)
    connect(None).cursor().execute(f"CREATE DATABASE `{restored}`")
    app.config.update(MYSQL_DB=restored, UPLOAD_FOLDER=str(tmp_path / "uploads"))
    app.instance_path = str(tmp_path / "instance")
    result = app.test_cli_runner().invoke(args=["restore", str(tmp_path / archive)])
    assert result.exit_code == 0, result.output
    assert f"applied {migration_files()[-1]}" in result.output
    cur = connect(restored).cursor()
    cur.execute("SELECT filename FROM schema_migrations ORDER BY filename")
    assert [row["filename"] for row in cur.fetchall()] == migration_files()
    login = client.post("/login/customer", data={"email": "ada@example.com", "password": PASSWORD})
    assert login.status_code == 302, "the restored shop runs on this code"


def test_restore_refuses_a_file_that_is_not_a_backup(app, tmp_path):
    bogus = tmp_path / "noeari-x.tar.gz"
    bogus.write_bytes(b"not an archive")
    result = app.test_cli_runner().invoke(args=["restore", str(bogus)])
    assert result.exit_code != 0 and "is not a noeari backup" in result.output


@pytest.mark.parametrize("command", ["\\! touch {marker}", "system touch {marker}", "\\. {script}",
                                     "source {script}", "tee {marker}"])
def test_restoring_a_tampered_dump_runs_no_command(app, scratch_databases, tmp_path, command):
    """A dump holding the client's own commands (a shell, another script, a file written) runs none of them."""
    marker, script = tmp_path / "ran", tmp_path / "evil.sql"
    script.write_text(f"\\! touch {marker}\n")
    dump = ("CREATE TABLE t (x INT PRIMARY KEY);\n"
            + command.format(marker=marker, script=script) + "\nINSERT INTO t VALUES (1);\n").encode()
    path = tmp_path / "noeari-tampered.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for name, data in (("manifest.json", b"{}"), ("database.sql", dump)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    target = scratch_databases()
    connect(None).cursor().execute(f"CREATE DATABASE `{target}`")
    app.config.update(MYSQL_DB=target)
    result = app.test_cli_runner().invoke(args=["restore", str(path)])
    assert result.exit_code != 0 and "sandbox" in result.output
    assert not marker.exists(), "the dump ran a command"


def project_processes(run_dir):
    found = subprocess.run(["pgrep", "-f", run_dir], capture_output=True, text=True).stdout.split()
    return [pid for pid in found if int(pid) != os.getpid()]


def test_the_services_start_reload_and_stop_leaving_no_process(test_database, db, tmp_path):
    """`make run`'s own script: nginx in front of gunicorn and the worker, started twice, then stopped."""
    run_dir, port = str(tmp_path / "run"), free_port()
    env = dict(os.environ, RUN_DIR=run_dir, BIND=f"127.0.0.1:{port}", MYSQL_DB=test_database, WEB_CONCURRENCY="1",
               UPLOAD_FOLDER=str(tmp_path / "uploads"), OUTBOX_FOLDER=str(tmp_path / "outbox"))
    services = os.path.join(ROOT, "scripts", "services.sh")

    def run(action):
        return subprocess.run([services, action], env=env, capture_output=True, text=True, timeout=120)

    try:
        started = run("start")
        assert started.returncode == 0, started.stderr
        assert "nginx started" in started.stdout
        page = urllib.request.urlopen(f"http://127.0.0.1:{port}/products", timeout=10)
        assert page.status == 200 and page.headers["Server"] == "nginx"
        first_workers = set(project_processes(run_dir))
        again = run("start")
        assert again.returncode == 0, again.stderr
        assert "gunicorn reloaded" in again.stdout and "nginx reloaded" in again.stdout
        assert urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10).status == 200
        assert set(project_processes(run_dir)) != first_workers, "the reload started new processes"
    finally:
        stopped = run("stop")
    assert stopped.returncode == 0, stopped.stderr
    assert project_processes(run_dir) == []
    assert not [name for name in os.listdir(run_dir) if name.endswith((".pid", ".sock"))]
