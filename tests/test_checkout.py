"""Checkout, orders, cancellation and the status history."""
import threading
import time
from decimal import Decimal

import pytest

import checkout
import db as dbmodule
from conftest import PASSWORD, checkout_in_threads, connect, round_trips_of
from measures import round_money


def order_rows(db, customer_id):
    return db.rows("SELECT * FROM orders WHERE customer_id = %s ORDER BY order_id", (customer_id,))


def order_total(db, order_id):
    return db.value("SELECT SUM(quantity * unit_price) FROM order_item WHERE order_id = %s", (order_id,))


def test_full_journey_two_producers_collection(client, auth, db, world):
    auth.login_customer()
    before = set(row["order_id"] for row in order_rows(db, world.customer))
    client.post("/cart/add", data={"product_id": world.product, "quantity": 3})
    client.post("/cart/add", data={"product_id": world.other_product, "quantity": 2})
    cart = client.get("/cart").get_data(as_text=True)
    assert "£5.40" in cart and "£2.80" in cart and 'id="grand-total">£8.20<' in cart

    response = client.post("/checkout", data=world.choose())
    assert response.status_code == 302 and response.headers["Location"].startswith("/checkout/")
    new = [row for row in order_rows(db, world.customer) if row["order_id"] not in before]
    assert len(new) == 2
    by_producer = {row["producer_id"]: row for row in new}
    assert set(by_producer) == {world.producer, world.other_producer}
    for row in new:
        assert row["status"] == "pending" and row["order_type"] == "collection" and row["delivery_address"] is None
    farm_order = by_producer[world.producer]["order_id"]
    dairy_order = by_producer[world.other_producer]["order_id"]
    assert db.rows("SELECT product_id, quantity, unit_price FROM order_item WHERE order_id = %s", (farm_order,)) == (
        {"product_id": world.product, "quantity": 3, "unit_price": Decimal("1.80")},)
    assert order_total(db, farm_order) == Decimal("5.40")
    assert order_total(db, dairy_order) == Decimal("2.80")
    assert db.stock(world.product) == 47 and db.stock(world.other_product) == 28
    assert db.cart(world.customer) == {}
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "your orders are placed" in page and f"Order #{farm_order}" in page and f"Order #{dairy_order}" in page
    history = db.rows("SELECT from_status, to_status, changed_by_role FROM order_status_history WHERE order_id = %s",
                      (farm_order,))
    assert history == ({"from_status": None, "to_status": "pending", "changed_by_role": "customer"},)


def test_a_two_producer_checkout_costs_a_known_number_of_round_trips(client, auth, db, world):
    """Checkout's statements, pinned: the session, the cart with its producers' offers' version (the offers are
    kept) read once to check the form, the cart again in its transaction; per order its row and ledger entry; for the whole checkout the ledger's
    accounts, the lines, one status history write, the emails promised in one statement (written as they are
    sent) and the webhooks that want the orders, then the stock in one statement, one low-stock check, and the
    ledger's legs with their balances. The ledger takes each order's value from what checkout wrote, not from
    reading it back: it must be what the row says."""
    db.execute("UPDATE vat_rate SET percent = 5 WHERE code = 'reduced'")
    db.execute("UPDATE product SET vat_rate = 'reduced' WHERE product_id = %s", (world.product,))
    db.execute("UPDATE producer SET fee_percent = 7.5 WHERE producer_id = %s", (world.producer,))
    db.add_to_cart(world.customer, world.product, 2)
    db.add_to_cart(world.customer, world.other_product, 1)
    auth.login_customer()
    client.get("/cart")
    assert round_trips_of(client, lambda: client.post("/checkout", data=world.choose()), 302) == 22
    orders = {row["producer_id"]: row for row in order_rows(db, world.customer)}
    assert orders[world.producer]["coop_fee_percent"] == Decimal("7.50")
    assert orders[world.other_producer]["coop_fee_percent"] == Decimal("0")  # COOP_FEE_PERCENT
    assert {row["product_id"]: row["vat_percent"] for row in db.rows(
        "SELECT product_id, vat_percent FROM order_item WHERE order_id IN (%s, %s)",
        tuple(order["order_id"] for order in orders.values()))} == {
        world.product: Decimal("5.00"), world.other_product: Decimal("0.00")}
    assert db.rows("SELECT COUNT(*) AS n FROM order_status_history WHERE to_status = 'pending' AND order_id IN (%s, %s)",
                   tuple(orders[p]["order_id"] for p in orders)) == ({"n": 2},)
    for order in orders.values():
        posted = db.rows("SELECT a.kind, SUM(l.amount) AS amount FROM ledger_entry e JOIN ledger_leg l"
                         " ON l.entry_id = e.entry_id JOIN ledger_account a ON a.account_id = l.account_id"
                         " WHERE e.order_id = %s GROUP BY a.kind", (order["order_id"],))
        fee = round_money(order["goods_total"] * order["coop_fee_percent"] / 100)
        assert {row["kind"]: row["amount"] for row in posted} == {
            "receivable": -order["goods_total"] - order["fee"], "producer": order["goods_total"] + order["fee"] - fee,
            **({"fees": fee} if fee else {})}


