"""The co-op's money in one ledger: every change to what is owed posts entries whose legs sum to zero, in the
transaction of the change; customer credit pays orders and takes refunds, never past the overdraft limit.
(conftest's db fixture checks after every test that every entry balances and every kept balance is its legs'
sum.)"""
import threading
from decimal import Decimal

import pytest

import ledger
from conftest import PASSWORD
from db import transactional


def balances(db, customer_id, producer_id):
    """(credit, receivable, producer) kept balances."""
    def kept(kind, owner):
        return db.value("SELECT COALESCE(MAX(balance), 0) FROM ledger_account WHERE kind = %s AND owner_id = %s",
                        (kind, owner))
    return kept("credit", customer_id), kept("receivable", customer_id), kept("producer", producer_id)


def entries(db, order_id):
    """The order's entries as (kind, note, {account kind: amount})."""
    rows = db.rows("SELECT e.entry_id, e.kind, e.note, a.kind AS account, l.amount FROM ledger_entry e"
                   " JOIN ledger_leg l ON l.entry_id = e.entry_id JOIN ledger_account a ON a.account_id = l.account_id"
                   " WHERE e.order_id = %s ORDER BY e.entry_id, a.kind", (order_id,))
    found = {}
    for row in rows:
        found.setdefault(row["entry_id"], (row["kind"], row["note"], {}))[2][row["account"]] = row["amount"]
    return list(found.values())


def pay_by_credit(db, world):
    """Hartley Farm's collection is paid from credit."""
    db.execute("UPDATE fulfilment_option SET payment_method = 'credit' WHERE option_id = %s",
               (world.collection[world.producer],))


def top_up(app, customer_id, amount, reference="BANK-1"):
    with app.app_context():
        ledger.top_up(customer_id, Decimal(amount), reference, 1)


def checkout(client, world):
    return client.post("/checkout", data={f"when_{world.producer}": f"{world.collection[world.producer]}@arranged"})


def newest_order(db, world):
    return db.value("SELECT MAX(order_id) FROM orders WHERE customer_id = %s", (world.customer,))


# --- Every change posts ------------------------------------------------------

def test_checkout_posts_what_the_customer_owes_the_producer(client, auth, db, world):
    db.add_to_cart(world.customer, world.product, 3)
    auth.login_customer()
    assert checkout(client, world).status_code == 302
    order_id = newest_order(db, world)
    assert entries(db, order_id) == [("order", "Order placed", {"producer": Decimal("5.40"),
                                                                "receivable": Decimal("-5.40")})]
    assert balances(db, world.customer, world.producer)[1] == Decimal("-3.60") - Decimal("5.40"), \
        "the world's first order (3.60) is owed too"
    page = client.get("/account/balance").get_data(as_text=True)
    assert 'id="owed-balance">£9.00<' in page and f"order #{order_id}" in page


def test_edits_shortages_weights_and_a_cancel_each_post_the_difference(client, auth, db, world):
    db.add_to_cart(world.customer, world.product, 3)
    auth.login_customer()
    checkout(client, world)
    order_id = newest_order(db, world)
    assert client.post(f"/orders/{order_id}/lines/{world.product}", data={"quantity": "5"}).status_code == 302
    auth.logout()
    auth.login_producer()
    assert client.post(f"/dashboard/orders/{order_id}/lines/{world.product}",
                       data={"quantity": "4", "reason": "Blight"}).status_code == 302
    assert client.post("/dashboard/update-order-status",
                       data={"order_id": order_id, "status": "cancelled"}).status_code == 302
    values = [(kind, legs["producer"]) for kind, _, legs in entries(db, order_id)]
    assert values == [("order", Decimal("5.40")), ("order", Decimal("3.60")), ("order", Decimal("-1.80")),
                      ("order", Decimal("-7.20"))]
    assert sum(value for _, value in values) == 0, "a cancelled order is worth nothing"


