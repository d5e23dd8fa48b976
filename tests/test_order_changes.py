"""Orders that change after checkout: a checkout that cannot double, its confirmation page, customers' edits
until ordering closes, producers' shortages, and every change recorded and told once."""
import datetime
import threading
from decimal import Decimal

import pytest

from conftest import PASSWORD

UTC = datetime.timezone.utc
SATURDAY = datetime.date(2026, 12, 5)
SATURDAY_CUTOFF = datetime.datetime(2026, 12, 4, 9, 0, tzinfo=UTC)  # 24 hours before 09:00 GMT on the Saturday
KEY = "k" * 22


def place(client, auth, db, world, quantity=2, when=None, **details):
    """Jane checks out quantity of the farm's potatoes, by arrangement unless when says otherwise: the order's id."""
    db.add_to_cart(world.customer, world.product, quantity)
    auth.login_customer()
    data = {f"when_{world.producer}": when or f"{world.collection[world.producer]}@arranged", **details}
    response = client.post("/checkout", data=data)
    assert response.status_code == 302, response.get_data(as_text=True)
    return db.value("SELECT MAX(order_id) FROM orders WHERE customer_id = %s", (world.customer,))


def delivery(db, world, fee="3.50", minimum="2.00", free_over="5.00"):
    """The farm's van, with a fee, a minimum order and free delivery over an amount: checkout data choosing it."""
    van = world.delivery[world.producer]
    db.execute("UPDATE fulfilment_option SET fee = %s, minimum_order = %s, free_over = %s WHERE option_id = %s",
               (fee, minimum, free_over, van))
    return {"when": f"{van}@arranged", "delivery_address": "12 Orchard Row", "postcode": "BS1 4DJ"}


def order_row(db, order_id):
    return db.row("SELECT status, goods_total, fee, item_count FROM orders WHERE order_id = %s", (order_id,))


def changes_told(db, order_id, to_role):
    return db.rows("SELECT recipient, subject, body_text FROM email_outbox WHERE dedupe_key LIKE %s",
                   (f"order-changed:{order_id}:{to_role}:%",))


# --- A checkout that cannot double ------------------------------------------

def test_the_same_checkout_key_sent_twice_places_one_set_of_orders(client, auth, db, world):
    db.add_to_cart(world.customer, world.product, 2)
    db.add_to_cart(world.customer, world.other_product, 1)
    auth.login_customer()
    data = dict(world.choose(), checkout_key=KEY)
    first, second = client.post("/checkout", data=data), client.post("/checkout", data=data)
    assert first.status_code == second.status_code == 302
    assert first.headers["Location"] == second.headers["Location"] == f"/checkout/{KEY}"
    placed = [row["order_id"] for row in db.rows("SELECT order_id FROM orders WHERE checkout_key = %s", (KEY,))]
    assert len(placed) == 2
    assert (db.stock(world.product), db.stock(world.other_product)) == (48, 29), "stock taken once"
    page = client.get(f"/checkout/{KEY}").get_data(as_text=True)
    assert "sent twice" in page and all(f"Order #{order_id}" in page for order_id in placed)