def test_single_producer_checkout_lands_on_its_confirmation_with_address(client, auth, db, world):
    db.add_to_cart(world.customer, world.product, 1)
    auth.login_customer()
    response = client.post("/checkout", data=world.choose("delivery", delivery_address=" 12 Orchard Row\nAshby "))
    order = order_rows(db, world.customer)[-1]
    assert response.headers["Location"] == f"/checkout/{order['checkout_key']}"
    assert order["delivery_address"] == "12 Orchard Row\nAshby"
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "your order is placed" in page and f"Order #{order['order_id']}" in page and "12 Orchard Row" in page


@pytest.mark.parametrize("data, message", [
    (lambda w: w.choose("delivery", delivery_address=""), "Enter a delivery address"),
    (lambda w: w.choose("delivery", delivery_address="   "), "Enter a delivery address"),
    (lambda w: w.choose("delivery", delivery_address="x" * 501), "under 500 characters"),
    (lambda w: {f"when_{w.producer}": "teleport"}, "Choose when and where to get your order from Hartley Farm."),
    (lambda w: {}, "Choose when and where to get your order from Hartley Farm."),
])
def test_checkout_with_bad_fields_is_refused_and_changes_nothing(client, auth, db, world, data, message):
    db.add_to_cart(world.customer, world.product, 1)
    auth.login_customer()
    with db.unchanged():
        response = client.post("/checkout", data=data(world))
        assert response.status_code == 400
        assert message in response.get_data(as_text=True)


def test_empty_cart_cannot_check_out(client, auth, db, world):
    auth.login_customer()
    with db.unchanged():
        response = client.post("/checkout", data=world.choose())
        assert response.status_code == 409
        assert "Your cart is empty." in response.get_data(as_text=True)


def four_milk_with_three_left(db, world):
    db.add_to_cart(world.customer, world.other_product, 4)
    db.execute("UPDATE stock SET quantity_available = 3 WHERE product_id = %s", (world.other_product,))


def test_a_short_line_holds_back_its_producer_only_and_can_be_reduced_to_what_is_left(client, auth, db, world):
    db.add_to_cart(world.customer, world.product, 2)
    four_milk_with_three_left(db, world)
    auth.login_customer()
    cart = client.get("/cart").get_data(as_text=True)
    assert "Only 3 left." in cart and "Reduce to 3" in cart, "the cart shows the short line with what is left"
    assert 'id="grand-total">£3.60<' in cart, "the total counts only what can be ordered"
    response = client.post("/checkout", data=world.choose())
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Not ordered yet, and still in your cart: Only 3 of Milk left; you asked for 4." in page
    assert db.value("SELECT COUNT(*) FROM orders WHERE customer_id = %s AND producer_id = %s",
                    (world.customer, world.other_producer)) == 0
    assert db.cart(world.customer) == {world.other_product: 4} and db.stock(world.other_product) == 3
    assert client.post("/cart/update", data={"product_id": world.other_product, "quantity": 3}).status_code == 302
    assert db.cart(world.customer) == {world.other_product: 3}