def test_a_recorded_payment_posts_and_taking_it_back_reverses_it(client, auth, db, world):
    auth.login_producer()
    assert client.post(f"/dashboard/orders/{world.order}/paid", data={"paid": "1"}).status_code == 302
    assert client.post(f"/dashboard/orders/{world.order}/paid", data={"paid": "0"}).status_code == 302
    kinds = [(kind, note, legs) for kind, note, legs in entries(db, world.order)]
    assert kinds[1:] == [
        ("payment", "Paid on collection or delivery", {"producer": Decimal("-3.60"), "receivable": Decimal("3.60")}),
        ("reversal", "Marked not paid by the producer", {"producer": Decimal("3.60"), "receivable": Decimal("-3.60")})]
    assert db.value("SELECT reverses_entry_id FROM ledger_entry WHERE kind = 'reversal'") == db.value(
        "SELECT entry_id FROM ledger_entry WHERE kind = 'payment'")


@pytest.mark.parametrize("statement", ["UPDATE ledger_entry SET note = 'x'", "UPDATE ledger_leg SET amount = 1",
                                       "DELETE FROM ledger_leg", "DELETE FROM ledger_entry"])
def test_the_ledger_is_append_only(db, world, statement):
    import MySQLdb
    with db.unchanged():
        with pytest.raises(MySQLdb.OperationalError, match="never"):
            db.execute(statement)


def test_an_entry_whose_legs_do_not_balance_is_never_posted(app):
    with app.app_context(), pytest.raises(ledger.Unbalanced):
        ledger.post("order", [ledger.Leg("bank", 0, Decimal("1.00")), ledger.Leg("fees", 0, Decimal("-0.99"))])


# --- Credit --------------------------------------------------------------------

def test_an_order_paid_from_credit_is_paid_at_checkout(app, client, auth, db, world):
    pay_by_credit(db, world)
    top_up(app, world.customer, "10.00")
    db.add_to_cart(world.customer, world.product, 3)
    auth.login_customer()
    assert checkout(client, world).status_code == 302
    order_id = newest_order(db, world)
    assert db.value("SELECT payment_status FROM orders WHERE order_id = %s", (order_id,)) == "paid"
    assert [(kind, legs) for kind, _, legs in entries(db, order_id)] == [
        ("order", {"producer": Decimal("5.40"), "receivable": Decimal("-5.40")}),
        ("payment", {"credit": Decimal("-5.40"), "receivable": Decimal("5.40")})]
    assert balances(db, world.customer, world.producer)[0] == Decimal("4.60")
    page = client.get("/account/balance").get_data(as_text=True)
    assert 'id="credit-balance">£4.60<' in page and "Paid from credit" in page and "Top-up received" in page


def test_credit_that_does_not_cover_the_order_refuses_checkout_and_changes_nothing(app, client, auth, db, world):
    pay_by_credit(db, world)
    top_up(app, world.customer, "5.00")
    db.add_to_cart(world.customer, world.product, 3)
    auth.login_customer()
    with db.unchanged():
        response = checkout(client, world)
        assert response.status_code == 409
        assert "Your credit of £5.00 does not cover the £5.40 from Hartley Farm" in response.get_data(as_text=True)


def test_the_overdraft_limit_lets_credit_go_that_far_below_zero_and_no_further(app, client, auth, db, world):
    pay_by_credit(db, world)
    app.config["CREDIT_OVERDRAFT_LIMIT"] = Decimal("2.00")
    top_up(app, world.customer, "3.40")
    db.add_to_cart(world.customer, world.product, 3)
    auth.login_customer()
    assert checkout(client, world).status_code == 302
    assert balances(db, world.customer, world.producer)[0] == Decimal("-2.00")


