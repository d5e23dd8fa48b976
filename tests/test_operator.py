"""The co-op's operator: the command that makes one, approval and suspension of accounts, the audit,
the admin pages with their figures and chart, and who may reach them."""
import csv
import datetime
import io
import re
from decimal import Decimal

import pytest

from conftest import PASSWORD, run_worker


# --- The command ---------------------------------------------------------------------

def test_create_operator_reads_the_password_from_the_environment(app, db, monkeypatch):
    monkeypatch.setenv("OPERATOR_PASSWORD", "a long enough secret")
    result = app.test_cli_runner().invoke(args=["create-operator", " Op@Example.com ", "--name", "Olu"])
    assert result.exit_code == 0, result.output
    row = db.row("SELECT name, email, password_hash FROM operator")
    assert row["name"] == "Olu" and row["email"] == "op@example.com" and row["password_hash"].startswith("$2b$")
    again = app.test_cli_runner().invoke(args=["create-operator", "op@example.com", "--name", "Olu"])
    assert again.exit_code != 0 and "exists already" in again.output


def test_create_operator_prompts_for_the_password_and_refuses_a_weak_one(app, db, monkeypatch):
    monkeypatch.delenv("OPERATOR_PASSWORD", raising=False)
    weak = app.test_cli_runner().invoke(args=["create-operator", "op@example.com", "--name", "Olu"],
                                        input="short\nshort\n")
    assert weak.exit_code != 0 and "at least 8 characters" in weak.output
    assert db.value("SELECT COUNT(*) FROM operator") == 0
    good = app.test_cli_runner().invoke(args=["create-operator", "op@example.com", "--name", "Olu"],
                                        input="a long enough secret\na long enough secret\n")
    assert good.exit_code == 0 and db.value("SELECT COUNT(*) FROM operator") == 1


def test_an_operator_login_is_throttled_like_the_others(client, auth, db, operator):
    for _ in range(5):
        auth.login("operator", "op@example.com", "wrong password")
    assert auth.login("operator", "op@example.com").status_code == 429


# --- Approval gates the catalogue --------------------------------------------------------

def new_producer_with_a_product(client, db):
    assert client.post("/signup/producer", data={"business": "Fern Bakery", "email": "fern@example.com",
                                                 "password": PASSWORD, "confirm": PASSWORD}).status_code == 302
    client.post("/dashboard/products/new", data={"name": "Fernloaf", "category": "Bakery", "price": "3.00",
                                                 "unit": "loaf", "quantity_available": "10",
                                                 "reorder_threshold": "1", "is_available": "y"})
    client.post("/dashboard/fulfilment/new", data={"kind": "collection", "name": "Door", "address": "2 Fern Row",
                                                   "fee": "0", "minimum_order": "0", "cutoff_hours": "2",
                                                   "is_active": "y"})
    return (db.value("SELECT producer_id FROM producer WHERE email = 'fern@example.com'"),
            db.value("SELECT product_id FROM product WHERE name = 'Fernloaf'"))


def visible(app, db, producer_id, product_id):
    """Where a visitor could find the producer: (catalogue, search, producers list, producer page, product page)."""
    visitor = app.test_client()
    return (
        "Fernloaf" in visitor.get("/products").get_data(as_text=True),
        "Fernloaf" in visitor.get("/products?q=fernloaf").get_data(as_text=True),
        "Fern Bakery" in visitor.get("/producers").get_data(as_text=True),
        visitor.get(f"/producers/{producer_id}").status_code == 200,
        visitor.get(f"/products/{product_id}").status_code == 200,
    )