def test_a_short_line_alone_is_refused_and_changes_nothing(client, auth, db, world):
    four_milk_with_three_left(db, world)
    auth.login_customer()
    with db.unchanged():
        response = client.post("/checkout", data=world.choose())
        assert response.status_code == 409
        page = response.get_data(as_text=True)
        assert "Only 3 of Milk left; you asked for 4." in page and "Nothing was ordered" in page


def test_an_unavailable_line_blocks_checkout(client, auth, db, world):
    db.add_to_cart(world.customer, world.product, 1)
    db.execute("UPDATE product SET is_available = 0 WHERE product_id = %s", (world.product,))
    auth.login_customer()
    with db.unchanged():
        response = client.post("/checkout", data=world.choose())
        assert response.status_code == 409
        assert "Potatoes is no longer available" in response.get_data(as_text=True)


def test_checkout_charges_the_current_price_and_later_changes_leave_the_order_alone(client, auth, db, world):
    db.add_to_cart(world.customer, world.product, 2, price="1.50")
    auth.login_customer()
    client.post("/checkout", data=world.choose())
    order_id = order_rows(db, world.customer)[-1]["order_id"]
    assert order_total(db, order_id) == Decimal("3.60")
    db.execute("UPDATE product SET price = '9.99' WHERE product_id = %s", (world.product,))
    assert order_total(db, order_id) == Decimal("3.60")
    assert "£3.60" in client.get(f"/orders/{order_id}").get_data(as_text=True)
    assert "£3.60" in client.get("/orders").get_data(as_text=True)


def test_orders_list_is_newest_first_and_paginated(client, auth, db, world):
    ids = [db.add_order(world.customer, [(world.product, 1, "1.80")]) for _ in range(25)]
    db.execute("UPDATE orders SET placed_at = placed_at - INTERVAL order_id MINUTE")
    auth.login_customer()
    first = client.get("/orders").get_data(as_text=True)
    second = client.get("/orders?page=2").get_data(as_text=True)
    assert first.index(f"#{ids[0]}<") < first.index(f"#{ids[1]}<"), "higher ids are older here"
    assert f"#{world.other_order}<" not in first + second
    assert "Page 1 of 2" in first and f"#{ids[-1]}<" in second


def test_orders_list_has_an_empty_state(client, auth, db, world):
    db.delete_orders()
    auth.login_customer()
    assert "You have not ordered anything yet." in client.get("/orders").get_data(as_text=True)


@pytest.mark.parametrize("method, suffix", [("get", ""), ("post", "/cancel")])
def test_another_customers_order_is_404(client, auth, db, world, method, suffix):
    auth.login_customer()
    with db.unchanged():
        response = getattr(client, method)(f"/orders/{world.other_order}{suffix}")
        assert response.status_code == 404


@pytest.mark.parametrize("path", ["/orders", "/orders/1", f"/checkout/{'k' * 22}"])
def test_customer_pages_need_a_customer_login(client, auth, world, path):
    assert client.get(path).headers["Location"].startswith("/login/customer?next=")
    auth.login_producer()
    assert client.get(path).headers["Location"].startswith("/login/customer")


def test_customer_cancels_a_pending_order_and_stock_comes_back_once(client, auth, db, world):
    auth.login_customer()
    response = client.post(f"/orders/{world.order}/cancel")
    assert response.status_code == 302
    assert db.value("SELECT status FROM orders WHERE order_id = %s", (world.order,)) == "cancelled"
    assert db.stock(world.product) == 52
    again = client.post(f"/orders/{world.order}/cancel")
    assert again.status_code == 409
    assert "can no longer be cancelled" in again.get_data(as_text=True)
    assert db.stock(world.product) == 52
    history = db.rows("SELECT from_status, to_status, changed_by_role, changed_by_id FROM order_status_history"
                      " WHERE order_id = %s", (world.order,))
    assert history == ({"from_status": "pending", "to_status": "cancelled", "changed_by_role": "customer",
                        "changed_by_id": world.customer},)
    page = client.get(f"/orders/{world.order}").get_data(as_text=True)
    assert "Cancelled</strong>\n        by you" in page


