"""Fixtures: a throwaway MariaDB database built from schema.sql, and app, client, auth and db helpers."""
import contextlib
import email
import http.server
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from decimal import Decimal

import bcrypt
import pytest
from aiosmtpd.controller import Controller
from playwright.sync_api import sync_playwright
from werkzeug.serving import make_server

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import fulfilment  # noqa: E402
import ledger  # noqa: E402
import measures  # noqa: E402
import search  # noqa: E402
from app import app as flask_app  # noqa: E402
from db import (apply_migrations, create_schema, migration_files, mysql, project_file, run_sql_file,  # noqa: E402
                transactional)

PASSWORD = "correct horse 42"
# The cluster's tests need scripts/cluster.sh's nodes: `make test-cluster` runs them, pointing MYSQL_UNIX_SOCKET
# at node 1 and setting NOEARI_CLUSTER.
collect_ignore = [] if os.environ.get("NOEARI_CLUSTER") else ["test_cluster.py"]
SELLING = {"sold_by", "measure", "step", "min_quantity", "max_quantity", "estimated_weight", "tolerance_percent"}
TABLES = ["cart_item", "order_status_history", "order_item", "orders", "stock", "product", "slot_booking",
          "fulfilment_slot", "fulfilment_option", "producer_closure", "customer", "producer", "operator",
          "operator_audit", "email_outbox", "occurrence_close", "photo", "checkout_key", "ledger_account",
          "ledger_entry", "ledger_leg", "bank_import", "bank_line", "invoice", "invoice_sequence", "card_payment", "card_attempt", "stripe_event", "card_refund", "card_check", "hub", "hub_slot", "hub_basket", "hub_booking", "hub_closure", "hub_product_exclusion", "api_token",
          "webhook_endpoint", "webhook_event", "webhook_delivery"]
# Not in the snapshot, as login_failure is not: api_rate meters every call with a token, refused ones too.
# The order rows can be deleted in; a product's stock row goes with it, by cascade.
DELETE_ORDER = ["webhook_delivery", "webhook_event", "webhook_endpoint", "api_rate", "api_token", "card_check", "card_refund", "stripe_event", "card_attempt", "bank_line", "bank_import", "invoice", "invoice_sequence", "ledger_leg", "ledger_entry", "ledger_account", "cart_item", "order_status_history", "order_item", "orders", "hub_basket", "card_payment", "hub_product_exclusion", "product", "slot_booking",
                "fulfilment_slot", "fulfilment_option", "hub_booking", "hub_closure", "hub_slot", "hub", "producer_closure", "checkout_key", "customer", "producer", "operator_audit",
                "operator", "email_outbox", "occurrence_close", "worker_heartbeat", "login_failure",
                "password_reset_request", "signup_attempt", "photo"]

# A reversal refers to the entry it reverses, a credit note to its invoice, both older: newest first.
NEWEST_FIRST = {"ledger_entry": " ORDER BY entry_id DESC", "invoice": " ORDER BY invoice_id DESC"}


def connect(database):
    """A new autocommit connection made the way the app makes its own, to database (or none)."""
    with flask_app.app_context():
        saved = flask_app.config["MYSQL_DB"]
        flask_app.config["MYSQL_DB"] = database
        try:
            return mysql.connect
        finally:
            flask_app.config["MYSQL_DB"] = saved


def make_database(name, build):
    """Create database name, then call build() with the app pointed at it."""
    server = connect(None)
    server.cursor().execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    server.close()
    with flask_app.app_context():
        saved = flask_app.config["MYSQL_DB"]
        flask_app.config["MYSQL_DB"] = name
        try:
            build()
        finally:
            flask_app.config["MYSQL_DB"] = saved


def migrate_before(filename):
    """In make_database's build: apply every migration before filename, as `flask migrate` records them; a
    cursor to add rows in that older schema before the migrations that follow."""
    cur = mysql.connection.cursor()
    files = migration_files()
    for earlier in files[:files.index(filename)]:
        run_sql_file(cur, project_file("migrations", earlier))
        cur.execute("INSERT INTO schema_migrations (filename) VALUES (%s)", (earlier,))
    return cur