def test_a_new_producer_is_hidden_until_an_operator_approves_them(app, client, auth, db, world, operator):
    producer_id, product_id = new_producer_with_a_product(client, db)
    assert db.value("SELECT status FROM producer WHERE producer_id = %s", (producer_id,)) == "pending"
    assert "awaiting approval" in client.get("/dashboard").get_data(as_text=True)
    assert visible(app, db, producer_id, product_id) == (False,) * 5
    auth.login_customer()
    with db.unchanged():
        assert client.post("/cart/add", data={"product_id": product_id, "quantity": 1}).status_code == 404

    auth.login_operator()
    assert "Fern Bakery" in client.get("/admin").get_data(as_text=True), "listed as awaiting approval"
    response = client.post(f"/admin/producers/{producer_id}/approve", data={"note": "Visited the bakery."})
    assert response.status_code == 302
    assert db.value("SELECT status FROM producer WHERE producer_id = %s", (producer_id,)) == "approved"
    assert visible(app, db, producer_id, product_id) == (True,) * 5
    audit = db.row("SELECT operator_id, action, target_type, target_id, note FROM operator_audit")
    assert audit == {"operator_id": operator, "action": "approve", "target_type": "producer", "target_id": producer_id,
                     "note": "Visited the bakery."}
    email = db.row("SELECT recipient, subject FROM email_outbox WHERE dedupe_key LIKE 'producer-state:%%'")
    assert email == {"recipient": "fern@example.com", "subject": "Your noeari shop is approved"}
    page = client.get(f"/admin/producers/{producer_id}").get_data(as_text=True)
    assert "Approved</strong> by Olu" in page and "Visited the bakery." in page


def test_with_approval_off_a_producer_sells_from_signup(app, client, db, world):
    app.config["PRODUCER_APPROVAL"] = False
    producer_id, product_id = new_producer_with_a_product(client, db)
    assert db.value("SELECT status FROM producer WHERE producer_id = %s", (producer_id,)) == "approved"
    assert visible(app, db, producer_id, product_id) == (True,) * 5


# --- Suspension --------------------------------------------------------------------------

def test_suspending_a_producer_ends_their_session_and_takes_their_products_away(app, client, auth, db, world, operator):
    db.execute("UPDATE producer SET phone = '01275 555 014' WHERE producer_id = %s", (world.producer,))
    producer = app.test_client()
    producer.post("/login/producer", data={"email": "farm@example.com", "password": PASSWORD})
    assert producer.get("/dashboard").status_code == 200
    db.add_to_cart(world.other_customer, world.product, 1)
    auth.login_operator()
    client.post(f"/admin/producers/{world.producer}/suspend", data={"note": "Complaints about hygiene."})

    assert producer.get("/dashboard").headers["Location"].startswith("/login/producer"), "the session ended at once"
    refused = producer.post("/login/producer", data={"email": "farm@example.com", "password": PASSWORD})
    assert refused.status_code == 403
    assert "This account is suspended" in refused.get_data(as_text=True)
    assert "help@noeari.local" in refused.get_data(as_text=True)
    visitor = app.test_client()
    assert "Potatoes" not in visitor.get("/products").get_data(as_text=True)
    assert visitor.get(f"/products/{world.product}").status_code == 404
    assert visitor.get(f"/producers/{world.producer}").status_code == 404

    tom = app.test_client()
    tom.post("/login/customer", data={"email": "tom@example.com", "password": PASSWORD})
    cart = tom.get("/cart").get_data(as_text=True)
    assert "No longer available" in cart
    with db.unchanged():
        assert tom.post("/checkout", data=world.choose()).status_code == 409

    jane = app.test_client()
    jane.post("/login/customer", data={"email": "jane@example.com", "password": PASSWORD})
    order = jane.get(f"/orders/{world.order}")
    assert order.status_code == 200 and "Hartley Farm" in order.get_data(as_text=True), "open orders stay visible"
    assert db.row("SELECT subject FROM email_outbox WHERE dedupe_key LIKE 'producer-state:%%'")["subject"] == (
        "Your noeari shop is suspended")

    client.post(f"/admin/producers/{world.producer}/reinstate")
    assert "Potatoes" in visitor.get("/products").get_data(as_text=True)
    assert producer.post("/login/producer", data={"email": "farm@example.com", "password": PASSWORD}).status_code == 302
    assert [row["action"] for row in db.rows("SELECT action FROM operator_audit ORDER BY audit_id")] == [
        "suspend", "reinstate"]