@pytest.mark.parametrize("status, order_type", [("ready", "collection"), ("out_for_delivery", "delivery"),
                                                ("completed", "delivery"), ("cancelled", "collection")])
def test_customer_cannot_cancel_once_the_producer_has_it_ready(client, auth, db, world, status, order_type):
    db.execute("UPDATE orders SET status = %s, order_type = %s, delivery_address = 'x' WHERE order_id = %s",
               (status, order_type, world.order))
    auth.login_customer()
    with db.unchanged():
        response = client.post(f"/orders/{world.order}/cancel")
        assert response.status_code == 409
    assert "Cancel this order" not in client.get(f"/orders/{world.order}").get_data(as_text=True)


def test_every_producer_transition_is_recorded_with_who_and_when(client, auth, db, world):
    auth.login_producer()
    for status in ["confirmed", "ready", "completed"]:
        client.post("/dashboard/update-order-status", data={"order_id": world.order, "status": status})
    history = db.rows("SELECT from_status, to_status, changed_by_role, changed_by_id, changed_at"
                      " FROM order_status_history WHERE order_id = %s ORDER BY history_id", (world.order,))
    assert [(h["from_status"], h["to_status"]) for h in history] == [
        ("pending", "confirmed"), ("confirmed", "ready"), ("ready", "completed")]
    assert all(h["changed_by_role"] == "producer" and h["changed_by_id"] == world.producer for h in history)
    assert all(h["changed_at"] is not None for h in history)
    producer_page = client.get(f"/dashboard/orders/{world.order}").get_data(as_text=True)
    assert "Ready to collect" in producer_page and "Collected" in producer_page
    auth.login_customer()
    customer_page = client.get(f"/orders/{world.order}").get_data(as_text=True)
    assert "Ready to collect</strong>\n        by Hartley Farm" in customer_page


def test_delivery_orders_read_out_for_delivery_then_delivered(client, auth, db, world):
    db.execute("UPDATE orders SET order_type = 'delivery', delivery_address = 'x' WHERE order_id = %s",
               (world.order,))
    auth.login_producer()
    for status in ["confirmed", "out_for_delivery", "completed"]:
        assert client.post("/dashboard/update-order-status",
                           data={"order_id": world.order, "status": status}).status_code == 302
    page = client.get(f"/dashboard/orders/{world.order}").get_data(as_text=True)
    assert "Out for delivery" in page and "Delivered" in page


def test_producer_cancel_of_a_confirmed_order_restocks_once(client, auth, db, world):
    auth.login_producer()
    client.post("/dashboard/update-order-status", data={"order_id": world.order, "status": "confirmed"})
    client.post("/dashboard/update-order-status", data={"order_id": world.order, "status": "cancelled"})
    assert db.stock(world.product) == 52
    client.post("/dashboard/update-order-status", data={"order_id": world.order, "status": "cancelled"})
    assert db.stock(world.product) == 52


def test_producer_order_page_shows_lines_address_history_and_next_steps(client, auth, db, world):
    order = db.add_order(world.customer, [(world.product, 2, "1.80"), (world.low_product, 1, "1.10")],
                         order_type="delivery", address="7 Lark Rise")
    db.execute("INSERT INTO order_status_history (order_id, from_status, to_status, changed_by_role, changed_by_id)"
               " VALUES (%s, NULL, 'pending', 'customer', %s)", (order, world.customer))
    auth.login_producer()
    page = client.get(f"/dashboard/orders/{order}").get_data(as_text=True)
    for text in ["Potatoes", "Kale", "£4.70", "7 Lark Rise", "Placed</strong>\n        by Jane", "Mark as Confirmed",
                 "Mark as Cancelled"]:
        assert text in page
    assert "Mark as Ready to collect" not in page
    assert client.get(f"/dashboard/orders/{world.other_order}").status_code == 404


