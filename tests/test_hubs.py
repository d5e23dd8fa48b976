"""The co-op's shared pick-ups: the operator runs them, producers join and leave them, and their times are
offered as each member's own collection times."""
import datetime
import threading
from decimal import Decimal

import pytest

import jobs
from conftest import checkout_in_threads

HUB = {"name": "Market Hall", "address": "1 Market Street\nBristol BS1 1AA", "instructions": "By the clock tower.",
       "contact": "Sam, 07700 900000", "cutoff_hours": "24", "capacity": "40", "fee": "1.50", "is_active": "y"}


def create_hub(client, auth, **changes):
    auth.login_operator()
    response = client.post("/admin/hubs", data=dict(HUB, **changes))
    assert response.status_code == 302
    hub_id = int(response.headers["Location"].rsplit("/", 1)[1])
    assert client.post(f"/admin/hubs/{hub_id}/slots", data={"weekday": "5", "start": "10:00", "end": "13:00"}
                       ).status_code == 302
    auth.logout()
    return hub_id


def join(client, auth, hub_id, email):
    auth.login_producer(email)
    response = client.post(f"/dashboard/hubs/{hub_id}/join", data={"drop_off": "by 09:00 on the day",
                                                                    "payment_method": "collection"})
    assert response.status_code == 302
    auth.logout()


def hub_options(db, hub_id):
    return db.rows("SELECT o.producer_id, o.name, o.address, o.cutoff_hours, o.drop_off, o.is_archived,"
                   " (SELECT GROUP_CONCAT(CONCAT(s.weekday, ' ', s.start_time) ORDER BY s.weekday) FROM fulfilment_slot s"
                   "  WHERE s.option_id = o.option_id) AS times FROM fulfilment_option o WHERE o.hub_id = %s"
                   " ORDER BY o.option_id", (hub_id,))


def test_the_operator_sets_up_a_hub_and_two_producers_join_it(client, auth, db, world, operator):
    hub_id = create_hub(client, auth)
    assert db.row("SELECT name, fee, capacity, cutoff_hours FROM hub") == {
        "name": "Market Hall", "fee": pytest.approx(1.5), "capacity": 40, "cutoff_hours": 24}
    join(client, auth, hub_id, "farm@example.com")
    join(client, auth, hub_id, "dairy@example.com")
    join(client, auth, hub_id, "farm@example.com")  # twice is once
    options = hub_options(db, hub_id)
    assert [(row["producer_id"], row["name"], row["times"], row["drop_off"]) for row in options] == [
        (world.producer, "Market Hall", "5 10:00:00", "by 09:00 on the day"),
        (world.other_producer, "Market Hall", "5 10:00:00", "by 09:00 on the day")]
    db.add_to_cart(world.customer, world.product, 1)
    db.add_to_cart(world.customer, world.other_product, 1)
    auth.login_customer()
    page = client.get("/cart").get_data(as_text=True)
    assert page.count("Market Hall") >= 2, "each producer offers the hub's times"
    auth.logout()
    auth.login_operator()
    page = client.get(f"/admin/hubs/{hub_id}").get_data(as_text=True)
    assert "Hartley Farm: by 09:00 on the day" in page and "Rosehill Dairy" in page


def test_the_hub_s_times_and_place_follow_to_its_producers(client, auth, db, world, operator):
    hub_id = create_hub(client, auth)
    join(client, auth, hub_id, "farm@example.com")
    auth.login_operator()
    assert client.post(f"/admin/hubs/{hub_id}/slots", data={"weekday": "2", "start": "16:00", "end": "18:00"}
                       ).status_code == 302
    assert hub_options(db, hub_id)[0]["times"] == "2 16:00:00,5 10:00:00"
    saturday = db.value("SELECT hub_slot_id FROM hub_slot WHERE weekday = 5")
    assert client.post(f"/admin/hubs/{hub_id}/slots/{saturday}/delete").status_code == 302
    assert hub_options(db, hub_id)[0]["times"] == "2 16:00:00"
    assert client.post(f"/admin/hubs/{hub_id}", data=dict(HUB, name="Corn Exchange", cutoff_hours="48")
                       ).status_code == 302
    option = hub_options(db, hub_id)[0]
    assert (option["name"], option["cutoff_hours"]) == ("Corn Exchange", 48)