def test_suspending_a_customer_ends_their_session_and_stops_their_login(app, client, auth, db, world, operator):
    jane = app.test_client()
    jane.post("/login/customer", data={"email": "jane@example.com", "password": PASSWORD})
    assert jane.get("/orders").status_code == 200
    auth.login_operator()
    assert client.post(f"/admin/customers/{world.customer}/suspend", data={"note": "Chargebacks."}).status_code == 302
    assert jane.get("/orders").headers["Location"].startswith("/login/customer")
    assert jane.post("/login/customer", data={"email": "jane@example.com", "password": PASSWORD}).status_code == 403
    assert db.row("SELECT action, target_type, note FROM operator_audit") == {
        "action": "suspend", "target_type": "customer", "note": "Chargebacks."}
    client.post(f"/admin/customers/{world.customer}/reinstate")
    assert jane.post("/login/customer", data={"email": "jane@example.com", "password": PASSWORD}).status_code == 302


@pytest.mark.parametrize("path, data, status", [
    ("/admin/producers/{producer}/reinstate", {}, 409),
    ("/admin/producers/{producer}/approve", {}, 409),
    ("/admin/customers/{customer}/reinstate", {}, 409),
    ("/admin/customers/{customer}/approve", {}, 404),
    ("/admin/producers/999999/suspend", {}, 404),
    ("/admin/producers/{producer}/suspend", {"note": "x" * 501}, 400),
    ("/admin/producers/{producer}/delete", {}, 404),
    ("/admin/operators/999999/disable", {}, 404),
    ("/admin/operators/999999/enable", {}, 404),
    ("/admin/operators/{operator}/approve", {}, 404),
    ("/admin/operators/{operator}/enable", {}, 409),
    ("/admin/operators/{operator}/disable", {"note": "x" * 501}, 400),
])
def test_an_action_that_cannot_apply_changes_nothing(client, auth, db, world, operator, path, data, status):
    auth.login_operator()
    with db.unchanged():
        response = client.post(path.format(producer=world.producer, customer=world.customer, operator=operator),
                               data=data)
        assert response.status_code == status


# --- The pages --------------------------------------------------------------------------

def test_the_chart_bars_are_the_orders_in_the_database(app, client, auth, db, world, operator):
    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    db.execute("UPDATE orders SET placed_at = %s", (now - datetime.timedelta(weeks=20),))
    placed = [(0, "1.80"), (0, "2.00"), (0, "5.00"), (3, "4.00"), (3, "6.00"), (11, "7.50")]
    for weeks_ago, price in placed:
        order = db.add_order(world.customer, [(world.product, 1, price)])
        db.execute("UPDATE orders SET placed_at = %s WHERE order_id = %s", (now - datetime.timedelta(weeks=weeks_ago),
                                                                           order))
    cancelled = db.add_order(world.customer, [(world.product, 9, "1.00")], status="cancelled")
    db.execute("UPDATE orders SET placed_at = %s WHERE order_id = %s", (now, cancelled))
    auth.login_operator()
    page = client.get("/admin").get_data(as_text=True)

    def bars(measure):
        chart = re.search(rf'<svg class="bar-chart" id="{measure}-chart".*?</svg>', page, re.S).group(0)
        return [(week, value, float(height)) for height, week, value in re.findall(
            r'height="([\d.]+)"\s+data-week="([\d-]+)" data-value="([\d.]+)"', chart)]

    orders, goods = bars("orders"), bars("goods")
    assert len(orders) == len(goods) == 12
    assert [value for _, value, _ in orders][::-1][:12] == ["3", "0", "0", "2", "0", "0", "0", "0", "0", "0", "0", "1"]
    assert [Decimal(value) for _, value, _ in goods][::-1][:4] == [Decimal("8.80"), 0, 0, Decimal("10.00")]
    tallest = max(height for _, _, height in orders)
    assert tallest == 120 and orders[-1][2] == 120 and orders[0][2] == 40, "heights in proportion to the counts"
    assert 'id="active-producers">2<' in page and 'id="active-customers">2<' in page