def migrated_from(name, filename, *statements):
    """Database name as an older schema left it (every migration before filename) with statements run in it,
    then migrated as `flask migrate` does; a connection to it."""
    def build():
        cur = migrate_before(filename)
        for statement in statements:
            cur.execute(statement)
        cur.close()
        apply_migrations()
    make_database(name, build)
    return connect(name)


def drop_database(name):
    server = connect(None)
    server.cursor().execute(f"DROP DATABASE IF EXISTS `{name}`")
    server.close()


@pytest.fixture(scope="session")
def test_database():
    """A database made for this test run from schema.sql, and dropped after it."""
    name = f"noeari_test_{secrets.token_hex(4)}"
    assert name != os.environ.get("MYSQL_DB", "noeari")
    make_database(name, create_schema)
    flask_app.config.update(MYSQL_DB=name, TESTING=True, WTF_CSRF_ENABLED=False, BCRYPT_ROUNDS=4)
    yield name
    drop_database(name)


@pytest.fixture
def scratch_databases():
    """Names for extra databases, dropped after the test."""
    names = []

    def new():
        names.append(f"noeari_scratch_{secrets.token_hex(4)}")
        return names[-1]

    yield new
    for name in names:
        drop_database(name)


class Database:
    """Direct access to the test database, to set up rows and check what the app stored."""

    def __init__(self, name):
        self.conn = connect(name)
        # Counter rows are sharded by connection and node (catalogue_version, order_count, producer_version): as
        # a second node's, this connection's shards are never the app's, so a test's own write made between two
        # of the app's statements (a sale meanwhile) never waits on the app's open transaction. With an
        # auto_increment_increment of 1 the ids it makes are as before.
        self.execute("SET SESSION auto_increment_offset = 2")

    def rows(self, sql, args=()):
        cur = self.conn.cursor()
        cur.execute(sql, args)
        rows = cur.fetchall()
        cur.close()
        return rows

    def row(self, sql, args=()):
        rows = self.rows(sql, args)
        return rows[0] if rows else None

    def value(self, sql, args=()):
        row = self.row(sql, args)
        return None if row is None else next(iter(row.values()))

    def execute(self, sql, args=()):
        cur = self.conn.cursor()
        cur.execute(sql, args)
        last_id = cur.lastrowid
        cur.close()
        return last_id

    def snapshot(self):
        """Every row of every data table, to prove that a refused request changed nothing.

        login_failure is left out: a refused login is meant to be counted there.
        """
        return {table: self.rows(f"SELECT * FROM {table} ORDER BY 1") for table in TABLES}

    @contextlib.contextmanager
    def unchanged(self, message="a refused request changed the database"):
        """Within it, no data table may change: for requests that are refused, or that only read."""
        before = self.snapshot()
        yield
        assert self.snapshot() == before, message

    def clear(self):
        self.execute("SET @ledger_purge = 1")  # the ledger's append-only triggers let a throwaway database go
        for table in DELETE_ORDER:
            self.execute(f"DELETE FROM {table}" + NEWEST_FIRST.get(table, ""))
        self.execute("SET @ledger_purge = NULL")

    def delete_orders(self, where="TRUE", args=()):
        """Remove orders outright, as no app path can (their ledger entries, and the accounts' balances, go with
        them): for tests that need an order gone."""
        self.execute("SET @ledger_purge = 1")
        chosen = f"SELECT order_id FROM orders WHERE {where}"
        self.execute(f"DELETE FROM bank_line WHERE order_id IN ({chosen})", args)
        self.execute(f"DELETE FROM card_refund WHERE order_id IN ({chosen})", args)
        self.execute(f"DELETE FROM invoice WHERE order_id IN ({chosen}) ORDER BY invoice_id DESC", args)
        entries = f"SELECT entry_id FROM ledger_entry WHERE order_id IN (SELECT order_id FROM orders WHERE {where})"
        self.execute(f"UPDATE ledger_account a JOIN (SELECT account_id, SUM(amount) AS total FROM ledger_leg"
                     f" WHERE entry_id IN ({entries}) GROUP BY account_id) l ON l.account_id = a.account_id"
                     " SET a.balance = a.balance - l.total", args)
        self.execute(f"DELETE FROM ledger_leg WHERE entry_id IN ({entries})", args)
        self.execute(f"DELETE FROM ledger_entry WHERE order_id IN (SELECT order_id FROM orders WHERE {where})"
                     " ORDER BY entry_id DESC", args)
        self.execute("SET @ledger_purge = NULL")
        self.execute(f"DELETE FROM orders WHERE {where}", args)

    # Builders for test data; passwords are hashed with bcrypt at cost 4.
    def add_customer(self, email, name="Customer", password=PASSWORD):
        return self.execute("INSERT INTO customer (first_name, email, password_hash) VALUES (%s, %s, %s)",
                            (name, email, hash_fast(password)))

    def add_operator(self, email, name="Operator", password=PASSWORD):
        return self.execute("INSERT INTO operator (name, email, password_hash) VALUES (%s, %s, %s)",
                            (name, email, hash_fast(password)))

    def add_producer(self, email, business="Producer", password=PASSWORD, status="approved"):
        return self.execute("INSERT INTO producer (business_name, email, password_hash, status) VALUES (%s, %s, %s, %s)",
                            (business, email, hash_fast(password), status))

    def add_product(self, producer_id, name="Eggs", price="3.20", quantity=10, threshold=3,
                    category="Dairy & Eggs", unit="dozen", available=1, **selling):
        """A product; selling (sold_by, measure, step, min_quantity, ...) for one sold by measure or weight."""
        product_id = self.execute(
            "INSERT INTO product (producer_id, name, description, category, price, unit, is_available)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (producer_id, name, f"Fresh {name}", category, price, unit, available))
        if selling:
            assert set(selling) <= SELLING, selling
            self.execute(f"UPDATE product SET {', '.join(f'{column} = %s' for column in selling)} WHERE product_id = %s",
                         (*selling.values(), product_id))
        self.execute("UPDATE stock SET quantity_available = %s, reorder_threshold = %s WHERE product_id = %s",
                     (quantity, threshold, product_id))
        self.index_search()
        return product_id

    def index_search(self, where="p.search_name IS NULL", args=()):
        """Write the search stems of products changed here by hand, as the app does when it writes them."""
        with flask_app.app_context():
            search.index_products(where, args)

    def add_order(self, customer_id, lines, status="pending", order_type="collection", address=None, post=True):
        """An order for the producer of the first line; lines are (product_id, quantity, unit_price). post=False
        leaves it out of the ledger, as an order from before it, for a test that writes it in a transaction of
        its own (the ledger posts on the app's connection, which cannot see it yet)."""
        producer_id = self.value("SELECT producer_id FROM product WHERE product_id = %s", (lines[0][0],))
        if order_type == "delivery" and address is None:
            address = "1 High Street"
        order_id = self.execute(
            "INSERT INTO orders (customer_id, producer_id, status, order_type, delivery_address)"
            " VALUES (%s, %s, %s, %s, %s)", (customer_id, producer_id, status, order_type, address))
        for product_id, quantity, unit_price in lines:
            product = self.row(f"SELECT p.product_id, {measures.SELLING_COLUMNS} FROM product p"
                               " WHERE p.product_id = %s", (product_id,))
            line = dict(product, quantity=Decimal(str(quantity)), unit_price=Decimal(str(unit_price)))
            weighed = line["sold_by"] == "weighed"
            self.execute("INSERT INTO order_item (order_id, product_id, quantity, unit_price, sold_by, measure,"
                         " estimated_weight, tolerance_percent, line_total) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                         (order_id, product_id, quantity, unit_price, line["sold_by"], line["measure"],
                          line["estimated_weight"] if weighed else None, line["tolerance_percent"] if weighed else None,
                          measures.line_total(line)))
        if post:
            with flask_app.app_context():
                transactional(ledger.sync_order)(order_id, "Order placed")
        return order_id

    def add_option(self, producer_id, kind="collection", name=None, postcodes=None, fee="0.00", minimum="0.00",
                   free_over=None, cutoff_hours=24, capacity=None, active=1, address="1 Farm Lane"):
        """A collection point or delivery zone; with no slots added, customers choose it by arrangement."""
        if kind == "delivery" and postcodes is None:
            postcodes = "BS1, BS2, BA"
        return self.execute(
            "INSERT INTO fulfilment_option (producer_id, kind, name, address, postcodes, fee, minimum_order, free_over,"
            " cutoff_hours, capacity, is_active) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (producer_id, kind, name or kind.capitalize(), address if kind == "collection" else None,
             postcodes if kind == "delivery" else None, fee, minimum, free_over, cutoff_hours, capacity, active))

    def add_slot(self, option_id, weekday, start="09:00", end="12:00"):
        return self.execute("INSERT INTO fulfilment_slot (option_id, weekday, start_time, end_time) VALUES (%s, %s, %s, %s)",
                            (option_id, weekday, start, end))

    def add_basket(self, customer_id, order_id):
        """A hub on Saturdays with order_id in a basket of the customer's there: {'basket': id, 'hub_slot': id}."""
        hub = self.execute("INSERT INTO hub (name, address) VALUES ('Test Hall', '1 Hall Street')")
        hub_slot = self.execute("INSERT INTO hub_slot (hub_id, weekday, start_time, end_time)"
                                " VALUES (%s, 5, '10:00', '13:00')", (hub,))
        basket = self.execute("INSERT INTO hub_basket (customer_id, hub_id, hub_slot_id, basket_date, slot_start,"
                              " slot_end) VALUES (%s, %s, %s, '2099-06-06', '10:00', '13:00')",
                              (customer_id, hub, hub_slot))
        self.execute("UPDATE orders SET basket_id = %s WHERE order_id = %s", (basket, order_id))
        return {"basket": basket, "hub_slot": hub_slot}

    def add_to_cart(self, customer_id, product_id, quantity, price=None):
        if price is None:
            price = self.value("SELECT price FROM product WHERE product_id = %s", (product_id,))
        self.execute("INSERT INTO cart_item (customer_id, product_id, quantity, price_when_added)"
                     " VALUES (%s, %s, %s, %s)", (customer_id, product_id, quantity, price))

    def cart(self, customer_id):
        rows = self.rows("SELECT product_id, quantity FROM cart_item WHERE customer_id = %s", (customer_id,))
        return {row["product_id"]: row["quantity"] for row in rows}

    def stock(self, product_id):
        return self.value("SELECT quantity_available FROM stock WHERE product_id = %s", (product_id,))


