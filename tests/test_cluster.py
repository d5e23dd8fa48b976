"""The app on a 3-node Galera cluster, as `make cluster-run` serves it: an app server and a worker on each node.
Run by `make test-cluster`, which starts the cluster (scripts/cluster.sh)."""
import datetime
import hashlib
import os
import random
import re
import shutil
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import MySQLdb
import MySQLdb.cursors
import pytest

from cluster_stack import (ROOT, Visitor, cluster, fresh_fixture, inbox_fixture, node_connection,  # noqa: F401
                           nodes_fixture, stack_fixture)
from conftest import PASSWORD, hash_fast
from test_products import VALID, png_bytes

import fulfilment

BUYERS = 200


def on_node(node, database, sql, args=()):
    """Run one statement on one node, with causal reads; return its rows."""
    conn = node_connection(node, database, cursorclass=MySQLdb.cursors.DictCursor, autocommit=True)
    try:
        cur = conn.cursor()
        cur.execute("SET SESSION wsrep_sync_wait = 1")
        cur.execute(sql, args)
        return cur.fetchall()
    finally:
        conn.close()


def add_buyers(db, count, cart):
    """count customers, each with cart(n) → (product_id, quantity) in their cart; return their emails."""
    password_hash = hash_fast(PASSWORD)
    emails = []
    for n in range(count):
        email = f"buyer{n}@example.com"
        customer = db.execute("INSERT INTO customer (first_name, email, password_hash) VALUES (%s, %s, %s)",
                              (f"Buyer {n}", email, password_hash))
        db.add_to_cart(customer, *cart(n))
        emails.append(email)
    return emails