def test_concurrent_checkouts_never_oversell(app, db, world):
    honey = db.add_product(world.other_producer, "Honey", "7.50", quantity=5, category="Pantry", unit="jar")
    emails = [f"buyer{n}@example.com" for n in range(24)]
    for email in emails:
        customer = db.add_customer(email)
        db.add_to_cart(customer, honey, 1)
    results = checkout_in_threads(app, emails, len(emails), world.choose())
    statuses = [status for status, _ in results]
    assert statuses.count(302) == 5
    assert statuses.count(409) == len(emails) - 5
    for status, page in results:
        if status == 409:
            assert "Honey is out of stock" in page or "Only " in page and "of Honey left" in page
    assert db.stock(honey) == 0
    assert db.value("SELECT SUM(quantity) FROM order_item WHERE product_id = %s", (honey,)) == 5
    assert db.value("SELECT COUNT(*) FROM cart_item WHERE product_id = %s", (honey,)) == len(emails) - 5


def test_stock_sold_during_a_checkout_runs_it_again_on_what_is_left(app, client, auth, db, world, monkeypatch):
    """Stock is taken last, just before the commit; a line sold out since the cart was read makes the whole
    checkout run again, which then holds back that producer's order as if it had read the cart after the sale."""
    db.add_to_cart(world.customer, world.product, 2)
    db.add_to_cart(world.customer, world.other_product, 1)
    take_stock, calls = checkout.take_stock, []

    def sold_meanwhile(lines):
        calls.append(sorted(line["product_id"] for line in lines))
        if world.product in calls[-1] and len(calls) == 2:
            db.execute("UPDATE stock SET quantity_available = 1 WHERE product_id = %s", (world.product,))
        return take_stock(lines)

    monkeypatch.setattr(checkout, "take_stock", sold_meanwhile)
    auth.login_customer()
    before, entries = order_rows(db, world.customer), db.value("SELECT COUNT(*) FROM ledger_entry")
    response = client.post("/checkout", data=world.choose())
    assert response.status_code == 302
    assert calls == [[], sorted([world.product, world.other_product]), [], [world.other_product]]
    placed = order_rows(db, world.customer)[len(before):]
    assert [order["producer_id"] for order in placed] == [world.other_producer]
    assert db.stock(world.product) == 1 and db.stock(world.other_product) == 29
    assert db.cart(world.customer) == {world.product: 2}
    assert db.value("SELECT COUNT(*) FROM ledger_entry") == entries + 1
    assert "Not ordered yet, and still in your cart" in client.get(response.headers["Location"]).get_data(as_text=True)


def test_a_checkout_whose_stock_keeps_selling_under_it_gives_up_and_changes_nothing(
        app, client, auth, db, world, monkeypatch):
    """Each run again reads afresh; one that never finds its stock where it read it stops after
    READ_AGAIN_ATTEMPTS runs and asks the customer to try again, with nothing ordered."""
    db.add_to_cart(world.customer, world.product, 2)
    runs = []

    def always_sold(lines):
        runs.append(lines)
        raise dbmodule.ReadAgain("sold again")

    monkeypatch.setattr(checkout, "take_stock", always_sold)
    auth.login_customer()
    client.get("/cart")
    with db.unchanged():
        response = client.post("/checkout", data=world.choose())
    assert response.status_code == 503 and len(runs) == dbmodule.READ_AGAIN_ATTEMPTS
    assert "Checkout is very busy right now and nothing was ordered" in response.get_data(as_text=True)