def test_the_operator_finds_customers_and_filters_and_exports_orders(client, auth, db, world, operator):
    auth.login_operator()
    found = client.get("/admin/customers?q=jane").get_data(as_text=True)
    assert "jane@example.com" in found and "tom@example.com" not in found
    assert "1 customer matching" in found
    assert "0 customers" in client.get("/admin/customers?q=%25").get_data(as_text=True), "% is a character, not a wildcard"
    page = client.get(f"/admin/orders?producer={world.producer}").get_data(as_text=True)
    assert f'id="order-{world.order}"' in page and f'id="order-{world.other_order}"' not in page
    rows = list(csv.reader(io.StringIO(client.get(f"/admin/orders.csv?producer={world.other_producer}").get_data(
        as_text=True))))
    assert rows[0][:3] == ["order id", "placed at", "producer"] and [row[0] for row in rows[1:]] == [str(world.other_order)]
    assert client.get("/admin/orders?from=2026-02-30").status_code == 400


def test_operators_never_see_password_hashes_or_reset_links(app, client, auth, db, world, operator):
    client.post("/password/forgot/customer", data={"email": "jane@example.com"})
    run_worker(app)
    auth.login_operator()
    for path in ["/admin", "/admin/producers", f"/admin/producers/{world.producer}", "/admin/customers",
                 f"/admin/customers/{world.customer}", "/admin/orders", "/admin/emails"]:
        page = client.get(path).get_data(as_text=True)
        assert "$2b$" not in page and "/password/reset/" not in page, path
    assert "Reset your noeari password" in client.get("/admin/emails").get_data(as_text=True)


def test_the_outbox_page_shows_a_promised_email_as_written_when_sent_then_as_written(app, client, auth, db, world,
                                                                                   operator):
    db.add_to_cart(world.customer, world.product, 1)
    auth.login_customer()
    client.post("/checkout", data=world.choose())
    order_id = db.value("SELECT MAX(order_id) FROM orders")
    auth.login_operator()
    page = client.get("/admin/emails").get_data(as_text=True)
    assert page.count("Written as it is sent") == 2 and "farm@example.com" not in page
    run_worker(app)
    page = client.get("/admin/emails").get_data(as_text=True)
    assert "Written as it is sent" not in page and f"New order #{order_id} from Jane" in page


ADMIN_ROUTES = [
    ("get", "/admin"), ("get", "/admin/producers"), ("get", "/admin/producers/{producer}"),
    ("post", "/admin/producers/{producer}/approve"), ("post", "/admin/producers/{producer}/suspend"),
    ("post", "/admin/producers/{producer}/reinstate"), ("get", "/admin/customers"),
    ("get", "/admin/customers/{customer}"), ("post", "/admin/customers/{customer}/suspend"),
    ("post", "/admin/customers/{customer}/reinstate"), ("get", "/admin/orders"), ("get", "/admin/orders.csv"),
    ("get", "/admin/orders/{order}"), ("get", "/admin/emails"), ("get", "/admin/emails?failed=1"), ("post", "/admin/emails/{email}/retry"), ("get", "/admin/operators"),
    ("get", "/admin/operators/{operator}"), ("post", "/admin/operators/{operator}/disable"),
    ("post", "/admin/operators/{operator}/enable"),
]


@pytest.fixture
def other_operator(db):
    return db.add_operator("bea@example.com", "Bea")


@pytest.fixture
def email_id(db):
    return db.execute("INSERT INTO email_outbox (dedupe_key, recipient, subject, body_text, failed_at)"
                      " VALUES ('k', 'a@x.org', 'Hi', 'x', UTC_TIMESTAMP())")


@pytest.mark.parametrize("role", [None, "customer", "producer"])
@pytest.mark.parametrize("method, path", ADMIN_ROUTES, ids=[f"{m} {p}" for m, p in ADMIN_ROUTES])
def test_only_operators_reach_the_admin(client, auth, db, world, email_id, other_operator, role, method, path):
    if role:
        getattr(auth, f"login_{role}")()
    with db.unchanged():
        response = getattr(client, method)(path.format(producer=world.producer, customer=world.customer, email=email_id,
                                                       operator=other_operator, order=world.order))
        assert response.status_code == 302 and response.headers["Location"].startswith("/login/operator")


@pytest.mark.parametrize("method, path", ADMIN_ROUTES, ids=[f"{m} {p}" for m, p in ADMIN_ROUTES])
def test_every_admin_route_works_for_an_operator(client, auth, db, world, operator, other_operator, email_id, method,
                                                path):
    auth.login_operator()
    response = getattr(client, method)(path.format(producer=world.producer, customer=world.customer, email=email_id,
                                                   operator=other_operator, order=world.order))
    assert response.status_code in (200, 302, 409)
    assert "Traceback" not in response.get_data(as_text=True)