def check_out_everywhere(stack, emails, data):
    """Log each buyer in on app server n % 3, then have all check out data at once. A buyer told "please try
    again" (503, nothing changed) tries again, as a person would. Return the final statuses and the 503 count."""
    visitors = [Visitor(stack.apps[n % 3]) for n in range(len(emails))]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda pair: (pair[0].login("customer", pair[1]), pair[0].get("/cart")),
                      zip(visitors, emails)))
    barrier, statuses, busy = threading.Barrier(len(visitors)), [None] * len(visitors), []

    def buy(n):
        barrier.wait()
        for _ in range(30):
            reply = visitors[n].post("/checkout", data, timeout=120)
            if reply.status != 503:
                break
            busy.append(n)
            time.sleep(random.uniform(0.2, 1.0))
        statuses[n] = reply.status
        assert reply.status in (302, 409), (reply.status, reply.text[:300])

    threads = [threading.Thread(target=buy, args=(n,)) for n in range(len(visitors))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    return statuses, len(busy)


def test_two_hundred_buyers_on_three_nodes_buy_exactly_the_five_in_stock(fresh, world, stack, nodes, test_database):
    db = fresh
    loaves = db.add_product(world.producer, "Last loaves", "4.00", quantity=5)
    emails = add_buyers(db, BUYERS, lambda n: (loaves, 1))
    conflicts_before, failures_before = stack.conflicts_retried(), stack.certification_failures()
    statuses, busy = check_out_everywhere(stack, emails, world.choose())
    assert statuses.count(302) == 5 and statuses.count(409) == BUYERS - 5
    for node in nodes:
        [sold] = on_node(node, test_database, "SELECT COALESCE(SUM(quantity), 0) AS sold, COUNT(*) AS n"
                         " FROM order_item WHERE product_id = %s", (loaves,))
        assert (sold["sold"], sold["n"]) == (5, 5), "each node holds exactly the five sales"
        assert on_node(node, test_database, "SELECT quantity_available FROM stock WHERE product_id = %s",
                       (loaves,))[0]["quantity_available"] == 0
    print(f"\nstock: sold 5 of 5, oversold 0, {BUYERS - 5} refused, {busy} told to try again,"
          f" {stack.conflicts_retried() - conflicts_before} units retried after 1213,"
          f" {stack.certification_failures() - failures_before} Galera certification failures and aborts")


def test_two_hundred_buyers_on_three_nodes_fill_a_slot_of_three_exactly(fresh, world, stack, nodes, test_database):
    db = fresh
    with stack_app_context():
        day = fulfilment.local_today() + datetime.timedelta(days=3)
    option = world.collection[world.producer]
    db.execute("UPDATE fulfilment_option SET capacity = 3, cutoff_hours = 1 WHERE option_id = %s", (option,))
    slot = db.add_slot(option, day.weekday(), "10:00", "12:00")
    # Each buys a product of their own, so only the slot's capacity stands between them.
    products = [db.add_product(world.producer, f"Jar {n}", quantity=5) for n in range(BUYERS)]
    emails = add_buyers(db, BUYERS, lambda n: (products[n], 1))
    conflicts_before, failures_before = stack.conflicts_retried(), stack.certification_failures()
    statuses, busy = check_out_everywhere(stack, emails, {f"when_{world.producer}": f"{slot}@{day.isoformat()}"})
    assert statuses.count(302) == 3 and statuses.count(409) == BUYERS - 3
    for node in nodes:
        assert on_node(node, test_database, "SELECT COUNT(*) AS n FROM orders WHERE slot_id = %s AND fulfilment_date = %s",
                       (slot, day))[0]["n"] == 3
        assert on_node(node, test_database, "SELECT booked FROM slot_booking WHERE slot_id = %s AND slot_date = %s",
                       (slot, day))[0]["booked"] == 3
    print(f"\nslot: booked 3 of 3, overbooked 0, {BUYERS - 3} refused, {busy} told to try again,"
          f" {stack.conflicts_retried() - conflicts_before} units retried after 1213,"
          f" {stack.certification_failures() - failures_before} Galera certification failures and aborts")


def add_hub(db, world, day, capacity=None, cutoff_hours=48):
    """A co-op hub open on day's weekday, 10:00–13:00, £1.50 a basket, that both producers deliver to:
    ({producer_id: their option there}, the hub's weekly time)."""
    hub = db.execute("INSERT INTO hub (name, address, cutoff_hours, capacity, fee) VALUES ('Market Hall',"
                     " '1 Market Street', %s, %s, 1.50)", (cutoff_hours, capacity))
    hub_slot = db.execute("INSERT INTO hub_slot (hub_id, weekday, start_time, end_time) VALUES (%s, %s, '10:00',"
                          " '13:00')", (hub, day.weekday()))
    options = {}
    for producer in (world.producer, world.other_producer):
        options[producer] = db.execute(
            "INSERT INTO fulfilment_option (producer_id, hub_id, kind, name, address, drop_off, cutoff_hours)"
            " VALUES (%s, %s, 'collection', 'Market Hall', '1 Market Street', 'by 09:00', %s)",
            (producer, hub, cutoff_hours))
        db.execute("INSERT INTO fulfilment_slot (option_id, weekday, start_time, end_time, hub_slot_id)"
                   " VALUES (%s, %s, '10:00', '13:00', %s)", (options[producer], day.weekday(), hub_slot))
    return options, hub_slot


def test_two_hundred_baskets_on_three_nodes_fill_a_hub_time_of_three_exactly(fresh, world, stack, nodes,
                                                                            test_database):
    db = fresh
    with stack_app_context():
        day = fulfilment.local_today() + datetime.timedelta(days=3)
    _, hub_slot = add_hub(db, world, day, capacity=3)
    jars = [db.add_product(world.producer, f"Jar {n}", quantity=5) for n in range(BUYERS)]
    pots = [db.add_product(world.other_producer, f"Pot {n}", quantity=5) for n in range(BUYERS)]
    emails = add_buyers(db, BUYERS, lambda n: (jars[n], 1))
    for n, email in enumerate(emails):
        db.add_to_cart(db.value("SELECT customer_id FROM customer WHERE email = %s", (email,)), pots[n], 1)
    statuses, busy = check_out_everywhere(stack, emails, {"hub_when": f"{hub_slot}@{day.isoformat()}"})
    assert statuses.count(302) == 3 and statuses.count(409) == BUYERS - 3
    for node in nodes:
        assert on_node(node, test_database, "SELECT booked FROM hub_booking WHERE hub_slot_id = %s"
                       " AND booking_date = %s", (hub_slot, day))[0]["booked"] == 3
        assert on_node(node, test_database, "SELECT COUNT(*) AS n FROM hub_basket")[0]["n"] == 3
        assert on_node(node, test_database, "SELECT COUNT(*) AS n FROM orders WHERE basket_id IS NOT NULL"
                       )[0]["n"] == 6, "two orders in each basket"
    print(f"\nhub: 3 baskets of 3, {BUYERS - 3} refused, {busy} told to try again")


def test_at_a_hub_s_cutoff_the_workers_on_every_node_email_each_producer_their_drop_list_once(fresh, world, stack,
                                                                                              inbox):
    db = fresh
    with stack_app_context():
        tomorrow = fulfilment.local_today() + datetime.timedelta(days=1)
    db.delete_orders()
    options, _ = add_hub(db, world, tomorrow)
    db.execute("START TRANSACTION")
    for customer in (world.customer, world.other_customer):
        for producer, product in ((world.producer, world.product), (world.other_producer, world.other_product)):
            order = db.add_order(customer, [(product, 2, "1.50")], post=False)
            # Tomorrow at 10:00, with a 48-hour cutoff that has passed: the drop lists are due.
            db.execute("UPDATE orders SET option_id = %s, fulfilment_name = 'Market Hall', fulfilment_date = %s,"
                       " slot_start = '10:00', slot_end = '13:00', cutoff_hours = 48 WHERE order_id = %s",
                       (options[producer], tomorrow, order))
    db.execute("COMMIT")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and sum(
            message["Subject"].startswith("Ordering closed") for message in inbox.messages) < 2:
        time.sleep(0.5)
    time.sleep(3)  # three more rounds of every worker: nothing more may go out
    lists = sorted((message["To"], next(part for part in message.walk() if part.get_content_type() == "text/plain")
                    .get_payload(decode=True).decode()) for message in inbox.messages
                   if message["Subject"].startswith("Ordering closed"))
    assert [to for to, _ in lists] == ["dairy@example.com", "farm@example.com"], "one list for each producer"
    assert all("Market Hall" in body for _, body in lists)
    assert "4 x Milk (litre)" in lists[0][1] and "Potatoes" not in lists[0][1], "the dairy's own list"
    assert db.value("SELECT COUNT(*) FROM occurrence_close") == 2


def stack_app_context():
    from conftest import flask_app
    return flask_app.app_context()


def test_a_customer_sees_their_order_at_once_on_the_other_nodes(fresh, world, stack):
    db = fresh
    product = db.add_product(world.producer, "Honey", "6.00", quantity=500)
    for n in range(30):
        db.add_to_cart(world.customer, product, 1)
        visitor = Visitor(stack.apps[n % 3])
        visitor.login("customer", "jane@example.com")
        visitor.get("/cart")
        placed = visitor.post("/checkout", world.choose())
        assert placed.status == 302 and "/checkout/" in placed.location, placed.text[:300]
        confirmation = visitor.get(placed.location, server=stack.apps[(n + 1) % 3])
        assert confirmation.status == 200, f"the confirmation on {stack.apps[(n + 1) % 3]}"
        order_id = int(re.search(r"Order #(\d+)", confirmation.text).group(1))
        for other in (1, 2):
            server = stack.apps[(n + other) % 3]
            page = visitor.get(f"/orders/{order_id}", server=server)
            assert page.status == 200 and f"#{order_id}" in page.text, f"order {order_id} on {server}"
            assert f"/orders/{order_id}" in visitor.get("/orders", server=server).text


def test_a_photo_uploaded_through_one_app_server_is_served_by_the_others(fresh, world, stack):
    db = fresh
    producer = Visitor(stack.apps[0])
    producer.login("producer", "farm@example.com")
    producer.get("/dashboard/products/new")
    made = producer.post_file("/dashboard/products/new", VALID, "image", "eggs.png", png_bytes((800, 600)))
    assert made.status == 302, made.text[:500]
    url = db.value("SELECT image_url FROM product WHERE name = 'Duck eggs'")
    stored = db.value("SELECT data FROM photo WHERE name = %s", (url.rsplit("/", 1)[1],))
    for server in stack.apps[1:]:
        served = Visitor(server).get(url)
        assert served.status == 200 and served.body == stored
        assert served.headers["ETag"] == f'"{hashlib.sha256(stored).hexdigest()}"'
    first, again = Visitor(stack.front).get(url), Visitor(stack.front).get(url)
    assert first.body == again.body == stored
    assert (first.headers["X-Photo-Cache"], again.headers["X-Photo-Cache"]) == ("MISS", "HIT")


def test_triggers_fulltext_and_the_page_cache_carry_a_change_to_every_node(fresh, world, stack, nodes, test_database):
    db = fresh
    guests = [Visitor(server) for server in stack.apps]
    for guest in guests:  # each app server's processes keep the page
        assert "hit" in {guest.get("/products").headers["X-Page-Cache"] for _ in range(8)}
    producer = Visitor(stack.apps[0])
    producer.login("producer", "farm@example.com")
    producer.get("/dashboard/products/new")
    made = producer.post("/dashboard/products/new", dict(VALID, name="Quince jelly", description="Set with quinces."))
    assert made.status == 302
    product = db.value("SELECT product_id FROM product WHERE name = 'Quince jelly'")
    for node in nodes:  # the trigger-made stock row, and the catalogue version the triggers raised
        assert on_node(node, test_database, "SELECT quantity_available FROM stock WHERE product_id = %s",
                       (product,))[0]["quantity_available"] == 12
    for guest in guests:
        assert all("Quince jelly" in guest.get("/products").text for _ in range(4)), "no process kept the old page"
        assert "Quince jelly" in guest.get("/products?q=quinces").text, "the search index found it on this node"


def test_two_nodes_claiming_one_email_conflict_and_only_one_claim_commits(fresh, nodes, test_database):
    """SKIP LOCKED skips only rows locked on the same node; across nodes, certification lets one claim through."""
    db = fresh
    db.execute("INSERT INTO email_outbox (dedupe_key, recipient, subject, body_text, send_after)"
               " VALUES ('k', 'a@example.com', 's', 'b', UTC_TIMESTAMP(6) + INTERVAL 1 DAY)")
    claim = ("SELECT email_id FROM email_outbox WHERE sent_at IS NULL ORDER BY email_id LIMIT 5 FOR UPDATE SKIP LOCKED")
    take = "UPDATE email_outbox SET claimed_by = %s, attempts = attempts + 1 WHERE email_id = %s"
    conns = [node_connection(node, test_database) for node in nodes[:2]]
    try:
        same_node = node_connection(nodes[0], test_database)
        first, second = (conn.cursor() for conn in conns)
        first.execute("START TRANSACTION")
        first.execute(claim)
        [(email_id,)] = first.fetchall()
        first.execute(take, ("node1", email_id))
        local = same_node.cursor()
        local.execute("START TRANSACTION")
        local.execute(claim)
        assert local.fetchall() == (), "on the same node the locked row is skipped"
        same_node.rollback()
        second.execute("START TRANSACTION")
        second.execute(claim)
        assert second.fetchall() == ((email_id,),), "another node does not see the first node's lock"
        second.execute(take, ("node2", email_id))
        conns[1].commit()
        with pytest.raises(MySQLdb.OperationalError) as lost:
            conns[0].commit()
        assert lost.value.args[0] == 1213, "the later claim loses at commit, as a deadlock the app retries"
    finally:
        for conn in conns + [same_node]:
            conn.close()
    assert db.row("SELECT claimed_by, attempts FROM email_outbox") == {"claimed_by": "node2", "attempts": 1}


def test_the_workers_on_every_node_send_each_email_and_packing_list_exactly_once(fresh, world, stack, inbox):
    db = fresh
    with stack_app_context():
        tomorrow = fulfilment.local_today() + datetime.timedelta(days=1)
    option = world.collection[world.producer]
    db.delete_orders()
    db.execute("START TRANSACTION")
    for n in range(30):
        order = db.add_order(world.customer, [(world.product, 1, "1.80")], post=False)
        # Three occurrences tomorrow, whose 48-hour cutoffs have passed: packing lists and reminders are due.
        db.execute("UPDATE orders SET option_id = %s, fulfilment_name = 'Gate', fulfilment_date = %s,"
                   " slot_start = %s, slot_end = '13:00', cutoff_hours = 48 WHERE order_id = %s",
                   (option, tomorrow, f"{10 + n % 3}:00", order))
    for n in range(60):
        db.execute("INSERT INTO email_outbox (dedupe_key, recipient, subject, body_text)"
                   " VALUES (%s, %s, %s, 'Hello')", (f"note:{n}", f"reader{n}@example.com", f"Note {n}"))
    db.execute("COMMIT")
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and (len(inbox.messages) < 93 or db.value(
            "SELECT COUNT(*) FROM email_outbox WHERE sent_at IS NULL") or db.value(
            "SELECT COUNT(*) FROM orders WHERE reminder_sent_at IS NULL")):
        time.sleep(0.5)
    time.sleep(3)  # three more rounds of every worker: nothing more may go out
    subjects = [message["Subject"] for message in inbox.messages]
    assert len(subjects) == 93 and len({message["Message-ID"] for message in inbox.messages}) == 93
    assert sum(subject.startswith("Ordering closed") for subject in subjects) == 3
    assert sum(subject.startswith("Tomorrow: order #") for subject in subjects) == 30
    assert sorted(s for s in subjects if s.startswith("Note ")) == sorted(f"Note {n}" for n in range(60))
    assert db.value("SELECT COUNT(*) FROM occurrence_close") == 3
    assert db.value("SELECT COUNT(*) FROM email_outbox WHERE attempts <> 1 OR sent_at IS NULL") == 0
    assert db.value("SELECT COUNT(DISTINCT worker_id) FROM worker_heartbeat") == 3, "a worker on each node"
    print(f"\nemail: 93 sent once each by {db.value('SELECT COUNT(DISTINCT claimed_by) FROM email_outbox')} workers")


def test_a_killed_node_takes_only_its_own_app_server_down_until_it_rejoins(fresh, world, stack, nodes, test_database):
    db = fresh
    product = db.add_product(world.producer, "Cider", "3.00", quantity=100)
    seen = {server: [] for server in stack.apps + [stack.front]}
    stopping = threading.Event()

    def load(server):
        visitor = Visitor(server)
        while not stopping.is_set():
            started = time.monotonic()
            status = visitor.get(f"/products?page={random.randint(1, 3)}", timeout=20).status
            seen[server].append((started, status, time.monotonic() - started))
            time.sleep(0.05)

    threads = [threading.Thread(target=load, args=(server,)) for server in seen]
    for thread in threads:
        thread.start()
    try:
        time.sleep(1)
        cluster("kill", "3")
        killed_at = time.monotonic()
        time.sleep(4)
        buyer = Visitor(stack.apps[0])  # a write while node 3 is away, which it must catch up on
        db.add_to_cart(world.customer, product, 2)
        buyer.login("customer", "jane@example.com")
        buyer.get("/cart")
        assert buyer.post("/checkout", world.choose()).status == 302
        down = Visitor(stack.apps[2]).get("/products")
        assert down.status == 503 and "try again" in down.text.lower()
        restarted_at = time.monotonic()
        cluster("start-node", "3")
        deadline = time.monotonic() + 60
        while Visitor(stack.apps[2]).get("/products").status != 200 and time.monotonic() < deadline:
            time.sleep(0.5)
    finally:
        stopping.set()
        for thread in threads:
            thread.join(timeout=30)
        cluster("start")
    for server in stack.apps[:2] + [stack.front]:
        statuses = {status for at, status, _ in seen[server] if killed_at <= at <= restarted_at}
        assert statuses == {200}, f"{server} kept serving while node 3 was down: {statuses}"
    away = [status for at, status, _ in seen[stack.apps[2]] if killed_at + 2 <= at <= restarted_at]
    assert away and set(away) == {503}, "the app server on the killed node said so, with a 503 page"
    assert Visitor(stack.apps[2]).get("/products").status == 200, "back once its node rejoined"
    assert on_node(nodes[2], test_database, "SELECT quantity_available FROM stock WHERE product_id = %s",
                   (product,))[0]["quantity_available"] == 98, "the rejoined node caught up on the sale"
    slowest = max(took for server in stack.apps[:2] for at, _, took in seen[server] if killed_at <= at <= restarted_at)
    print(f"\nkilled node: the other app servers' slowest page while it was down took {slowest:.2f} s;"
          f" {len(away)} pages from its own app server were 503s")


def test_each_node_raises_only_its_own_catalogue_version_rows(fresh, world, nodes, test_database):
    """Connection ids repeat across nodes; the rows a change raises are chosen within the node's own 16, so
    checkouts on two nodes never conflict on them."""
    def versions(node):
        return {row["shard"]: row["version"] for row in on_node(
            node, test_database, "SELECT shard, version + stock_version AS version FROM catalogue_version")}

    seen = []
    for node in nodes:
        [offset] = on_node(node, test_database, "SELECT @@auto_increment_offset AS n")
        before = versions(node)
        for n in range(5):  # five connections, so five connection ids
            on_node(node, test_database, "UPDATE stock SET quantity_available = quantity_available + 1"
                                         " WHERE product_id = %s", (world.product,))
        after = versions(node)
        raised = {shard for shard in after if after[shard] != before[shard]}
        own = range((offset["n"] - 1) * 16, offset["n"] * 16)
        assert raised and raised <= set(own), (node, raised, own)
        seen.append(own)
    assert len({own.start for own in seen}) == len(nodes), "every node has rows of its own"


def test_the_cluster_starts_from_a_checkout_inside_a_private_directory(tmp_path):
    """A clone in a home directory or a mktemp -d folder (mode 0700) is closed to the mysql user the nodes run
    as: their data goes where it can reach, var/cluster links to it, and the cluster forms all the same."""
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    checkout = private / "noeari"
    shutil.copytree(os.path.join(ROOT, "scripts"), checkout / "scripts")
    script = str(checkout / "scripts" / "cluster.sh")
    env = dict(os.environ, CLUSTER_PORT_BASE="4600")

    def run(*args):
        done = subprocess.run([script, *args], env=env, capture_output=True, text=True, timeout=240)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    linked = None
    try:
        started = run("start")
        assert "cannot reach" in started and "var/cluster links to it" in started
        linked = os.path.realpath(checkout / "var" / "cluster")
        assert os.path.islink(checkout / "var" / "cluster") and not linked.startswith(str(private))
        assert run("status").count("Synced, cluster size 3") == 3
    finally:
        subprocess.run([script, "stop"], env=env, capture_output=True, text=True, timeout=240)
        if linked:
            shutil.rmtree(linked, ignore_errors=True)