def test_a_line_that_sells_its_product_out_takes_its_stock_first(app, client, auth, db, world, monkeypatch):
    """Selling out marks the product row, which other checkouts' order lines share-lock: that line's stock is
    taken before the orders are written, the rest just before the commit."""
    db.execute("UPDATE stock SET quantity_available = 2 WHERE product_id = %s", (world.product,))
    db.add_to_cart(world.customer, world.product, 2)
    db.add_to_cart(world.customer, world.other_product, 1)
    take_stock, insert_orders, steps = checkout.take_stock, checkout.insert_orders, []

    def noted_stock(lines):
        steps.append([line["product_id"] for line in lines])
        return take_stock(lines)

    def noted_orders(*args):
        steps.append("orders")
        return insert_orders(*args)

    monkeypatch.setattr(checkout, "take_stock", noted_stock)
    monkeypatch.setattr(checkout, "insert_orders", noted_orders)
    auth.login_customer()
    assert client.post("/checkout", data=world.choose()).status_code == 302
    assert steps == [[world.product], "orders", [world.other_product]]
    assert db.stock(world.product) == 0
    assert db.value("SELECT out_of_stock FROM product WHERE product_id = %s", (world.product,)) == 1


def test_a_line_that_would_sell_out_unexpectedly_runs_the_checkout_again_and_then_sells_out_first(
        app, client, auth, db, world, monkeypatch):
    """A line read with stock to spare that would take the last of it at the end (others bought meanwhile) is
    refused there, so that it never marks its product row while holding its stock row; the run again reads it
    as selling out and takes it first."""
    db.execute("UPDATE stock SET quantity_available = 3 WHERE product_id = %s", (world.product,))
    db.add_to_cart(world.customer, world.product, 2)
    take_stock, calls = checkout.take_stock, []

    def bought_meanwhile(lines):
        calls.append([line["product_id"] for line in lines])
        if len(calls) == 2:
            db.execute("UPDATE stock SET quantity_available = 2 WHERE product_id = %s", (world.product,))
        return take_stock(lines)

    monkeypatch.setattr(checkout, "take_stock", bought_meanwhile)
    auth.login_customer()
    response = client.post("/checkout", data=world.choose())
    assert response.status_code == 302
    assert calls == [[], [world.product], [world.product], []], "refused at the end, then taken first"
    assert db.stock(world.product) == 0
    assert db.value("SELECT out_of_stock FROM product WHERE product_id = %s", (world.product,)) == 1
    assert db.value("SELECT quantity FROM order_item oi JOIN orders o ON o.order_id = oi.order_id"
                    " WHERE o.customer_id = %s AND oi.product_id = %s ORDER BY o.order_id DESC LIMIT 1",
                    (world.customer, world.product)) == 2


def checkout_beside_another(client, world, test_database, caplog, holds, then):
    """Check out while a real second connection's transaction runs beside it: it runs holds (sql, args), waits
    0.5 s for the checkout to reach its step, runs then (sql, args) and commits. The checkout's response, and
    whether either side was rolled back for a deadlock (that side's exception, or a retried 1213)."""
    other = connect(test_database)
    holding, problems = threading.Event(), []

    def other_checkout():
        cur = other.cursor()
        try:
            cur.execute("START TRANSACTION")
            cur.execute(*holds)
            holding.set()
            time.sleep(0.5)
            cur.execute(*then)
            other.commit()
        except Exception as exc:  # a deadlock would roll this side back
            problems.append(exc)
            other.rollback()

    thread = threading.Thread(target=other_checkout)
    thread.start()
    holding.wait(5)
    with caplog.at_level("WARNING"):
        response = client.post("/checkout", data=world.choose())
    thread.join(10)
    other.close()
    return response, problems + [record for record in caplog.records if "1213" in record.getMessage()]


def test_selling_out_waits_for_a_buyer_holding_the_product_row_instead_of_deadlocking_with_it(
        app, client, auth, db, world, test_database, caplog):
    """Another checkout has written its order lines (a share lock on the product row) and is about to take its
    stock: the sell-out locks the product row before the stock row, so it waits for that buyer to finish,
    and neither is rolled back for a deadlock."""
    db.execute("UPDATE stock SET quantity_available = 2 WHERE product_id = %s", (world.product,))
    db.add_to_cart(world.customer, world.product, 2)
    auth.login_customer()
    response, deadlocks = checkout_beside_another(
        client, world, test_database, caplog,
        ("SELECT product_id FROM product WHERE product_id = %s LOCK IN SHARE MODE", (world.product,)),
        ("UPDATE stock SET reorder_threshold = reorder_threshold WHERE product_id = %s", (world.product,)))
    assert response.status_code == 302 and deadlocks == []
    assert db.stock(world.product) == 0