def hash_fast(password):
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(4)).decode()


@pytest.fixture
def db(test_database):
    database = Database(test_database)
    database.clear()
    yield database
    database.conn.close()
    with flask_app.app_context():
        assert ledger.problems() == [], "every entry's legs sum to zero and every kept balance is its legs' sum"
        assert search.miscounted_stems() == [], "each stem's kept counts are its listed and in-stock products"


@pytest.fixture
def app(db, tmp_path):
    """The app over a clean test database; config changes made by a test are undone after it."""
    saved = dict(flask_app.config)
    flask_app.config["UPLOAD_FOLDER"] = str(tmp_path / "uploads")
    flask_app.config["OUTBOX_FOLDER"] = str(tmp_path / "outbox")  # never the dev outbox in var/
    yield flask_app
    flask_app.config.clear()
    flask_app.config.update(saved)


@pytest.fixture
def client(app):
    return app.test_client()


class World:
    """Two producers, two customers, products and orders: enough to test who may touch what."""

    def __init__(self, db):
        self.producer = db.add_producer("farm@example.com", "Hartley Farm")
        self.other_producer = db.add_producer("dairy@example.com", "Rosehill Dairy")
        self.customer = db.add_customer("jane@example.com", "Jane")
        self.other_customer = db.add_customer("tom@example.com", "Tom")
        self.product = db.add_product(self.producer, "Potatoes", "1.80", quantity=50, threshold=10,
                                      category="Vegetables", unit="kg")
        self.low_product = db.add_product(self.producer, "Kale", "1.10", quantity=2, threshold=5,
                                          category="Vegetables", unit="bag")
        self.other_product = db.add_product(self.other_producer, "Milk", "1.40", quantity=30, threshold=5,
                                            unit="litre")
        self.order = db.add_order(self.customer, [(self.product, 2, "1.80")])
        self.other_order = db.add_order(self.other_customer, [(self.other_product, 3, "1.40")])
        # Each producer takes orders by arrangement, for collection or for delivery to BS1, BS2 and BA.
        self.collection = {producer: db.add_option(producer, "collection", "Gate") for producer in self.producers}
        self.delivery = {producer: db.add_option(producer, "delivery", "Van") for producer in self.producers}

    @property
    def producers(self):
        return [self.producer, self.other_producer]

    def choose(self, kind="collection", **details):
        """Checkout form data choosing kind, by arrangement, from every producer; details add delivery fields."""
        options = self.collection if kind == "collection" else self.delivery
        data = {f"when_{producer}": f"{option}@arranged" for producer, option in options.items()}
        if kind == "delivery":
            data.update(delivery_address="12 Orchard Row", postcode="BS1 4DJ")
        return dict(data, **details)