def test_a_producer_leaving_keeps_past_orders_and_cannot_edit_the_hub_s_option(client, auth, db, world, operator):
    hub_id = create_hub(client, auth)
    join(client, auth, hub_id, "farm@example.com")
    option_id = db.value("SELECT option_id FROM fulfilment_option WHERE hub_id = %s", (hub_id,))
    db.execute("UPDATE orders SET option_id = %s, fulfilment_name = 'Market Hall' WHERE order_id = %s",
               (option_id, world.order))
    auth.login_producer()
    with db.unchanged():
        for response in (client.get(f"/dashboard/fulfilment/{option_id}/edit"),
                         client.post(f"/dashboard/fulfilment/{option_id}/slots",
                                     data={"weekday": "1", "start": "09:00", "end": "10:00"}),
                         client.post(f"/dashboard/fulfilment/{option_id}/delete")):
            assert response.status_code == 409 and "the co-op sets its place and" in response.get_data(as_text=True)
    assert client.post(f"/dashboard/hubs/{hub_id}/leave").status_code == 302
    assert hub_options(db, hub_id)[0]["is_archived"] == 1
    order = db.row("SELECT option_id, fulfilment_name FROM orders WHERE order_id = %s", (world.order,))
    assert order == {"option_id": option_id, "fulfilment_name": "Market Hall"}
    assert client.get(f"/dashboard/orders/{world.order}").status_code == 200
    with db.unchanged():
        assert client.post(f"/dashboard/hubs/{hub_id}/leave").status_code == 404
    assert client.post(f"/dashboard/hubs/{hub_id}/join", data={"drop_off": "by 08:00", "payment_method": "collection"}
                       ).status_code == 302
    assert [row["is_archived"] for row in hub_options(db, hub_id)] == [1, 0], "joining again is a new place"


@pytest.mark.parametrize("changes, status, says", [
    ({"name": ""}, 400, "Name the pick-up"), ({"address": ""}, 400, "Give its address"),
    ({"fee": "-1"}, 400, "from 0"), ({"cutoff_hours": "999"}, 400, "0 to 336"), ({"capacity": "0"}, 400, "1 to 10,000"),
    ({"name": "x" * 101}, 400, "longer than 100"), ({"fee": "1.234"}, 400, "two decimals"),
])
def test_a_bad_hub_is_refused_and_changes_nothing(client, auth, db, world, operator, changes, status, says):
    auth.login_operator()
    with db.unchanged():
        response = client.post("/admin/hubs", data=dict(HUB, **changes))
        assert response.status_code == status and says in response.get_data(as_text=True)


def test_a_hub_name_is_used_once(client, auth, db, world, operator):
    create_hub(client, auth)
    auth.login_operator()
    with db.unchanged():
        response = client.post("/admin/hubs", data=HUB)
        assert response.status_code == 409 and "Another pick-up has this name" in response.get_data(as_text=True)


@pytest.mark.parametrize("bad", [{"weekday": "7", "start": "10:00", "end": "11:00"},
                                 {"weekday": "1", "start": "12:00", "end": "11:00"},
                                 {"weekday": "1", "start": "25:00", "end": "26:00"}])
def test_a_bad_hub_time_is_refused(client, auth, db, world, operator, bad):
    hub_id = create_hub(client, auth)
    auth.login_operator()
    with db.unchanged():
        assert client.post(f"/admin/hubs/{hub_id}/slots", data=bad).status_code == 400


ADMIN_ROUTES = [("get", "/admin/hubs"), ("post", "/admin/hubs"), ("get", "/admin/hubs/{hub}"),
                ("post", "/admin/hubs/{hub}"), ("post", "/admin/hubs/{hub}/slots"),
                ("post", "/admin/hubs/{hub}/slots/{slot}/delete"), ("post", "/admin/hubs/{hub}/closures"),
                ("post", "/admin/hubs/{hub}/closures/{closure}/delete")]
PRODUCER_ROUTES = [("post", "/dashboard/hubs/{hub}/join"), ("post", "/dashboard/hubs/{hub}/leave"),
                   ("get", "/dashboard/hubs/{hub}/products"), ("post", "/dashboard/hubs/{hub}/products")]


@pytest.mark.parametrize("who", ["anonymous", "customer", "producer"])
@pytest.mark.parametrize("method, path", ADMIN_ROUTES)
def test_only_the_operator_runs_hubs(client, auth, db, world, operator, who, method, path):
    hub_id = create_hub(client, auth)
    slot = db.value("SELECT hub_slot_id FROM hub_slot")
    closure = db.execute("INSERT INTO hub_closure (hub_id, start_date, end_date) VALUES (%s, '2099-06-06',"
                         " '2099-06-06')", (hub_id,))
    {"anonymous": lambda: None, "customer": auth.login_customer, "producer": auth.login_producer}[who]()
    with db.unchanged():
        response = getattr(client, method)(path.format(hub=hub_id, slot=slot, closure=closure),
                                           data=dict(HUB, start_date="2099-06-13", end_date="2099-06-13"))
        assert response.status_code == 302 and response.headers["Location"].startswith("/login/operator")


@pytest.mark.parametrize("who", ["anonymous", "customer", "operator"])
@pytest.mark.parametrize("method, path", PRODUCER_ROUTES)
def test_only_producers_join_or_leave_hubs(client, auth, db, world, operator, who, method, path):
    hub_id = create_hub(client, auth)
    {"anonymous": lambda: None, "customer": auth.login_customer, "operator": auth.login_operator}[who]()
    with db.unchanged():
        response = getattr(client, method)(path.format(hub=hub_id), data={"drop_off": "by 9", "payment_method":
                                                                          "collection"})
        assert response.status_code == 302 and response.headers["Location"].startswith("/login/producer")