# --- Operators: disabled, never the last one, and every action audited ----------------------------

def audit_rows(db):
    return list(db.rows("SELECT operator_id, action, target_type, target_id, note FROM operator_audit"
                        " ORDER BY audit_id"))


def test_an_operator_disables_another_who_is_logged_out_and_cannot_log_in_until_enabled(
        app, client, auth, db, operator, other_operator):
    bea = app.test_client()
    assert bea.post("/login/operator", data={"email": "bea@example.com", "password": PASSWORD}).status_code == 302
    auth.login_operator()
    response = client.post(f"/admin/operators/{other_operator}/disable", data={"note": "Left the co-op."})
    assert response.status_code == 302 and response.headers["Location"] == f"/admin/operators/{other_operator}"
    assert db.value("SELECT status FROM operator WHERE operator_id = %s", (other_operator,)) == "disabled"
    assert audit_rows(db) == [{"operator_id": operator, "action": "disable", "target_type": "operator",
                               "target_id": other_operator, "note": "Left the co-op."}]
    assert bea.get("/admin").status_code == 302, "her session ended"
    refused = bea.post("/login/operator", data={"email": "bea@example.com", "password": PASSWORD})
    assert refused.status_code == 403 and "This account is disabled" in refused.get_data(as_text=True)
    page = client.get(f"/admin/operators/{other_operator}").get_data(as_text=True)
    assert "Disabled</strong> by Olu" in page and "Enable Bea" in page
    assert client.post(f"/admin/operators/{other_operator}/enable").status_code == 302
    assert bea.post("/login/operator", data={"email": "bea@example.com", "password": PASSWORD}).status_code == 302


def test_the_last_active_operator_cannot_be_disabled_but_may_step_down_for_another(
        client, auth, db, operator, other_operator):
    auth.login_operator()
    db.execute("UPDATE operator SET status = 'disabled' WHERE operator_id = %s", (other_operator,))
    with db.unchanged():
        page = client.get(f"/admin/operators/{operator}").get_data(as_text=True)
        assert "is the only active operator" in page and "Disable Olu" not in page
        refused = client.post(f"/admin/operators/{operator}/disable", data={"note": "Bye."})
        assert refused.status_code == 409 and "only active operator" in refused.get_data(as_text=True)
    db.execute("UPDATE operator SET status = 'active' WHERE operator_id = %s", (other_operator,))
    stepped_down = client.post(f"/admin/operators/{operator}/disable")
    assert stepped_down.status_code == 302 and stepped_down.headers["Location"] == "/login/operator"
    assert db.value("SELECT status FROM operator WHERE operator_id = %s", (operator,)) == "disabled"
    assert client.get("/admin").status_code == 302