@pytest.fixture
def world(db):
    return World(db)


class AuthActions:
    def __init__(self, client):
        self.client = client

    def login(self, role, email, password=PASSWORD):
        return self.client.post(f"/login/{role}", data={"email": email, "password": password})

    def login_customer(self, email="jane@example.com"):
        response = self.login("customer", email)
        assert response.status_code == 302, "customer login failed"
        return response

    def login_producer(self, email="farm@example.com"):
        response = self.login("producer", email)
        assert response.status_code == 302, "producer login failed"
        return response

    def login_operator(self, email="op@example.com"):
        response = self.login("operator", email)
        assert response.status_code == 302 and response.headers["Location"] == "/admin", "operator login failed"
        return response

    def logout(self):
        return self.client.post("/logout")


@pytest.fixture
def auth(client):
    return AuthActions(client)


@pytest.fixture
def operator(db):
    """An operator, op@example.com, who logs in with auth.login_operator(); their id."""
    return db.add_operator("op@example.com", "Olu")


@contextlib.contextmanager
def served(app):
    """The app, with CSRF protection on, served from a thread on a free local port: its URL."""
    saved = dict(app.config)
    app.config["WTF_CSRF_ENABLED"] = True
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()
        app.config.clear()
        app.config.update(saved)


@pytest.fixture
def live_server(app):
    with served(app) as url:
        yield url