def test_two_submits_of_one_key_at_once_place_one_set_and_both_show_it(app, db, world):
    db.add_to_cart(world.customer, world.product, 2)
    db.add_to_cart(world.customer, world.other_product, 1)
    data = dict(world.choose(), checkout_key=KEY)
    clients = [app.test_client() for _ in range(2)]
    for client in clients:
        assert client.post("/login/customer", data={"email": "jane@example.com", "password": PASSWORD}).status_code == 302
    barrier, answers = threading.Barrier(2), [None, None]

    def submit(index):
        barrier.wait()
        answers[index] = clients[index].post("/checkout", data=data)

    threads = [threading.Thread(target=submit, args=(index,)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert [answer.status_code for answer in answers] == [302, 302]
    assert {answer.headers["Location"] for answer in answers} == {f"/checkout/{KEY}"}
    assert db.value("SELECT COUNT(*) FROM orders WHERE customer_id = %s AND checkout_key = %s",
                    (world.customer, KEY)) == 2
    assert db.stock(world.product) == 48 and db.cart(world.customer) == {}


def test_the_confirmation_page_shows_each_order_and_how_to_pay(client, auth, db, world):
    db.execute("UPDATE producer SET payment_info = 'Cash at the gate' WHERE producer_id = %s", (world.producer,))
    order_id = place(client, auth, db, world, checkout_key=KEY)
    response = client.get(f"/checkout/{KEY}")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert f"Order #{order_id}</a> from Hartley Farm" in page and "£3.60" in page and "Cash at the gate" in page
    assert "What happens next" in page


@pytest.mark.parametrize("path", [f"/checkout/{'x' * 22}", "/checkout/short", "/checkout/%3Cscript%3E"])
def test_a_confirmation_page_of_no_checkout_of_theirs_is_404(client, auth, db, world, path):
    place(client, auth, db, world, checkout_key=KEY)
    auth.logout()
    auth.login_customer("tom@example.com")
    assert client.get(f"/checkout/{KEY}").status_code == 404, "Jane's checkout is not Tom's"
    assert client.get(path).status_code == 404


# --- Customers change their orders until ordering closes --------------------

def test_an_edit_changes_stock_fee_and_total_exactly_and_tells_the_producer_once(client, auth, db, world):
    order_id = place(client, auth, db, world, **delivery(db, world))
    assert order_row(db, order_id) == {"status": "pending", "goods_total": Decimal("3.60"), "fee": Decimal("3.50"),
                                       "item_count": 2}
    response = client.post(f"/orders/{order_id}/lines/{world.product}", data={"quantity": "3"})
    assert response.status_code == 302
    assert order_row(db, order_id)["goods_total"] == Decimal("5.40") and order_row(db, order_id)["fee"] == 0, \
        "over free_over, delivery is free"
    assert db.stock(world.product) == 47
    assert client.post(f"/orders/{order_id}/add", data={"product_id": world.low_product, "quantity": "1"}).status_code == 302
    assert db.stock(world.low_product) == 1
    assert order_row(db, order_id) == {"status": "pending", "goods_total": Decimal("6.50"), "fee": Decimal("0.00"),
                                       "item_count": 4}
    history = db.rows("SELECT kind, changed_by_role, product_id, quantity_before, quantity_after FROM"
                      " order_status_history WHERE order_id = %s AND kind = 'line' ORDER BY history_id", (order_id,))
    assert [tuple(row.values()) for row in history] == [("line", "customer", world.product, 2, 3),
                                                         ("line", "customer", world.low_product, 0, 1)]
    [email] = changes_told(db, order_id, "producer")
    assert email["recipient"] == "farm@example.com" and "£6.50" in email["subject"]
    assert "Potatoes: 2 → 3 × kg" in email["body_text"] and "Kale: 0 → 1 × bag" in email["body_text"]
    page = client.get(f"/orders/{order_id}").get_data(as_text=True)
    assert "Changed Potatoes: 2 → 3 × kg" in page


@pytest.mark.parametrize("change, problem", [
    ({"quantity": "1"}, "needs an order of at least £2.00"),
    ({"quantity": "60"}, "Only 48 more of Potatoes are in stock."),
])
def test_an_edit_that_breaks_a_rule_is_refused_and_changes_nothing(client, auth, db, world, change, problem):
    order_id = place(client, auth, db, world, **delivery(db, world))
    with db.unchanged():
        response = client.post(f"/orders/{order_id}/lines/{world.product}", data=change)
        assert response.status_code == 409
        assert problem in response.get_data(as_text=True)


def test_removing_the_last_line_or_adding_another_producers_product_is_refused(client, auth, db, world):
    order_id = place(client, auth, db, world)
    with db.unchanged():
        emptied = client.post(f"/orders/{order_id}/lines/{world.product}", data={"quantity": "0"})
        assert emptied.status_code == 409 and "cancel the order instead" in emptied.get_data(as_text=True)
        foreign = client.post(f"/orders/{order_id}/add", data={"product_id": world.other_product, "quantity": "1"})
        assert foreign.status_code == 409 and "not on sale from Hartley Farm" in foreign.get_data(as_text=True)


@pytest.mark.parametrize("seconds, allowed", [(-1, True), (0, False), (1, False)])
def test_edits_close_with_ordering_to_the_second(client, auth, db, world, clock, gate, seconds, allowed):
    clock(SATURDAY_CUTOFF - datetime.timedelta(hours=1))
    order_id = place(client, auth, db, world, when=f"{gate}@{SATURDAY.isoformat()}")
    clock(SATURDAY_CUTOFF + datetime.timedelta(seconds=seconds))
    db.execute("UPDATE producer SET phone = '01225 555 027' WHERE producer_id = %s", (world.producer,))
    if allowed:
        assert client.post(f"/orders/{order_id}/lines/{world.product}", data={"quantity": "3"}).status_code == 302
        assert db.stock(world.product) == 47
        return
    with db.unchanged():
        for path, data in [(f"/orders/{order_id}/lines/{world.product}", {"quantity": "3"}),
                           (f"/orders/{order_id}/add", {"product_id": world.low_product, "quantity": "1"}),
                           (f"/orders/{order_id}/cancel", {})]:
            response = client.post(path, data=data)
            assert response.status_code == 409, path
            assert "01225 555 027" in response.get_data(as_text=True) or "Please contact the producer" in \
                response.get_data(as_text=True)


def test_a_confirmed_order_can_still_be_cancelled_before_the_cutoff_and_the_producer_is_told_once(client, auth, db,
                                                                                                   world):
    order_id = place(client, auth, db, world)
    db.execute("UPDATE orders SET status = 'confirmed' WHERE order_id = %s", (order_id,))
    assert client.post(f"/orders/{order_id}/cancel").status_code == 302
    assert client.post(f"/orders/{order_id}/cancel").status_code == 409, "once"
    assert order_row(db, order_id)["status"] == "cancelled" and db.stock(world.product) == 50
    told = db.rows("SELECT recipient, subject FROM email_outbox WHERE dedupe_key = %s", (f"order-cancelled:{order_id}",))
    assert told == ({"recipient": "farm@example.com", "subject": f"Order #{order_id} was cancelled by Jane: do not pack it"},)


def test_an_order_the_producer_has_ready_cannot_be_changed(client, auth, db, world):
    order_id = place(client, auth, db, world)
    db.execute("UPDATE orders SET status = 'ready' WHERE order_id = %s", (order_id,))
    with db.unchanged():
        response = client.post(f"/orders/{order_id}/lines/{world.product}", data={"quantity": "3"})
        assert response.status_code == 409 and "can no longer be changed" in response.get_data(as_text=True)


CUSTOMER_CHANGES = [("/orders/{order}/lines/{product}", {"quantity": "1"}),
                    ("/orders/{order}/add", {"product_id": "{product}", "quantity": "1"}),
                    ("/orders/{order}/when", {"when": "{collection}@arranged"}),
                    ("/orders/{order}/cancel", {})]


@pytest.mark.parametrize("path, data", CUSTOMER_CHANGES)
@pytest.mark.parametrize("who", ["other customer", "producer", "anonymous"])
def test_only_the_orders_customer_can_change_it(client, auth, db, world, path, data, who):
    {"other customer": lambda: auth.login_customer("tom@example.com"), "producer": auth.login_producer,
     "anonymous": lambda: None}[who]()
    ids = {"order": world.order, "product": world.product, "collection": world.collection[world.producer]}
    with db.unchanged():
        response = client.post(path.format(**ids), data={k: v.format(**ids) for k, v in data.items()})
        if who == "other customer":
            assert response.status_code == 404
        else:
            assert response.status_code == 302 and response.headers["Location"].startswith("/login/customer")


def test_edits_racing_checkouts_never_sell_more_than_was_in_stock(app, client, auth, db, world):
    order_id = place(client, auth, db, world, quantity=1)
    db.execute("UPDATE stock SET quantity_available = 8 WHERE product_id = %s", (world.product,))
    others = [db.add_customer(f"buyer{n}@example.com", f"Buyer {n}") for n in range(10)]
    for customer_id in others:
        db.add_to_cart(customer_id, world.product, 1)
    clients = []
    for address in ["jane@example.com"] * 10 + [f"buyer{n}@example.com" for n in range(10)]:
        one = app.test_client()
        assert one.post("/login/customer", data={"email": address, "password": PASSWORD}).status_code == 302
        clients.append(one)
    barrier, statuses = threading.Barrier(len(clients)), [None] * len(clients)
    choice = {f"when_{world.producer}": f"{world.collection[world.producer]}@arranged"}

    def act(index):
        barrier.wait()
        if index < 10:
            response = clients[index].post(f"/orders/{order_id}/add", data={"product_id": world.product, "quantity": "1"})
        else:
            response = clients[index].post("/checkout", data=choice)
        statuses[index] = response.status_code

    threads = [threading.Thread(target=act, args=(index,)) for index in range(len(clients))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    added = db.value("SELECT quantity FROM order_item WHERE order_id = %s", (order_id,)) - 1
    bought = db.value("SELECT COALESCE(SUM(oi.quantity), 0) FROM order_item oi JOIN orders o ON o.order_id = oi.order_id"
                      " WHERE oi.product_id = %s AND o.customer_id <> %s", (world.product, world.customer))
    assert db.stock(world.product) >= 0
    assert added + bought + db.stock(world.product) == 8, "every unit sold once, none made up"
    assert added == statuses[:10].count(302) and bought == statuses[10:].count(302)
    assert set(statuses) <= {302, 409, 503}


# --- Producers record shortages ---------------------------------------------

def test_a_shortage_restores_stock_recomputes_the_total_and_tells_the_customer_once(client, auth, db, world):
    order_id = place(client, auth, db, world, quantity=3, **delivery(db, world, free_over="5.00"))
    assert order_row(db, order_id)["fee"] == 0, "5.40 is over free_over"
    auth.logout()
    auth.login_producer()
    response = client.post(f"/dashboard/orders/{order_id}/lines/{world.product}",
                           data={"quantity": "2", "reason": "Frost took the crop"})
    assert response.status_code == 302
    assert db.stock(world.product) == 48
    assert order_row(db, order_id) == {"status": "pending", "goods_total": Decimal("3.60"), "fee": Decimal("0.00"),
                                       "item_count": 2}, "a shortage never raises the fee"
    assert client.post(f"/dashboard/orders/{order_id}/lines/{world.product}",
                       data={"quantity": "1", "reason": "And the rest"}).status_code == 302
    [email] = changes_told(db, order_id, "customer")
    assert email["recipient"] == "jane@example.com" and "£1.80" in email["subject"]
    assert "Potatoes: 3 → 2 × kg (Frost took the crop)" in email["body_text"]
    assert "Potatoes: 2 → 1 × kg (And the rest)" in email["body_text"], "two changes in a minute, one email"
    page = client.get(f"/dashboard/orders/{order_id}").get_data(as_text=True)
    assert "Short: Potatoes: 3 → 2 × kg (Frost took the crop)" in page


@pytest.mark.parametrize("data, status, message", [
    ({"quantity": "2", "reason": "Frost"}, 409, "fewer than 2 of Potatoes"),
    ({"quantity": "1", "reason": ""}, 400, "Say why, so the customer knows."),
    ({"quantity": "-1", "reason": "Frost"}, 400, "from 0 to 1,000,000"),
])
def test_a_shortage_that_is_not_one_is_refused(client, auth, db, world, data, status, message):
    auth.login_producer()
    with db.unchanged():
        response = client.post(f"/dashboard/orders/{world.order}/lines/{world.product}", data=data)
        assert response.status_code == status
        assert message in response.get_data(as_text=True)


def test_nothing_is_collected_before_its_day(client, auth, db, world, clock, gate):
    clock(SATURDAY_CUTOFF - datetime.timedelta(hours=1))
    order_id = place(client, auth, db, world, when=f"{gate}@{SATURDAY.isoformat()}")
    db.execute("UPDATE orders SET status = 'ready' WHERE order_id = %s", (order_id,))
    auth.logout()
    auth.login_producer()
    with db.unchanged():
        response = client.post("/dashboard/update-order-status", data={"order_id": order_id, "status": "completed"})
        assert response.status_code == 409
        assert "cannot be marked collected before that day" in response.get_data(as_text=True)
    clock(datetime.datetime(2026, 12, 5, 9, 30, tzinfo=UTC))
    assert client.post("/dashboard/update-order-status", data={"order_id": order_id, "status": "completed"}).status_code == 302


# --- Moving to another time ---------------------------------------------------

def test_a_move_frees_the_old_place_books_the_new_one_and_tells_the_producer(client, auth, db, world, clock, gate):
    clock(SATURDAY_CUTOFF - datetime.timedelta(hours=1))
    evening = db.add_slot(world.collection[world.producer], 2, "16:00", "18:00")  # Wednesdays
    order_id = place(client, auth, db, world, when=f"{gate}@{SATURDAY.isoformat()}")
    wednesday = datetime.date(2026, 12, 9)
    response = client.post(f"/orders/{order_id}/when", data={"when": f"{evening}@{wednesday.isoformat()}"})
    assert response.status_code == 302
    row = db.row("SELECT slot_id, fulfilment_date, slot_start FROM orders WHERE order_id = %s", (order_id,))
    assert (row["slot_id"], row["fulfilment_date"], str(row["slot_start"])) == (evening, wednesday, "16:00:00")
    bookings = {(r["slot_id"], r["slot_date"]): r["booked"] for r in db.rows("SELECT * FROM slot_booking")}
    assert bookings == {(gate, SATURDAY): 0, (evening, wednesday): 1}
    [email] = changes_told(db, order_id, "producer")
    assert "Moved: Sat 5 Dec 2026, 09:00–12:00 GMT → Gate, Wed 9 Dec 2026, 16:00–18:00 GMT" in email["body_text"]


def test_a_move_into_a_full_slot_or_to_delivery_is_refused_and_changes_nothing(client, auth, db, world, clock, gate):
    clock(SATURDAY_CUTOFF - datetime.timedelta(hours=1))
    evening = db.add_slot(world.collection[world.producer], 2, "16:00", "18:00")
    db.execute("UPDATE fulfilment_option SET capacity = 1 WHERE option_id = %s", (world.collection[world.producer],))
    db.execute("INSERT INTO slot_booking (slot_id, slot_date, booked) VALUES (%s, '2026-12-09', 1)", (evening,))
    order_id = place(client, auth, db, world, when=f"{gate}@{SATURDAY.isoformat()}")
    with db.unchanged():
        full = client.post(f"/orders/{order_id}/when", data={"when": f"{evening}@2026-12-09"})
        assert full.status_code == 409 and "no longer open" in full.get_data(as_text=True)
        van = client.post(f"/orders/{order_id}/when", data={"when": f"{world.delivery[world.producer]}@arranged"})
        assert van.status_code == 409 and "cancel it and order again" in van.get_data(as_text=True)


# --- The producer's day -----------------------------------------------------------

def test_a_bulk_status_change_applies_each_change_as_if_made_alone(client, auth, db, world, clock, gate):
    clock(SATURDAY_CUTOFF - datetime.timedelta(hours=1))
    first = place(client, auth, db, world, when=f"{gate}@{SATURDAY.isoformat()}")
    second = place(client, auth, db, world, quantity=1, when=f"{gate}@{SATURDAY.isoformat()}")
    db.execute("UPDATE orders SET status = 'ready' WHERE order_id = %s", (second,))
    auth.logout()
    auth.login_producer()
    response = client.post(f"/dashboard/schedule/{SATURDAY.isoformat()}/status",
                           data={"order_id": [first, second], "status": "confirmed"})
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert f"#{first} is now confirmed." in page and f"#{second} could not move to confirmed" in page
    assert [order_row(db, order_id)["status"] for order_id in (first, second)] == ["confirmed", "ready"]
    assert db.value("SELECT COUNT(*) FROM order_status_history WHERE order_id = %s AND to_status = 'confirmed'"
                    " AND changed_by_role = 'producer'", (first,)) == 1
    assert db.value("SELECT COUNT(*) FROM email_outbox WHERE dedupe_key = %s", (f"order-status:{first}:confirmed",)) == 1
    refused = client.post(f"/dashboard/schedule/{SATURDAY.isoformat()}/status",
                          data={"order_id": [first], "status": "completed"})
    assert refused.status_code == 302 and order_row(db, first)["status"] == "confirmed", "not before its day"


@pytest.mark.parametrize("data, message", [
    ({"status": "confirmed"}, "Choose at least one order."),
    ({"order_id": "abc", "status": "confirmed"}, "Choose at least one order."),
    ({"order_id": "{other}", "status": "confirmed"}, "Orders: choose orders from this day’s list."),
    ({"order_id": "{mine}", "status": "shipped"}, "Not a valid choice"),
])
def test_a_bulk_change_with_bad_choices_is_refused_and_changes_nothing(client, auth, db, world, clock, gate, data,
                                                                      message):
    clock(SATURDAY_CUTOFF - datetime.timedelta(hours=1))
    mine = place(client, auth, db, world, when=f"{gate}@{SATURDAY.isoformat()}")
    auth.logout()
    auth.login_producer()
    with db.unchanged():
        response = client.post(f"/dashboard/schedule/{SATURDAY.isoformat()}/status",
                               data={key: value.format(mine=mine, other=world.other_order) for key, value in data.items()})
        assert response.status_code == 400
        assert message in response.get_data(as_text=True)


# --- Closed days with orders --------------------------------------------------------

@pytest.mark.parametrize("action", ["move", "cancel"])
def test_a_closure_over_a_day_with_orders_settles_each_and_emails_each_customer(client, auth, db, world, clock, gate,
                                                                               action):
    clock(SATURDAY_CUTOFF - datetime.timedelta(hours=1))
    evening = db.add_slot(world.collection[world.producer], 2, "16:00", "18:00")  # Wednesdays
    order_id = place(client, auth, db, world, when=f"{gate}@{SATURDAY.isoformat()}")
    auth.logout()
    auth.login_producer()
    closure = {"start_date": SATURDAY.isoformat(), "end_date": SATURDAY.isoformat(), "note": "Away"}
    with db.unchanged():
        asked = client.post("/dashboard/closures", data=closure)
        assert asked.status_code == 409
        page = asked.get_data(as_text=True)
        assert "1 order is booked on those days" in page and f"#{order_id}" in page and "Move collections to" in page
    response = client.post("/dashboard/closures", data=dict(closure, orders_action=action,
                                                            move_collection=f"{evening}@2026-12-09"))
    assert response.status_code == 302
    assert db.value("SELECT COUNT(*) FROM producer_closure WHERE producer_id = %s", (world.producer,)) == 1
    row = db.row("SELECT status, fulfilment_date FROM orders WHERE order_id = %s", (order_id,))
    if action == "move":
        assert (row["status"], row["fulfilment_date"]) == ("pending", datetime.date(2026, 12, 9))
        [email] = changes_told(db, order_id, "customer")
        assert "(closed Sat 5 Dec 2026)" in email["body_text"]
    else:
        assert row["status"] == "cancelled" and db.stock(world.product) == 50
        assert db.value("SELECT COUNT(*) FROM email_outbox WHERE recipient = 'jane@example.com' AND dedupe_key = %s",
                        (f"order-status:{order_id}:cancelled",)) == 1
    assert db.value("SELECT COUNT(*) FROM orders WHERE producer_id = %s AND fulfilment_date = %s AND status NOT IN"
                    " ('cancelled', 'completed')", (world.producer, SATURDAY)) == 0, "no order stays on a closed day"


def test_a_move_into_the_closure_itself_is_refused_and_changes_nothing(client, auth, db, world, clock, gate):
    clock(SATURDAY_CUTOFF - datetime.timedelta(hours=1))
    place(client, auth, db, world, when=f"{gate}@{SATURDAY.isoformat()}")
    auth.logout()
    auth.login_producer()
    with db.unchanged():
        response = client.post("/dashboard/closures", data={
            "start_date": SATURDAY.isoformat(), "end_date": "2026-12-12", "orders_action": "move",
            "move_collection": f"{gate}@2026-12-12"})
        assert response.status_code == 409
        assert "Choose an open collection time outside the closed days" in response.get_data(as_text=True)


def test_an_address_keeps_its_lines_in_the_emails(client, auth, db, world):
    order_id = place(client, auth, db, world, **delivery(db, world, fee="0.00", minimum="0.00", free_over=None),
                     phone="0117 496 0000")
    db.execute("UPDATE orders SET delivery_address = '3 Mill Terrace\r\nBath' WHERE order_id = %s", (order_id,))
    client.post(f"/orders/{order_id}/lines/{world.product}", data={"quantity": "3"})
    [email] = changes_told(db, order_id, "producer")
    assert "To: 3 Mill Terrace\n      Bath\n      BS1 4DJ" in email["body_text"]


def test_a_typed_address_is_kept_in_lines(client, auth, db, world):
    order_id = place(client, auth, db, world, **dict(delivery(db, world), delivery_address=" 3 Mill Terrace \r\n\r\nBath "))
    assert db.value("SELECT delivery_address FROM orders WHERE order_id = %s", (order_id,)) == "3 Mill Terrace\nBath"


def test_a_full_time_says_full_with_the_next_open_one(client, auth, db, world, clock, gate):
    clock(SATURDAY_CUTOFF - datetime.timedelta(hours=1))
    db.execute("UPDATE fulfilment_option SET capacity = 1 WHERE option_id = %s", (world.collection[world.producer],))
    db.execute("INSERT INTO slot_booking (slot_id, slot_date, booked) VALUES (%s, %s, 1)", (gate, SATURDAY))
    db.add_to_cart(world.customer, world.product, 1)
    auth.login_customer()
    page = client.get("/cart").get_data(as_text=True)
    assert "Full: Sat 5 Dec 2026, 09:00–12:00 GMT." in page
    assert "The next open time is Sat 12 Dec 2026, 09:00–12:00 GMT." in page
    assert f'value="{gate}@{SATURDAY.isoformat()}"' not in page, "a full time cannot be chosen"


def test_a_product_page_offers_to_add_it_to_an_order_still_open(client, auth, db, world, clock, gate):
    clock(SATURDAY_CUTOFF - datetime.timedelta(hours=1))
    order_id = place(client, auth, db, world, when=f"{gate}@{SATURDAY.isoformat()}")
    page = client.get(f"/products/{world.low_product}").get_data(as_text=True)
    assert f"Add to order #{order_id}" in page
    assert f"Add to order #{order_id}" not in client.get(f"/products/{world.other_product}").get_data(as_text=True), \
        "only for the same producer"
    assert client.post(f"/orders/{order_id}/add", data={"product_id": world.low_product, "quantity": "1"}).status_code == 302
    clock(SATURDAY_CUTOFF)
    assert f"Add to order #{order_id}" not in client.get(f"/products/{world.low_product}").get_data(as_text=True), \
        "not once ordering has closed"


def test_a_refused_checkout_says_every_problem_at_once_in_one_list(client, auth, db, world):
    db.add_to_cart(world.customer, world.product, 2)
    db.add_to_cart(world.customer, world.other_product, 4)
    db.execute("UPDATE stock SET quantity_available = 3 WHERE product_id = %s", (world.other_product,))
    auth.login_customer()
    with db.unchanged():
        response = client.post("/checkout", data={f"when_{world.other_producer}": f"{world.collection[world.other_producer]}@arranged",
                                                  "phone": "not a phone"})
        assert response.status_code == 400
        summary = response.get_data(as_text=True).split('class="error-summary"')[1].split("</div>")[0]
        for problem in ["Choose when and where to get your order from Hartley Farm.",
                        "Enter a phone number with digits", "Only 3 of Milk left; you asked for 4."]:
            assert problem in summary, problem