def test_a_first_time_buyer_s_account_is_made_as_the_checkout_commits_not_while_it_waits_for_stock(
        app, client, auth, db, world, test_database, caplog):
    """Another checkout holds the product's stock row and then writes the accounts beside it: the new buyer's
    checkout waits for that stock without holding an account row of its own, so neither is rolled back."""
    buyer = db.add_customer("new@example.com", "New")
    db.add_to_cart(buyer, world.product, 1)
    auth.login_customer("new@example.com")
    response, deadlocks = checkout_beside_another(
        client, world, test_database, caplog,
        ("SELECT quantity_available FROM stock WHERE product_id = %s FOR UPDATE", (world.product,)),
        ("INSERT INTO ledger_account (kind, owner_id) VALUES ('receivable', %s)"
         " ON DUPLICATE KEY UPDATE account_id = account_id", (buyer,)))
    assert response.status_code == 302 and deadlocks == []
    assert db.value("SELECT COUNT(*) FROM ledger_account WHERE kind = 'receivable' AND owner_id = %s", (buyer,)) == 1
    assert db.value("SELECT COUNT(*) FROM ledger_leg l JOIN ledger_account a ON a.account_id = l.account_id"
                    " WHERE a.kind = 'receivable' AND a.owner_id = %s", (buyer,)) == 1


def test_two_racing_cancels_restock_once(app, db, world):
    statuses = []
    clients = []
    for _ in range(2):
        client = app.test_client()
        client.post("/login/customer", data={"email": "jane@example.com", "password": PASSWORD})
        clients.append(client)
    barrier = threading.Barrier(2)

    def cancel(client):
        barrier.wait()
        statuses.append(client.post(f"/orders/{world.order}/cancel").status_code)

    threads = [threading.Thread(target=cancel, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(statuses) == [302, 409]
    assert db.stock(world.product) == 52
    assert db.value("SELECT COUNT(*) FROM order_status_history WHERE order_id = %s", (world.order,)) == 1


def hold_stock_lock(db, product_id, seconds):
    """Lock a stock row from another connection for a while, as a slow concurrent checkout would."""
    db.execute("START TRANSACTION")
    db.execute("SELECT * FROM stock WHERE product_id = %s FOR UPDATE", (product_id,))
    timer = threading.Timer(seconds, db.conn.rollback)
    timer.start()
    return timer


def test_lock_wait_timeouts_are_retried_then_get_a_try_again_message(app, client, auth, db, world):
    app.config["MYSQL_CUSTOM_OPTIONS"] = {"init_command": "SET SESSION innodb_lock_wait_timeout = 1"}
    db.add_to_cart(world.customer, world.product, 1)
    auth.login_customer()
    timer = hold_stock_lock(db, world.product, 10)
    try:
        started = time.monotonic()
        response = client.post("/checkout", data=world.choose())
        elapsed = time.monotonic() - started
    finally:
        timer.cancel()
        db.conn.rollback()
    assert response.status_code == 503
    assert "Please try again" in response.get_data(as_text=True)
    assert elapsed >= 3, "three attempts, each waiting a second for the lock"
    assert db.cart(world.customer) == {world.product: 1}
    assert db.stock(world.product) == 50


def test_a_retry_succeeds_once_the_lock_is_released(app, client, auth, db, world):
    app.config["MYSQL_CUSTOM_OPTIONS"] = {"init_command": "SET SESSION innodb_lock_wait_timeout = 1"}
    db.add_to_cart(world.customer, world.product, 1)
    auth.login_customer()
    timer = hold_stock_lock(db, world.product, 1.5)
    try:
        response = client.post("/checkout", data=world.choose())
    finally:
        timer.join()
    assert response.status_code == 302
    assert db.stock(world.product) == 49