def checkout_in_threads(app, customers, barrier_size, data):
    """Log each customer in on a client of their own, then have all check out data at the same moment."""
    clients = []
    for address in customers:
        client = app.test_client()
        assert client.post("/login/customer", data={"email": address, "password": PASSWORD}).status_code == 302
        clients.append(client)
    barrier = threading.Barrier(barrier_size)
    results = [None] * len(clients)

    def run(index):
        barrier.wait()
        response = clients[index].post("/checkout", data=data)
        results[index] = (response.status_code, response.get_data(as_text=True))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(clients))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def workers_at_once(app, work, count=2):
    """Run work(name) for count workers, each in a thread and an app context of its own, all starting together."""
    barrier = threading.Barrier(count)

    def run(name):
        with app.app_context():
            barrier.wait()
            work(name)

    threads = [threading.Thread(target=run, args=(f"worker-{n}",)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)


def run_worker(app):
    """One round of the real worker command, as cron or `make run` would run it: jobs, then due email."""
    result = app.test_cli_runner().invoke(args=["worker", "--once"])
    assert result.exit_code == 0, result.output
    return result.output


class Inbox:
    """What a real SMTP server on a local port received; waiting for mail first lets the worker send it."""

    def __init__(self, app):
        self.app, self.messages, self.refuse = app, [], None

    async def handle_DATA(self, server, session, envelope):
        if self.refuse:
            return self.refuse
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 Message accepted"

    def wait_for(self, count=1, timeout=10):
        run_worker(self.app)
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(self.messages) >= count, "no email arrived"
        return self.messages[count - 1]

    def to(self, address):
        return [message for message in self.messages if message["To"] == address]


class Receiver(http.server.BaseHTTPRequestHandler):
    """A webhook endpoint on a local port: keeps each request (headers and raw body) and answers the next of
    its scripted statuses (200 once they run out)."""

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.received.append({"headers": dict(self.headers), "body": body, "path": self.path})
        status = self.server.script.pop(0) if self.server.script else 200
        self.send_response(status)
        if status in (301, 302, 307):
            self.send_header("Location", self.server.redirect_to)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    """A real HTTP server for webhooks: .url, .received, .script (statuses to answer, in turn)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    server.received, server.script, server.redirect_to = [], [], "http://127.0.0.1:9/"
    server.url = f"http://127.0.0.1:{server.server_port}/hooks"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def round_trips(client, path, status=200):
    """How many round trips to the database one GET of path makes (statements and pings), read from the
    server's counts for the app's connection; after one GET to warm it."""
    client.get(path)
    return round_trips_of(client, lambda: client.get(path), status)


def round_trips_of(client, send, status):
    """How many round trips to the database the request send() makes, which must answer status."""
    def counted():
        with client.application.app_context():
            cur = mysql.connection.cursor()
            cur.execute("SHOW SESSION STATUS WHERE Variable_name IN ('Questions', 'Com_admin_commands')")
            counts = {row["Variable_name"]: int(row["Value"]) for row in cur.fetchall()}
            cur.close()
        return counts["Questions"] + counts["Com_admin_commands"]

    before = counted()
    assert send().status_code == status
    return counted() - before - 1  # less the count's own statement


@pytest.fixture
def smtp(app):
    """A real SMTP server (aiosmtpd) on a local port, which the app's worker sends its mail to."""
    inbox = Inbox(app)
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=controller.port, BASE_URL="https://shop.example")
    yield inbox
    controller.stop()