def test_no_such_hub_is_404(client, auth, db, world, operator):
    auth.login_operator()
    with db.unchanged():
        assert client.get("/admin/hubs/999").status_code == 404
        assert client.post("/admin/hubs/999", data=HUB).status_code == 404
        assert client.post("/admin/hubs/999/slots", data={"weekday": "1", "start": "09:00", "end": "10:00"}
                           ).status_code == 404
        assert client.post("/admin/hubs/999/slots/1/delete").status_code == 404
    auth.logout()
    auth.login_producer()
    with db.unchanged():
        assert client.post("/dashboard/hubs/999/join", data={"drop_off": "by 9", "payment_method": "collection"}
                           ).status_code == 404


def test_a_closed_hub_cannot_be_joined(client, auth, db, world, operator):
    hub_id = create_hub(client, auth)
    db.execute("UPDATE hub SET is_active = 0")
    auth.login_producer()
    with db.unchanged():
        assert client.post(f"/dashboard/hubs/{hub_id}/join", data={"drop_off": "by 9", "payment_method": "collection"}
                           ).status_code == 404


# --- The hub's day: bags, drop lists and check-in -------------------------------------

SATURDAY = "2099-06-06"


def hub_day_orders(client, auth, db, world):
    """Jane buys from both producers and Tom from the dairy, all for the hub on a Saturday: the hub's id and
    the orders (Jane's two, then Tom's)."""
    hub_id = create_hub(client, auth)
    join(client, auth, hub_id, "farm@example.com")
    join(client, auth, hub_id, "dairy@example.com")
    options = {row["producer_id"]: row["option_id"] for row in db.rows(
        "SELECT producer_id, option_id FROM fulfilment_option WHERE hub_id = %s", (hub_id,))}
    made = [db.add_order(world.customer, [(world.product, 2, "1.80")]),
            db.add_order(world.customer, [(world.other_product, 1, "1.40")]),
            db.add_order(world.other_customer, [(world.other_product, 3, "1.40")])]
    for order_id in made:
        producer = db.value("SELECT producer_id FROM orders WHERE order_id = %s", (order_id,))
        db.execute("UPDATE orders SET option_id = %s, fulfilment_date = %s, slot_start = '10:00', slot_end = '13:00',"
                   " fulfilment_name = 'Market Hall' WHERE order_id = %s", (options[producer], SATURDAY, order_id))
    return hub_id, made


def test_the_bag_list_and_drop_lists_add_up_to_the_orders_line_for_line(client, auth, db, world, operator):
    hub_id, made = hub_day_orders(client, auth, db, world)
    auth.login_operator()
    page = client.get(f"/admin/hubs/{hub_id}/days/{SATURDAY}").get_data(as_text=True)
    assert "Bags to hand over (2)" in page and "Jane" in page and "Tom" in page
    assert "Hartley Farm (1 order)" in page and "Rosehill Dairy (2 orders)" in page
    assert "4 × litre Milk" in page, "the dairy brings Jane's 1 and Tom's 3"
    rows = client.get(f"/admin/hubs/{hub_id}/days/{SATURDAY}.csv").get_data(as_text=True).strip().splitlines()
    assert rows[0] == "customer,email,order,producer,product,quantity,status"
    lines = db.value("SELECT COUNT(*) FROM order_item WHERE order_id IN (%s, %s, %s)", tuple(made))
    assert len(rows) - 1 == lines
    assert sorted(int(row.split(",")[2]) for row in rows[1:]) == sorted(made)
    assert client.get(f"/admin/hubs/{hub_id}/days/2099-06-13").status_code == 200


def test_checking_a_basket_in_hands_over_each_of_its_orders_once(client, auth, db, world, operator):
    hub_id, made = hub_day_orders(client, auth, db, world)
    auth.login_operator()
    url = f"/admin/hubs/{hub_id}/days/{SATURDAY}/check-in"
    assert client.post(url, data={"customer_id": world.customer}).status_code == 302
    statuses = {row["order_id"]: row["status"] for row in db.rows(
        "SELECT order_id, status FROM orders WHERE order_id IN (%s, %s, %s)", tuple(made))}
    assert statuses == {made[0]: "completed", made[1]: "completed", made[2]: "pending"}
    assert db.value("SELECT COUNT(*) FROM invoice WHERE order_id IN (%s, %s)", tuple(made[:2])) == 2
    assert db.value("SELECT changed_by_role FROM order_status_history WHERE order_id = %s"
                    " ORDER BY history_id DESC LIMIT 1", (made[0],)) == "operator"
    with db.unchanged():
        response = client.post(url, data={"customer_id": world.customer})
        assert response.status_code == 409 and "Nothing of theirs was left" in response.get_data(as_text=True)
    with db.unchanged():
        assert client.post(url, data={"customer_id": "abc"}).status_code == 400
        assert client.post(f"/admin/hubs/999/days/{SATURDAY}/check-in", data={"customer_id": world.customer}
                           ).status_code == 404
        assert client.get(f"/admin/hubs/{hub_id}/days/2099-02-30").status_code == 400