def test_fifty_concurrent_credit_payments_never_take_the_credit_below_the_limit(app, db, world):
    pay_by_credit(db, world)
    top_up(app, world.customer, "100.00")
    orders = []
    for _ in range(50):
        order_id = db.execute("INSERT INTO orders (customer_id, producer_id, order_type, payment_method)"
                              " VALUES (%s, %s, 'collection', 'credit')", (world.customer, world.producer))
        db.execute("INSERT INTO order_item (order_id, product_id, quantity, unit_price, line_total)"
                   " VALUES (%s, %s, 1, 3.00, 3.00)", (order_id, world.product))
        orders.append(order_id)
    barrier, outcomes = threading.Barrier(len(orders)), {}

    def pay(order_id):
        with app.app_context():
            barrier.wait()
            try:
                transactional(ledger.sync_order)(order_id, "Order placed", ("customer", world.customer), strict=True)
                outcomes[order_id] = "paid"
            except ledger.CreditShort:
                outcomes[order_id] = "short"

    threads = [threading.Thread(target=pay, args=(order_id,)) for order_id in orders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    paid = [order_id for order_id, outcome in outcomes.items() if outcome == "paid"]
    assert len(outcomes) == 50 and len(paid) == 33, "£100 pays 33 orders of £3"
    assert balances(db, world.customer, world.producer)[0] == Decimal("1.00")
    for order_id in orders:
        expected = [("order", {"producer": Decimal("3.00"), "receivable": Decimal("-3.00")}),
                    ("payment", {"credit": Decimal("-3.00"), "receivable": Decimal("3.00")})] if order_id in paid else []
        assert [(kind, legs) for kind, _, legs in entries(db, order_id)] == expected


def test_cancelling_twice_at_once_refunds_to_credit_once(app, db, world):
    pay_by_credit(db, world)
    top_up(app, world.customer, "10.00")
    db.add_to_cart(world.customer, world.product, 3)
    clients = [app.test_client() for _ in range(2)]
    for client in clients:
        assert client.post("/login/customer", data={"email": "jane@example.com", "password": PASSWORD}).status_code == 302
    assert checkout(clients[0], world).status_code == 302
    order_id = newest_order(db, world)
    barrier, statuses = threading.Barrier(2), []

    def cancel(client):
        barrier.wait()
        statuses.append(client.post(f"/orders/{order_id}/cancel").status_code)

    threads = [threading.Thread(target=cancel, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(statuses)[0] == 302
    assert [kind for kind, _, _ in entries(db, order_id)] == ["order", "payment", "order", "refund"]
    assert balances(db, world.customer, world.producer)[0] == Decimal("10.00"), "refunded once, in full"


def test_a_shortage_and_a_lighter_weight_on_a_credit_paid_order_refund_the_exact_difference(app, client, auth, db, world):
    pay_by_credit(db, world)
    top_up(app, world.customer, "50.00")
    bird = db.add_product(world.producer, "Chicken", "9.00", quantity=8, unit="bird", sold_by="weighed",
                          estimated_weight="1.8")
    db.add_to_cart(world.customer, world.product, 3)
    db.add_to_cart(world.customer, bird, 1)
    auth.login_customer()
    assert checkout(client, world).status_code == 302
    order_id = newest_order(db, world)
    assert balances(db, world.customer, world.producer)[0] == Decimal("50.00") - Decimal("5.40") - Decimal("16.20")
    auth.logout()
    auth.login_producer()
    client.post(f"/dashboard/orders/{order_id}/lines/{world.product}", data={"quantity": "2", "reason": "Blight"})
    client.post(f"/dashboard/orders/{order_id}/weights", data={f"weight-{order_id}-{bird}": "1.65"})
    refunds = [legs["credit"] for kind, _, legs in entries(db, order_id) if kind == "refund"]
    assert refunds == [Decimal("1.80"), Decimal("1.35")], "one potato, and 0.15 kg at £9.00/kg"
    assert balances(db, world.customer, world.producer)[0] == Decimal("50.00") - Decimal("3.60") - Decimal("14.85")
    assert db.value("SELECT payment_status FROM orders WHERE order_id = %s", (order_id,)) == "paid"


def test_a_customer_edit_the_credit_cannot_cover_is_refused(app, client, auth, db, world):
    pay_by_credit(db, world)
    top_up(app, world.customer, "6.00")
    db.add_to_cart(world.customer, world.product, 3)
    auth.login_customer()
    checkout(client, world)
    order_id = newest_order(db, world)
    with db.unchanged():
        response = client.post(f"/orders/{order_id}/lines/{world.product}", data={"quantity": "4"})
        assert response.status_code == 409
        assert "Your credit of £0.60 does not cover the £1.80 more" in response.get_data(as_text=True)


# --- Top-ups by the operator -------------------------------------------------------

def test_the_operator_records_a_top_up_once_per_reference(client, auth, db, world, operator):
    auth.login_operator()
    url = f"/admin/customers/{world.customer}/balance"
    response = client.post(url, data={"amount": "25.00", "reference": "BANK 2026-12-01 JANE"})
    assert response.status_code == 302
    assert balances(db, world.customer, world.producer)[0] == Decimal("25.00")
    assert db.value("SELECT balance FROM ledger_account WHERE kind = 'bank'") == Decimal("-25.00")
    with db.unchanged():
        response = client.post(url, data={"amount": "25.00", "reference": "BANK 2026-12-01 JANE"})
        assert response.status_code == 409 and "is recorded already" in response.get_data(as_text=True)
    page = client.get(url).get_data(as_text=True)
    assert 'id="credit-balance">£25.00<' in page and "reference BANK 2026-12-01 JANE" in page


@pytest.mark.parametrize("data, says", [
    ({"amount": "0", "reference": "X"}, "from 0.01"), ({"amount": "-5", "reference": "X"}, "from 0.01"),
    ({"amount": "1.234", "reference": "X"}, "two decimals"), ({"amount": "abc", "reference": "X"}, "Not a valid"),
    ({"amount": "100000", "reference": "X"}, "from 0.01"), ({"amount": "5", "reference": ""}, "Enter the payment"),
    ({"amount": "5", "reference": "r" * 101}, "longer than 100"),
])
def test_a_bad_top_up_is_refused_and_changes_nothing(client, auth, db, world, operator, data, says):
    auth.login_operator()
    with db.unchanged():
        response = client.post(f"/admin/customers/{world.customer}/balance", data=data)
        assert response.status_code == 400 and says in response.get_data(as_text=True)


@pytest.mark.parametrize("who", ["anonymous", "customer", "other customer", "producer"])
def test_only_the_operator_sees_or_tops_up_a_customer_s_balance(client, auth, db, world, operator, who):
    {"anonymous": lambda: None, "customer": auth.login_customer, "producer": auth.login_producer,
     "other customer": lambda: auth.login_customer("tom@example.com")}[who]()
    with db.unchanged():
        for response in (client.get(f"/admin/customers/{world.customer}/balance"),
                         client.post(f"/admin/customers/{world.customer}/balance",
                                     data={"amount": "5", "reference": "X"})):
            assert response.status_code == 302 and response.headers["Location"].startswith("/login/operator")


def test_a_top_up_for_no_such_customer_is_404(client, auth, db, world, operator):
    auth.login_operator()
    with db.unchanged():
        assert client.get("/admin/customers/999999/balance").status_code == 404
        assert client.post("/admin/customers/999999/balance", data={"amount": "5", "reference": "X"}).status_code == 404


@pytest.mark.parametrize("who", ["anonymous", "producer", "operator"])
def test_the_balance_page_is_each_customer_s_own(client, auth, db, world, operator, who):
    {"anonymous": lambda: None, "producer": auth.login_producer, "operator": auth.login_operator}[who]()
    response = client.get("/account/balance")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login/customer")


def test_another_customer_s_balance_is_never_shown(app, client, auth, db, world):
    top_up(app, world.other_customer, "77.00", "TOM-1")
    auth.login_customer()
    page = client.get("/account/balance").get_data(as_text=True)
    assert "77.00" not in page and "TOM-1" not in page and 'id="credit-balance">£0.00<' in page


def test_the_demo_data_posts_each_order_once_and_jane_has_credit(app, db):
    from db import seed_database
    db.clear()
    with app.app_context():
        seed_database()
        posted = db.value("SELECT COUNT(*) FROM ledger_entry")
        ledger.backfill_orders()
    assert db.value("SELECT COUNT(*) FROM ledger_entry") == posted, "a second back-fill posts nothing"
    assert db.value("SELECT COUNT(DISTINCT order_id) FROM ledger_entry WHERE kind = 'order'") == db.value(
        "SELECT COUNT(*) FROM orders WHERE status <> 'cancelled'"), "a cancelled demo order is worth nothing"
    assert db.value("SELECT balance FROM ledger_account WHERE kind = 'credit' AND owner_id = 1") == Decimal("40.00")
    paid = db.value("SELECT goods_total + fee FROM orders WHERE order_id = 5")
    assert [legs["receivable"] for kind, _, legs in entries(db, 5)] == [-paid, paid], "order 5 was paid"


# --- The co-op's fee ---------------------------------------------------------------

def test_the_fee_comes_out_of_the_producer_s_side_once_per_order_half_up(app, client, auth, db, world):
    app.config["COOP_FEE_PERCENT"] = Decimal("5")
    dime = db.add_product(world.producer, "Sweet", "0.10", quantity=10, unit="each")
    other = db.add_product(world.producer, "Other sweet", "0.10", quantity=10, unit="each")
    db.add_to_cart(world.customer, dime, 1)
    db.add_to_cart(world.customer, other, 1)
    auth.login_customer()
    assert checkout(client, world).status_code == 302
    order_id = newest_order(db, world)
    [(kind, _, legs)] = entries(db, order_id)
    assert legs == {"receivable": Decimal("-0.20"), "producer": Decimal("0.19"), "fees": Decimal("0.01")}, \
        "5% of £0.20 is £0.01: rounded once for the order, not £0.01 a line"
    assert db.value("SELECT coop_fee_percent FROM orders WHERE order_id = %s", (order_id,)) == Decimal("5.00")
    assert client.post(f"/orders/{order_id}/cancel").status_code == 302
    assert sum(legs.get("fees", 0) for _, _, legs in entries(db, order_id)) == 0, "a cancel gives the fee back"


def test_the_fee_follows_every_change_and_the_producer_sees_it(app, client, auth, db, world):
    app.config["COOP_FEE_PERCENT"] = Decimal("10")
    db.add_to_cart(world.customer, world.product, 3)
    auth.login_customer()
    checkout(client, world)
    order_id = newest_order(db, world)
    assert client.post(f"/orders/{order_id}/lines/{world.product}", data={"quantity": "4"}).status_code == 302
    fees = [legs.get("fees") for _, _, legs in entries(db, order_id)]
    assert fees == [Decimal("0.54"), Decimal("0.18")], "10% of £5.40, then of £1.80 more"
    auth.logout()
    auth.login_producer()
    page = client.get(f"/dashboard/orders/{order_id}").get_data(as_text=True)
    assert "The co-op's fee, 10.00% of goods: £0.72. For this order you receive £6.48." in page


def test_a_producer_s_own_rate_applies_to_their_new_orders_only(app, client, auth, db, world, operator):
    app.config["COOP_FEE_PERCENT"] = Decimal("5")
    auth.login_operator()
    assert client.post(f"/admin/producers/{world.producer}/fee", data={"fee_percent": "12.5"}).status_code == 302
    assert db.value("SELECT fee_percent FROM producer WHERE producer_id = %s", (world.producer,)) == Decimal("12.50")
    assert db.value("SELECT action FROM operator_audit WHERE target_id = %s AND target_type = 'producer'",
                    (world.producer,)) == "set_fee"
    auth.logout()
    db.add_to_cart(world.customer, world.product, 2)
    auth.login_customer()
    checkout(client, world)
    order_id = newest_order(db, world)
    assert db.value("SELECT coop_fee_percent FROM orders WHERE order_id = %s", (order_id,)) == Decimal("12.50")
    assert entries(db, order_id)[0][2]["fees"] == Decimal("0.45"), "12.5% of £3.60"
    assert db.value("SELECT coop_fee_percent FROM orders WHERE order_id = %s", (world.order,)) == 0, \
        "an order placed before keeps its rate"


@pytest.mark.parametrize("value, says", [("-1", "from 0 to 100"), ("101", "from 0 to 100"), ("abc", "Not a valid"),
                                         ("2.555", "two decimals"), ("NaN", "from 0 to 100")])
def test_a_bad_fee_is_refused_and_changes_nothing(client, auth, db, world, operator, value, says):
    auth.login_operator()
    with db.unchanged():
        response = client.post(f"/admin/producers/{world.producer}/fee", data={"fee_percent": value})
        assert response.status_code == 400 and says in response.get_data(as_text=True)


@pytest.mark.parametrize("who", ["anonymous", "customer", "producer"])
def test_only_the_operator_sets_a_producer_s_fee(client, auth, db, world, operator, who):
    {"anonymous": lambda: None, "customer": auth.login_customer, "producer": auth.login_producer}[who]()
    with db.unchanged():
        response = client.post(f"/admin/producers/{world.producer}/fee", data={"fee_percent": "0"})
        assert response.status_code == 302 and response.headers["Location"].startswith("/login/operator")


def test_a_fee_for_no_such_producer_is_404(client, auth, db, world, operator):
    auth.login_operator()
    with db.unchanged():
        assert client.post("/admin/producers/999999/fee", data={"fee_percent": "3"}).status_code == 404