@pytest.fixture(scope="session")
def localstripe_server():
    """A real, stateful local Stripe API server (localstripe) for the session; its base address."""
    port = free_port()
    # --from-scratch: every localstripe writes its state to one file, /tmp/localstripe.pickle, which another
    # test process's server may be writing; each starts empty instead of reading it.
    server = subprocess.Popen([os.path.join(os.path.dirname(sys.executable), "localstripe"), "--port", str(port),
                               "--from-scratch"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError("localstripe did not start")
            time.sleep(0.1)
    yield base
    server.terminate()
    server.wait(timeout=10)


@pytest.fixture
def cards(app, localstripe_server):
    """The app taking cards through the local Stripe server: its base address."""
    app.config.update(STRIPE_SECRET_KEY="sk_test_noeari", STRIPE_PUBLISHABLE_KEY="pk_test_noeari",
                      STRIPE_WEBHOOK_SECRET="whsec_noeari", STRIPE_API_BASE=localstripe_server,
                      STRIPE_JS_URL=f"{localstripe_server}/js.stripe.com/v3/")
    yield localstripe_server
    app.config.update(STRIPE_SECRET_KEY="", STRIPE_PUBLISHABLE_KEY="", STRIPE_WEBHOOK_SECRET="")


@pytest.fixture
def clock(monkeypatch):
    """Sets the instant every slot rule reads as now."""
    def set_now(instant):
        monkeypatch.setattr(fulfilment, "utc_now", lambda: instant)
    return set_now


@pytest.fixture
def gate(db, world):
    """The farm's collection option, open on Saturdays 09:00–12:00 with a 24-hour cutoff: its slot id."""
    return db.add_slot(world.collection[world.producer], 5, "09:00", "12:00")


CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="session")
def browser():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