@pytest.mark.parametrize("who", ["anonymous", "customer", "producer"])
def test_only_the_operator_sees_a_hub_s_day_or_checks_in(client, auth, db, world, operator, who):
    hub_id, _ = hub_day_orders(client, auth, db, world)
    {"anonymous": lambda: None, "customer": auth.login_customer, "producer": auth.login_producer}[who]()
    with db.unchanged():
        for response in (client.get(f"/admin/hubs/{hub_id}/days/{SATURDAY}"),
                         client.get(f"/admin/hubs/{hub_id}/days/{SATURDAY}.csv"),
                         client.post(f"/admin/hubs/{hub_id}/days/{SATURDAY}/check-in",
                                     data={"customer_id": world.customer})):
            assert response.status_code == 302 and response.headers["Location"].startswith("/login/operator")


def test_at_the_cutoff_each_producer_at_the_hub_is_emailed_their_list_once(app, client, auth, db, world, operator,
                                                                           clock):
    hub_id, made = hub_day_orders(client, auth, db, world)
    db.execute(f"UPDATE orders SET cutoff_hours = 24 WHERE order_id IN ({', '.join(['%s'] * len(made))})", made)
    db.execute("DELETE FROM email_outbox")
    clock(datetime.datetime(2099, 6, 5, 8, 59, tzinfo=datetime.UTC))  # 09:59 BST, a minute before the cutoff
    with app.app_context():
        jobs.close_ordering()
    assert db.value("SELECT COUNT(*) FROM email_outbox") == 0
    clock(datetime.datetime(2099, 6, 5, 9, 1, tzinfo=datetime.UTC))
    barrier = threading.Barrier(2)

    def run():
        with app.app_context():
            barrier.wait()
            jobs.close_ordering()

    workers = [threading.Thread(target=run) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    lists = db.rows("SELECT recipient, body_text FROM email_outbox WHERE dedupe_key LIKE 'packing:%%'"
                    " ORDER BY recipient")
    assert [row["recipient"] for row in lists] == ["dairy@example.com", "farm@example.com"]
    assert "Market Hall" in lists[0]["body_text"] and "4 x Milk (litre)" in lists[0]["body_text"]
    assert "Bring them to Market Hall, the co-op's pick-up, by 09:00 on the day" in lists[0]["body_text"]


def test_a_producer_s_week_says_when_to_bring_their_orders_to_the_hub(client, auth, db, world, operator):
    hub_day_orders(client, auth, db, world)
    auth.login_producer("dairy@example.com")
    page = client.get("/dashboard/schedule").get_data(as_text=True)
    assert "Bring to Market Hall by 09:00 on the day, Sat 6 Jun" in page


# --- One pick-up for a whole basket ------------------------------------------------

MONDAY_BEFORE = datetime.datetime(2099, 6, 1, 11, 0, tzinfo=datetime.UTC)
NEXT_SATURDAY = "2099-06-13"


def hub_time(db, hub_id, day=SATURDAY):
    """The checkout's value for the hub's first weekly time on day."""
    return f"{db.value('SELECT MIN(hub_slot_id) FROM hub_slot WHERE hub_id = %s', (hub_id,))}@{day}"


def basket_rows(db):
    return db.rows("SELECT o.order_id, o.producer_id, o.basket_id, o.fee, o.hub_fee, o.fulfilment_date, o.status"
                   " FROM orders o WHERE o.basket_id IS NOT NULL ORDER BY o.order_id")


@pytest.fixture
def hub_for_two(client, auth, db, world, operator, clock):
    """A hub with a £1.50 fee on Saturdays that both producers deliver to, on the Monday before SATURDAY."""
    clock(MONDAY_BEFORE)
    hub_id = create_hub(client, auth)
    join(client, auth, hub_id, "farm@example.com")
    join(client, auth, hub_id, "dairy@example.com")
    return hub_id


def basket_checkout(client, auth, db, world, hub_id, day=SATURDAY):
    db.add_to_cart(world.customer, world.product, 2)
    db.add_to_cart(world.customer, world.other_product, 1)
    auth.login_customer()
    return client.post("/checkout", data={"hub_when": hub_time(db, hub_id, day)})


def test_one_hub_time_for_the_whole_cart_makes_one_basket_of_two_orders_with_one_fee_and_one_place(
        client, auth, db, world, hub_for_two):
    db.add_to_cart(world.customer, world.product, 2)
    db.add_to_cart(world.customer, world.other_product, 1)
    auth.login_customer()
    cart = client.get("/cart").get_data(as_text=True)
    assert "One pick-up for your whole basket" in cart
    assert f'name="hub_when" value="{hub_time(db, hub_for_two)}"' in cart
    assert "For Hartley Farm, Rosehill Dairy." in cart and "fee £1.50 once for the basket" in cart
    response = client.post("/checkout", data={"hub_when": hub_time(db, hub_for_two)})
    assert response.status_code == 302, response.get_data(as_text=True)
    [basket] = db.rows("SELECT basket_id, customer_id, hub_id, basket_date, fee, is_released FROM hub_basket")
    assert basket == {"basket_id": basket["basket_id"], "customer_id": world.customer, "hub_id": hub_for_two,
                      "basket_date": datetime.date(2099, 6, 6), "fee": Decimal("1.50"), "is_released": 0}
    rows = basket_rows(db)
    assert [(row["producer_id"], row["fee"], row["hub_fee"]) for row in rows] == [
        (world.producer, Decimal("1.50"), Decimal("1.50")), (world.other_producer, Decimal("0.00"), Decimal("0.00"))]
    assert {row["basket_id"] for row in rows} == {basket["basket_id"]}
    assert db.value("SELECT booked FROM hub_booking") == 1, "one basket, one place"
    assert db.value("SELECT balance FROM ledger_account WHERE kind = 'fees'") == Decimal("1.50") + sum(
        db.value("SELECT ROUND(goods_total * coop_fee_percent / 100, 2) FROM orders WHERE order_id = %s",
                 (row["order_id"],)) for row in rows), "the hub's fee is the co-op's, not the farm's"
    assert db.value("SELECT SUM(amount) FROM ledger_leg") == 0
    page = client.get(f"/baskets/{basket['basket_id']}").get_data(as_text=True)
    assert "Your basket at Market Hall" in page and "Sat 6 Jun" in page
    assert f"Order #{rows[0]['order_id']}" in page and f"Order #{rows[1]['order_id']}" in page
    placed = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "are collected together at" in placed and "see your basket" in placed
    orders_page = client.get("/orders").get_data(as_text=True)
    assert "Your pick-up baskets" in orders_page and "2 orders collected together" in orders_page
    # More for the same pick-up joins the basket: no second fee, no second place.
    db.add_to_cart(world.customer, world.other_product, 1)
    assert client.post("/checkout", data={"hub_when": hub_time(db, hub_for_two)}).status_code == 302
    assert db.value("SELECT COUNT(*) FROM hub_basket") == 1 and db.value("SELECT booked FROM hub_booking") == 1
    assert [row["hub_fee"] for row in basket_rows(db)] == [Decimal("1.50"), 0, 0]


def test_a_cart_mixing_hub_and_other_producers_says_which_go_where(client, auth, db, world, operator, clock):
    clock(MONDAY_BEFORE)
    hub_id = create_hub(client, auth)
    join(client, auth, hub_id, "farm@example.com")
    db.add_to_cart(world.customer, world.product, 1)
    db.add_to_cart(world.customer, world.other_product, 1)
    auth.login_customer()
    cart = client.get("/cart").get_data(as_text=True)
    assert "For Hartley Farm. Not at this pick-up: Rosehill Dairy; choose its own time below." in cart
    with db.unchanged():
        response = client.post("/checkout", data={"hub_when": hub_time(db, hub_id)})
        assert response.status_code == 400
        assert "Choose when and where to get your order from Rosehill Dairy." in response.get_data(as_text=True)
    response = client.post("/checkout", data={"hub_when": hub_time(db, hub_id),
                                              f"when_{world.other_producer}": f"{world.collection[world.other_producer]}@arranged"})
    assert response.status_code == 302
    rows = db.rows("SELECT producer_id, basket_id FROM orders WHERE customer_id = %s AND status = 'pending'"
                   " AND order_id <> %s ORDER BY producer_id", (world.customer, world.order))
    assert [row["basket_id"] is not None for row in rows] == [True, False]


@pytest.mark.parametrize("bad, status", [("999@2099-06-06", 409), ("1@2099-06-07", 409), ("1@2099-13-40", 409),
                                         ("x@y", 400), ("1@2099-06-06;", 400)])
def test_a_hub_time_not_on_offer_is_refused_and_changes_nothing(client, auth, db, world, hub_for_two, bad, status):
    db.add_to_cart(world.customer, world.product, 2)
    db.add_to_cart(world.customer, world.other_product, 1)
    auth.login_customer()
    with db.unchanged():
        response = client.post("/checkout", data={"hub_when": bad})
        assert response.status_code == status
        page = response.get_data(as_text=True)
        assert "has just filled up or is no longer open" in page and (status == 409 or "Choose a pick-up time." in page)


def test_a_hub_time_for_three_baskets_takes_exactly_three_of_sixteen_at_once(app, client, auth, db, world,
                                                                            hub_for_two):
    db.execute("UPDATE hub SET capacity = 3")
    emails = [f"basket{n}@example.com" for n in range(16)]
    for n, email in enumerate(emails):
        customer = db.add_customer(email)
        db.add_to_cart(customer, db.add_product(world.producer, f"Jar {n}", quantity=5), 1)
        db.add_to_cart(customer, db.add_product(world.other_producer, f"Pot {n}", quantity=5), 1)
    results = checkout_in_threads(app, emails, len(emails), {"hub_when": hub_time(db, hub_for_two)})
    statuses = [status for status, _ in results]
    assert statuses.count(302) == 3 and statuses.count(409) == 13, statuses
    assert all("has just filled up" in page for status, page in results if status == 409)
    assert db.value("SELECT booked FROM hub_booking") == 3
    assert db.value("SELECT COUNT(*) FROM hub_basket") == 3
    assert db.value("SELECT COUNT(*) FROM orders WHERE basket_id IS NOT NULL") == 6, "two orders in each basket"
    assert db.value("SELECT SUM(5 - quantity_available) FROM stock s JOIN product p ON p.product_id = s.product_id"
                    " WHERE p.name LIKE 'Jar %%' OR p.name LIKE 'Pot %%'") == 6, "only the baskets took stock"
    auth.login_customer()
    db.add_to_cart(world.customer, world.product, 1)
    cart = client.get("/cart").get_data(as_text=True)
    assert f'value="{hub_time(db, hub_for_two)}"' not in cart, "a full hub time is not offered"


def test_moving_a_basket_moves_each_of_its_orders_and_its_place(client, auth, db, world, hub_for_two):
    assert basket_checkout(client, auth, db, world, hub_for_two).status_code == 302
    basket_id = db.value("SELECT basket_id FROM hub_basket")
    page = client.get(f"/baskets/{basket_id}").get_data(as_text=True)
    assert f'value="{hub_time(db, hub_for_two, NEXT_SATURDAY)}"' in page
    response = client.post(f"/baskets/{basket_id}/when", data={"when": hub_time(db, hub_for_two, NEXT_SATURDAY)})
    assert response.status_code == 302
    assert {row["fulfilment_date"] for row in basket_rows(db)} == {datetime.date(2099, 6, 13)}
    assert db.value("SELECT basket_date FROM hub_basket") == datetime.date(2099, 6, 13)
    assert {row["booking_date"].isoformat(): row["booked"] for row in db.rows(
        "SELECT booking_date, booked FROM hub_booking")} == {SATURDAY: 0, NEXT_SATURDAY: 1}
    assert [row["hub_fee"] for row in basket_rows(db)] == [Decimal("1.50"), 0], "the fee stays once"
    assert db.value("SELECT COUNT(*) FROM order_status_history WHERE kind = 'when'") == 2
    assert "Sat 13 Jun" in client.get(f"/baskets/{basket_id}").get_data(as_text=True)
    with db.unchanged():
        assert client.post(f"/baskets/{basket_id}/when", data={"when": "1@2099-06-20x"}).status_code == 400
        assert client.post(f"/baskets/{basket_id}/when", data={"when": "999@2099-06-20"}).status_code == 409
        order_id = basket_rows(db)[0]["order_id"]
        response = client.post(f"/orders/{order_id}/when", data={"when": f"{world.collection[world.producer]}@arranged"})
        assert response.status_code == 409 and "move the whole basket" in response.get_data(as_text=True)


def test_another_customer_s_basket_is_404_and_unchanged(client, auth, db, world, hub_for_two):
    assert basket_checkout(client, auth, db, world, hub_for_two).status_code == 302
    basket_id = db.value("SELECT basket_id FROM hub_basket")
    auth.login_customer("tom@example.com")
    with db.unchanged():
        assert client.get(f"/baskets/{basket_id}").status_code == 404
        assert client.post(f"/baskets/{basket_id}/when", data={"when": hub_time(db, hub_for_two, NEXT_SATURDAY)}
                           ).status_code == 404
        assert client.get("/baskets/99999").status_code == 404


@pytest.mark.parametrize("who", ["anonymous", "producer", "operator"])
def test_only_customers_see_or_move_baskets(client, auth, db, world, hub_for_two, who):
    assert basket_checkout(client, auth, db, world, hub_for_two).status_code == 302
    basket_id = db.value("SELECT basket_id FROM hub_basket")
    auth.logout()
    {"anonymous": lambda: None, "producer": auth.login_producer, "operator": auth.login_operator}[who]()
    with db.unchanged():
        for response in (client.get(f"/baskets/{basket_id}"),
                         client.post(f"/baskets/{basket_id}/when",
                                     data={"when": hub_time(db, hub_for_two, NEXT_SATURDAY)})):
            assert response.status_code == 302 and response.headers["Location"].startswith("/login/customer")


def test_cancelling_the_order_with_the_fee_passes_it_on_and_the_last_frees_the_place(client, auth, db, world,
                                                                                     hub_for_two):
    assert basket_checkout(client, auth, db, world, hub_for_two).status_code == 302
    first, second = basket_rows(db)
    assert client.post(f"/orders/{first['order_id']}/cancel", data={"confirm": "yes"}).status_code == 302
    first, second = basket_rows(db)
    assert (first["status"], first["hub_fee"], second["hub_fee"], second["fee"]) == (
        "cancelled", 0, Decimal("1.50"), Decimal("1.50"))
    assert db.value("SELECT booked FROM hub_booking") == 1
    assert db.value("SELECT SUM(amount) FROM ledger_leg") == 0
    assert db.value("SELECT -SUM(l.amount) FROM ledger_leg l JOIN ledger_entry e ON e.entry_id = l.entry_id"
                    " JOIN ledger_account a ON a.account_id = l.account_id WHERE e.order_id = %s"
                    " AND a.kind = 'receivable'", (second["order_id"],)) == second["fee"] + db.value(
        "SELECT goods_total FROM orders WHERE order_id = %s", (second["order_id"],)), "the customer owes it there"
    auth.login_producer("dairy@example.com")
    assert client.post("/dashboard/update-order-status", data={"order_id": second["order_id"],
                                                               "status": "cancelled"}).status_code == 302
    assert db.value("SELECT booked FROM hub_booking") == 0 and db.value("SELECT is_released FROM hub_basket") == 1


def test_a_producer_s_shortage_changes_only_their_order_and_shows_on_the_basket(client, auth, db, world,
                                                                               hub_for_two):
    assert basket_checkout(client, auth, db, world, hub_for_two).status_code == 302
    first, second = basket_rows(db)
    basket_id = first["basket_id"]
    auth.login_producer()
    before = db.row("SELECT goods_total, fee FROM orders WHERE order_id = %s", (second["order_id"],))
    assert client.post(f"/dashboard/orders/{first['order_id']}/lines/{world.product}",
                       data={"quantity": "1", "reason": "Frost"}).status_code == 302
    assert db.row("SELECT goods_total, fee FROM orders WHERE order_id = %s", (second["order_id"],)) == before
    assert db.value("SELECT hub_fee FROM orders WHERE order_id = %s", (first["order_id"],)) == Decimal("1.50")
    auth.login_customer()
    page = client.get(f"/baskets/{basket_id}").get_data(as_text=True)
    assert "Short:" in page and "Frost" in page


# --- Closed days at a hub ------------------------------------------------------------

def test_a_closed_hub_day_is_not_offered_to_anyone_there_until_opened_again(client, auth, db, world, hub_for_two):
    db.add_to_cart(world.customer, world.product, 1)
    db.add_to_cart(world.customer, world.other_product, 1)
    auth.login_operator()
    response = client.post(f"/admin/hubs/{hub_for_two}/closures",
                           data={"start_date": SATURDAY, "end_date": SATURDAY, "note": "Hall booked"})
    assert response.status_code == 302
    assert "closed: Hall booked" in client.get(f"/admin/hubs/{hub_for_two}").get_data(as_text=True)
    auth.login_customer()
    cart = client.get("/cart").get_data(as_text=True)
    assert hub_time(db, hub_for_two) not in cart and hub_time(db, hub_for_two, NEXT_SATURDAY) in cart
    with db.unchanged():
        response = client.post("/checkout", data={"hub_when": hub_time(db, hub_for_two)})
        assert response.status_code == 409 and "is no longer open" in response.get_data(as_text=True)
    auth.login_operator()
    closure = db.value("SELECT closure_id FROM hub_closure")
    assert client.post(f"/admin/hubs/{hub_for_two}/closures/{closure}/delete").status_code == 302
    auth.login_customer()
    assert hub_time(db, hub_for_two) in client.get("/cart").get_data(as_text=True)


def test_a_hub_day_with_baskets_booked_cannot_be_closed(client, auth, db, world, hub_for_two):
    assert basket_checkout(client, auth, db, world, hub_for_two).status_code == 302
    auth.login_operator()
    with db.unchanged():
        response = client.post(f"/admin/hubs/{hub_for_two}/closures",
                               data={"start_date": SATURDAY, "end_date": NEXT_SATURDAY})
        assert response.status_code == 409 and "1 basket is booked on those days" in response.get_data(as_text=True)
    assert client.post(f"/admin/hubs/{hub_for_two}/closures",
                       data={"start_date": NEXT_SATURDAY, "end_date": NEXT_SATURDAY}).status_code == 302


@pytest.mark.parametrize("bad", [{"start_date": "2099-06-13", "end_date": "2099-06-06"},
                                 {"start_date": "2099-02-30", "end_date": "2099-03-01"},
                                 {"start_date": "2098-01-01", "end_date": "2098-01-02"},
                                 {"start_date": "", "end_date": "2099-06-06"},
                                 {"start_date": "2099-06-06", "end_date": "2099-06-06", "note": "x" * 201}])
def test_bad_closed_days_are_refused_and_change_nothing(client, auth, db, world, hub_for_two, bad):
    auth.login_operator()
    with db.unchanged():
        assert client.post(f"/admin/hubs/{hub_for_two}/closures", data=bad).status_code == 400


def test_closing_or_opening_a_hub_that_is_not_there_is_404(client, auth, db, world, hub_for_two):
    auth.login_operator()
    with db.unchanged():
        assert client.post("/admin/hubs/999/closures", data={"start_date": SATURDAY, "end_date": SATURDAY}
                           ).status_code == 404
        assert client.post(f"/admin/hubs/{hub_for_two}/closures/999/delete").status_code == 404


# --- Which products a producer brings to a hub ------------------------------------------

def test_a_producer_chooses_what_they_bring_and_a_cart_with_anything_else_collects_elsewhere(
        client, auth, db, world, hub_for_two):
    leeks = db.add_product(world.producer, "Leeks", quantity=10)
    auth.login_producer()
    page = client.get(f"/dashboard/hubs/{hub_for_two}/products").get_data(as_text=True)
    assert page.count('type="checkbox" name="offered"') == db.value(
        "SELECT COUNT(*) FROM product WHERE producer_id = %s AND is_archived = 0", (world.producer,))
    assert page.count(" checked>") == page.count('type="checkbox"'), "all are offered until they say"
    response = client.post(f"/dashboard/hubs/{hub_for_two}/products", data={"offered": [str(leeks)]})
    assert response.status_code == 302
    option = db.value("SELECT option_id FROM fulfilment_option WHERE hub_id = %s AND producer_id = %s",
                      (hub_for_two, world.producer))
    assert db.value("SELECT COUNT(*) FROM hub_product_exclusion WHERE option_id = %s AND product_id = %s",
                    (option, world.product)) == 1
    assert db.value("SELECT COUNT(*) FROM hub_product_exclusion WHERE product_id = %s", (leeks,)) == 0
    db.add_to_cart(world.customer, world.product, 1)
    db.add_to_cart(world.customer, world.other_product, 1)
    auth.login_customer()
    cart = client.get("/cart").get_data(as_text=True)
    assert "For Rosehill Dairy. Not at this pick-up: Hartley Farm" in cart
    assert "Not at Market Hall: Potatoes is not brought there." in cart
    with db.unchanged():
        response = client.post("/checkout", data={"hub_when": hub_time(db, hub_for_two),
                                                  f"when_{world.producer}": f"{db.value('SELECT slot_id FROM fulfilment_slot WHERE option_id = %s', (option,))}@{SATURDAY}"})
        assert response.status_code == 409, "the farm's hub time is not open to a cart with potatoes"
    db.execute("DELETE FROM cart_item WHERE product_id = %s", (world.product,))
    db.add_to_cart(world.customer, leeks, 1)
    cart = client.get("/cart").get_data(as_text=True)
    assert "For Hartley Farm, Rosehill Dairy." in cart
    assert client.post("/checkout", data={"hub_when": hub_time(db, hub_for_two)}).status_code == 302
    farm_order = db.value("SELECT order_id FROM orders WHERE basket_id IS NOT NULL AND producer_id = %s",
                          (world.producer,))
    with db.unchanged():
        response = client.post(f"/orders/{farm_order}/add", data={"product_id": world.product, "quantity": "1"})
        assert response.status_code == 409 and "does not bring Potatoes to Market Hall" in response.get_data(as_text=True)


def test_products_at_a_hub_take_only_the_producer_s_own_ids(client, auth, db, world, hub_for_two):
    auth.login_producer()
    with db.unchanged():
        assert client.post(f"/dashboard/hubs/{hub_for_two}/products",
                           data={"offered": [str(world.other_product)]}).status_code == 400
        assert client.post(f"/dashboard/hubs/{hub_for_two}/products", data={"offered": ["abc"]}).status_code == 400
        assert client.get("/dashboard/hubs/999/products").status_code == 404
        assert client.post("/dashboard/hubs/999/products", data={"offered": [str(world.product)]}).status_code == 404
    auth.login_producer("dairy@example.com")
    assert client.post(f"/dashboard/hubs/{hub_for_two}/leave").status_code == 302
    with db.unchanged():
        assert client.get(f"/dashboard/hubs/{hub_for_two}/products").status_code == 404


HUB_CHANGES = {
    "closed": lambda db, hub_id: db.execute(
        "INSERT INTO hub_closure (hub_id, start_date, end_date, note) VALUES (%s, %s, %s, 'Hall booked')",
        (hub_id, SATURDAY, SATURDAY)),
    "filled": lambda db, hub_id: [
        db.execute("UPDATE hub SET capacity = 1 WHERE hub_id = %s", (hub_id,)),
        db.execute("INSERT INTO hub_booking (hub_slot_id, booking_date, booked) SELECT MIN(hub_slot_id), %s, 1"
                   " FROM hub_slot WHERE hub_id = %s", (SATURDAY, hub_id))],
}


@pytest.mark.parametrize("change", HUB_CHANGES)
def test_a_hub_time_closed_or_filled_leaves_the_cached_pages_at_once(client, db, world, hub_for_two, change):
    """Hub closures and bookings change what the catalogue's pages offer: they raise its version as the
    producers' own closures and bookings do, so no cached page offers the time after."""
    path = f"/producers/{world.producer}"
    with client.session_transaction() as session:
        session.clear()  # a visitor, who gets the cached page
    client.get(path)
    page = client.get(path)
    assert page.headers["X-Page-Cache"] == "hit" and "Sat 6 Jun 2099" in page.get_data(as_text=True)
    HUB_CHANGES[change](db, hub_for_two)
    page = client.get(path)
    assert page.headers["X-Page-Cache"] == "miss"
    assert "Sat 6 Jun 2099" not in page.get_data(as_text=True), page.get_data(as_text=True)