def test_two_operators_disabling_each_other_at_once_leave_one_active(app, db, operator, other_operator):
    import threading
    clients = {}
    for op_id, address in ((operator, "op@example.com"), (other_operator, "bea@example.com")):
        clients[op_id] = app.test_client()
        assert clients[op_id].post("/login/operator", data={"email": address, "password": PASSWORD}).status_code == 302
    barrier, results = threading.Barrier(2), {}

    def disable(me, them):
        barrier.wait()
        results[me] = clients[me].post(f"/admin/operators/{them}/disable").status_code

    threads = [threading.Thread(target=disable, args=pair) for pair in ((operator, other_operator),
                                                                        (other_operator, operator))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(results.values()) in ([302, 409], [302, 302]) and db.value(
        "SELECT COUNT(*) FROM operator WHERE status = 'active'") == 1


def test_retrying_an_email_is_audited(client, auth, db, operator, email_id):
    auth.login_operator()
    assert client.post(f"/admin/emails/{email_id}/retry").status_code == 302
    assert audit_rows(db) == [{"operator_id": operator, "action": "retry", "target_type": "email",
                               "target_id": email_id, "note": ""}]
    page = client.get("/admin/operators").get_data(as_text=True)
    assert "Sent again</strong>" in page and f"#{email_id}" in page
    with db.unchanged("and nothing audited"):
        assert client.post(f"/admin/emails/{email_id}/retry").status_code == 302, "not failed: nothing to retry"


def test_an_operators_own_account_changes_are_audited(client, auth, db, operator):
    auth.login_operator()
    assert client.post("/account", data={"action": "name", "name": "Olu A."}).status_code == 302
    assert client.post("/account", data={"action": "email", "email": "olu@example.com",
                                         "current_password": PASSWORD}).status_code == 302
    assert client.post("/account", data={"action": "password", "current_password": PASSWORD,
                                         "password": "new secret 12", "confirm": "new secret 12"}).status_code == 302
    assert [(row["action"], row["target_type"], row["target_id"]) for row in audit_rows(db)] == [
        ("change_name", "operator", operator), ("change_email", "operator", operator),
        ("change_password", "operator", operator)]
    with db.unchanged("a refused change is not audited"):
        wrong = client.post("/account", data={"action": "email", "email": "x@example.com", "current_password": "nope"})
        assert wrong.status_code == 400


# --- A new producer, and every order ------------------------------------------

def test_a_producer_who_signs_up_is_announced_to_each_active_operator_once(client, db, operator, other_operator):
    db.execute("UPDATE operator SET status = 'disabled' WHERE operator_id = %s", (other_operator,))
    assert client.post("/signup/producer", data={"business": "Fern Bakery", "email": "fern@example.com",
                                                 "password": PASSWORD, "confirm": PASSWORD}).status_code == 302
    fern = db.value("SELECT producer_id FROM producer WHERE email = 'fern@example.com'")
    told = db.rows("SELECT recipient, subject, body_text FROM email_outbox")
    assert [(row["recipient"], row["subject"]) for row in told] == [("op@example.com", "Fern Bakery asks to sell on noeari")]
    assert f"/producers/{fern}" in told[0]["body_text"] and f"/admin/producers/{fern}" in told[0]["body_text"]


@pytest.mark.parametrize("viewer, visible", [("self", True), ("operator", True), ("other producer", False),
                                             ("customer", False), (None, False)])
def test_a_pending_producers_preview_is_theirs_and_the_operators_only(client, auth, db, world, operator, viewer,
                                                                      visible):
    fern = db.add_producer("fern@example.com", "Fern Bakery", status="pending")
    loaf = db.add_product(fern, "Rye loaf", "3.75", category="Bakery", unit="loaf")
    login = {"self": lambda: auth.login_producer("fern@example.com"), "operator": auth.login_operator,
             "other producer": auth.login_producer, "customer": auth.login_customer, None: lambda: None}
    login[viewer]()
    page, product = client.get(f"/producers/{fern}"), client.get(f"/products/{loaf}")
    if visible:
        assert page.status_code == product.status_code == 200
        assert "Preview: only" in page.get_data(as_text=True) and "Rye loaf" in page.get_data(as_text=True)
        assert "Preview: customers see this product" in product.get_data(as_text=True)
        assert "/cart/add" not in product.get_data(as_text=True)
    else:
        assert page.status_code == product.status_code == 404
    assert "Rye loaf" not in client.get("/products").get_data(as_text=True)


def test_the_operator_opens_any_order_and_filters_failed_emails(client, auth, db, world, operator, email_id):
    db.execute("INSERT INTO email_outbox (dedupe_key, recipient, subject, body_text, sent_at)"
               " VALUES ('sent', 'b@x.org', 'Sent one', 'x', UTC_TIMESTAMP())")
    auth.login_operator()
    orders_page = client.get("/admin/orders").get_data(as_text=True)
    assert f'href="/admin/orders/{world.other_order}"' in orders_page
    page = client.get(f"/admin/orders/{world.other_order}").get_data(as_text=True)
    assert "Order #" in page and "Milk" in page and "tom@example.com" in page
    assert client.get("/admin/orders/999999").status_code == 404
    failed = client.get("/admin/emails?failed=1").get_data(as_text=True)
    assert "a@x.org" in failed and "b@x.org" not in failed
    rows = list(csv.reader(io.StringIO(client.get("/admin/orders.csv").get_data(as_text=True))))
    assert {row[4] for row in rows[1:]} == {"Pending"}, "statuses as people read them"
