"""Where, when and how customers get their food: slots, cutoffs, closures, postcodes, fees, minimums,
capacity, order snapshots, cancelling, the producer's week, packing lists, payment, and the pages."""
import csv
import datetime
import io
import re
from decimal import Decimal

import pytest
from PIL import Image

import app as app_module
import db as database
import fulfilment
from conftest import PASSWORD, checkout_in_threads, make_database, migrate_before

UTC = datetime.timezone.utc
SATURDAY = datetime.date(2026, 12, 5)
SATURDAY_CUTOFF = datetime.datetime(2026, 12, 4, 9, 0, tzinfo=UTC)  # 24 hours before 09:00 GMT on the Saturday
OPTION = {"kind": "delivery", "name": "Bristol van", "postcodes": "BS1, BS2", "fee": "3.50", "minimum_order": "15",
          "free_over": "40", "cutoff_hours": "24", "capacity": "20", "is_active": "y"}


def order_of(db, customer_id):
    return db.row("SELECT * FROM orders WHERE customer_id = %s ORDER BY order_id DESC LIMIT 1", (customer_id,))


def key(slot, day):
    return f"{slot}@{day.isoformat()}"


# --- The slot rules -----------------------------------------------------------

@pytest.mark.parametrize("seconds, open_", [(-1, True), (1, False)])
def test_ordering_closes_at_the_cutoff_to_the_second(client, auth, db, world, clock, gate, seconds, open_):
    clock(SATURDAY_CUTOFF + datetime.timedelta(seconds=seconds))
    db.add_to_cart(world.customer, world.product, 2)
    auth.login_customer()
    assert (f'value="{key(gate, SATURDAY)}"' in client.get("/cart").get_data(as_text=True)) is open_
    before = db.snapshot()
    response = client.post("/checkout", data={f"when_{world.producer}": key(gate, SATURDAY)})
    if open_:
        assert response.status_code == 302
        order = order_of(db, world.customer)
        assert (order["fulfilment_date"], order["slot_id"], order["cutoff_hours"]) == (SATURDAY, gate, 24)
        assert str(order["slot_start"]) == "9:00:00" and str(order["slot_end"]) == "12:00:00"
        assert db.value("SELECT booked FROM slot_booking WHERE slot_id = %s", (gate,)) == 1
    else:
        assert response.status_code == 409
        assert "no longer open" in response.get_data(as_text=True)
        assert db.snapshot() == before


def test_no_slot_is_offered_on_a_closed_date(client, auth, db, world, clock, gate):
    clock(datetime.datetime(2026, 11, 30, 12, 0, tzinfo=UTC))
    db.execute("INSERT INTO producer_closure (producer_id, start_date, end_date) VALUES (%s, %s, %s)",
               (world.producer, SATURDAY, SATURDAY + datetime.timedelta(days=1)))
    db.add_to_cart(world.customer, world.product, 1)
    auth.login_customer()
    cart = client.get("/cart").get_data(as_text=True)
    next_saturday = SATURDAY + datetime.timedelta(days=7)
    assert f'value="{key(gate, SATURDAY)}"' not in cart and f'value="{key(gate, next_saturday)}"' in cart
    with db.unchanged():
        assert client.post("/checkout", data={f"when_{world.producer}": key(gate, SATURDAY)}).status_code == 409


def test_occurrences_cover_the_next_fourteen_days_in_time_order(app, db, world, clock, gate):
    db.add_slot(world.collection[world.producer], 2, "15:00", "18:00")
    with app.app_context():
        offers = app_module.load_offers([world.producer], now=datetime.datetime(2026, 11, 30, 12, tzinfo=UTC))
        dated = [(o.day.isoformat(), o.when[-9:]) for o in offers[world.producer].occurrences if o.slot]
    assert dated == [("2026-12-02", "18:00 GMT"), ("2026-12-05", "12:00 GMT"), ("2026-12-09", "18:00 GMT"),
                     ("2026-12-12", "12:00 GMT")]
    assert [o.key for o in offers[world.producer].occurrences if not o.slot] == [
        f"{world.delivery[world.producer]}@arranged"], "the slotless delivery option, by arrangement, comes last"


def test_an_inactive_option_and_an_archived_one_are_not_offered(app, db, world, clock, gate):
    clock(datetime.datetime(2026, 11, 30, 12, 0, tzinfo=UTC))
    db.execute("UPDATE fulfilment_option SET is_active = 0 WHERE option_id = %s", (world.collection[world.producer],))
    db.execute("UPDATE fulfilment_option SET is_archived = 1 WHERE option_id = %s", (world.delivery[world.producer],))
    with app.app_context():
        offer = app_module.load_offers([world.producer])[world.producer]
    assert offer.occurrences == [] and not offer.taking_orders


@pytest.mark.parametrize("seconds, open_", [(-1, True), (1, False)])
def test_a_slot_on_the_day_the_clocks_go_forward(client, auth, db, world, clock, seconds, open_):
    """Sunday 28 March 2027: 09:00 is summer time (08:00 UTC), so a 24-hour cutoff falls at 08:00 GMT on the Saturday."""
    sunday = datetime.date(2027, 3, 28)
    slot = db.add_slot(world.collection[world.producer], 6, "09:00", "12:00")
    clock(datetime.datetime(2027, 3, 27, 8, 0, tzinfo=UTC) + datetime.timedelta(seconds=seconds))
    db.add_to_cart(world.customer, world.product, 1)
    auth.login_customer()
    cart = client.get("/cart").get_data(as_text=True)
    assert ("Sun 28 Mar 2027, 09:00–12:00 BST" in cart) is open_
    assert "Sun 4 Apr 2027, 09:00–12:00 BST" in cart
    response = client.post("/checkout", data={f"when_{world.producer}": key(slot, sunday)})
    assert response.status_code == (302 if open_ else 409)
    if open_:
        assert order_of(db, world.customer)["fulfilment_date"] == sunday
        page = client.get(response.headers["Location"]).get_data(as_text=True)
        assert "Sun 28 Mar 2027, 09:00–12:00 BST" in page and "Sat 27 Mar 2027, 08:00 GMT" in page


def test_times_show_the_zone_in_force_on_their_own_day(client, auth, db, world, clock):
    db.add_slot(world.collection[world.producer], 6, "09:00", "12:00")
    clock(datetime.datetime(2027, 3, 19, 12, 0, tzinfo=UTC))
    db.add_to_cart(world.customer, world.product, 1)
    auth.login_customer()
    cart = client.get("/cart").get_data(as_text=True)
    assert "Sun 21 Mar 2027, 09:00–12:00 GMT" in cart and "Sun 28 Mar 2027, 09:00–12:00 BST" in cart


@pytest.mark.parametrize("postcode, served", [
    ("BS1 4DJ", True), ("bs14dj", True), ("  Bs1   4dj ", True), ("BS2 9ZZ", True), ("BA2 3QD", True),
    ("BA14 8AA", True), ("BS10 5AA", False), ("B1 1AA", False), ("SW1A 1AA", False), ("BS1", False), ("", False),
    ("BS1 4", False), ("BS10", False), ("BS10 5A", False), ("BS1ZZZZ", False), ("BS1 4DJX", False),
])
def test_postcodes_match_whole_areas_without_regard_to_case_or_spaces(postcode, served):
    assert fulfilment.postcode_served(postcode, ["BS1", "BS2", "BA"]) is served


@pytest.mark.parametrize("postcode", ["BS10", "BS10 5A", "BS1ZZZZ", "BS1 4DJX", "BS8"])
def test_partial_or_made_up_postcodes_are_refused_by_a_bs1_to_bs8_zone(postcode):
    zone = fulfilment.parse_postcodes("BS1, BS2, BS3, BS4, BS5, BS6, BS7, BS8")
    assert fulfilment.postcode_served(postcode, zone) is False
    assert fulfilment.postcode_served("BS8 1TH", zone) and fulfilment.postcode_served("bs3 4aa", zone)


@pytest.mark.parametrize("postcode", ["BS10", "BS10 5A", "BS1ZZZZ"])
def test_checkout_asks_for_the_full_postcode(client, auth, db, world, postcode):
    db.add_to_cart(world.customer, world.product, 1)
    auth.login_customer()
    with db.unchanged():
        response = client.post("/checkout", data=delivery_checkout(world, postcode=postcode))
        assert response.status_code == 400
        assert "Enter the full postcode of the delivery address, like BS1 4DJ." in response.get_data(as_text=True)


def test_postcode_areas_are_summarised_as_ranges():
    assert fulfilment.postcodes_summary(["BS1", "BS2", "BS3", "BS4", "BS5", "BS6", "BS7", "BS8"]) == "BS1–BS8"
    assert fulfilment.postcodes_summary(["BS1", "BS2", "BA", "BS9", "BS10", "BS11"]) == "BS1, BS2, BA, BS9–BS11"
    assert fulfilment.parse_postcodes("bs1, BS 2,,bs1, ba") == ["BS1", "BS2", "BA"]
    with pytest.raises(ValueError, match="not a postcode area"):
        fulfilment.parse_postcodes("BS1, <script>")


def delivery_checkout(world, **details):
    return dict({f"when_{world.producer}": f"{world.delivery[world.producer]}@arranged",
                 "delivery_address": "12 Orchard Row", "postcode": "BS1 4DJ", "phone": "07700 900456"}, **details)


def test_a_postcode_outside_the_delivery_areas_is_refused_naming_them(client, auth, db, world):
    db.add_to_cart(world.customer, world.product, 1)
    auth.login_customer()
    with db.unchanged():
        response = client.post("/checkout", data=delivery_checkout(world, postcode="BS10 5AA"))
        assert response.status_code == 400
        page = response.get_data(as_text=True)
        assert "Hartley Farm delivers to BS1, BS2, BA only, and BS10 5AA is outside those areas." in page
    assert client.post("/checkout", data=delivery_checkout(world, postcode=" bs1 4dj ")).status_code == 302
    order = order_of(db, world.customer)
    assert (order["order_type"], order["postcode"], order["phone"], order["delivery_address"]) == (
        "delivery", "BS1 4DJ", "07700 900456", "12 Orchard Row")


@pytest.mark.parametrize("quantity, fee", [(20, "0.00"), (19, "3.50")])
def test_the_fee_is_waived_exactly_at_free_over(client, auth, db, world, quantity, fee):
    db.execute("UPDATE fulfilment_option SET fee = 3.50, free_over = 40.00 WHERE option_id = %s",
               (world.delivery[world.producer],))
    flour = db.add_product(world.producer, "Flour", "2.00", quantity=100)
    db.add_to_cart(world.customer, flour, quantity)
    auth.login_customer()
    assert client.post("/checkout", data=delivery_checkout(world)).status_code == 302
    order = order_of(db, world.customer)
    assert order["fee"] == Decimal(fee) and order["goods_total"] == Decimal(quantity * 2)
    page = client.get(f"/orders/{order['order_id']}").get_data(as_text=True)
    assert f'order-total">£{quantity * 2 + Decimal(fee):.2f}<' in page
    assert f"£{quantity * 2 + Decimal(fee):.2f}" in client.get("/orders").get_data(as_text=True)


def test_a_group_below_its_minimum_blocks_checkout_and_keeps_the_cart(client, auth, db, world):
    db.execute("UPDATE fulfilment_option SET minimum_order = 15.00 WHERE option_id = %s",
               (world.delivery[world.producer],))
    db.add_to_cart(world.customer, world.product, 2)
    db.add_to_cart(world.customer, world.other_product, 1)
    auth.login_customer()
    with db.unchanged():
        data = delivery_checkout(world, **{f"when_{world.other_producer}": f"{world.collection[world.other_producer]}@arranged"})
        response = client.post("/checkout", data=data)
        assert response.status_code == 409
        page = response.get_data(as_text=True)
        assert "Add £11.40 more from Hartley Farm for Van." in page and "Nothing was ordered" in page


def test_a_producer_not_taking_orders_stays_in_the_cart_while_the_rest_is_ordered(client, auth, db, world):
    db.execute("UPDATE fulfilment_option SET is_active = 0 WHERE producer_id = %s", (world.producer,))
    db.add_to_cart(world.customer, world.product, 1)
    db.add_to_cart(world.customer, world.other_product, 2)
    auth.login_customer()
    cart = client.get("/cart").get_data(as_text=True)
    assert "Hartley Farm is not taking orders yet" in cart and f'name="when_{world.producer}"' not in cart
    assert "Not taking orders yet" in client.get(f"/products/{world.product}").get_data(as_text=True)
    dairy = {f"when_{world.other_producer}": f"{world.collection[world.other_producer]}@arranged"}
    response = client.post("/checkout", data=dairy)
    assert response.status_code == 302
    assert order_of(db, world.customer)["producer_id"] == world.other_producer
    assert db.cart(world.customer) == {world.product: 1}, "the farm's line waits in the cart"
    assert db.stock(world.product) == 50
    only_farm = client.post("/checkout", data={})
    assert only_farm.status_code == 409 and "not taking orders" in only_farm.get_data(as_text=True)
    stale = client.post("/checkout", data=world.choose())
    assert stale.status_code == 409 and "The time you chose for Hartley Farm is no longer open" in stale.get_data(
        as_text=True)
    assert db.cart(world.customer) == {world.product: 1}


def test_one_occurrence_is_preselected_and_several_are_not(client, auth, db, world):
    db.execute("DELETE FROM fulfilment_option WHERE option_id = %s", (world.delivery[world.producer],))
    db.add_to_cart(world.customer, world.product, 1)
    db.add_to_cart(world.customer, world.other_product, 1)
    auth.login_customer()
    cart = client.get("/cart").get_data(as_text=True)
    checked = re.findall(r'name="(when_\d+)" value="([^"]+)"\s+checked', cart)
    assert checked == [(f"when_{world.producer}", f"{world.collection[world.producer]}@arranged")]


def test_capacity_holds_under_concurrent_checkouts(app, db, world):
    with app.app_context():
        day = fulfilment.local_today() + datetime.timedelta(days=3)
    option = world.collection[world.producer]
    db.execute("UPDATE fulfilment_option SET capacity = 3, cutoff_hours = 1 WHERE option_id = %s", (option,))
    slot = db.add_slot(option, day.weekday(), "10:00", "12:00")
    emails = [f"buyer{n}@example.com" for n in range(16)]
    for n, email in enumerate(emails):
        # Each buys a product of their own, so nothing but the slot's booking row makes them wait for each other.
        db.add_to_cart(db.add_customer(email), db.add_product(world.producer, f"Jar {n}", quantity=5), 1)
    results = checkout_in_threads(app, emails, len(emails), {f"when_{world.producer}": key(slot, day)})
    statuses = [status for status, _ in results]
    assert statuses.count(302) == 3 and statuses.count(409) == 13
    assert all("has just filled up" in page or "no longer open" in page for status, page in results if status == 409)
    assert db.value("SELECT COUNT(*) FROM orders WHERE slot_id = %s AND fulfilment_date = %s", (slot, day)) == 3
    assert db.value("SELECT booked FROM slot_booking WHERE slot_id = %s AND slot_date = %s", (slot, day)) == 3
    assert db.value("SELECT SUM(5 - quantity_available) FROM stock s JOIN product p ON p.product_id = s.product_id"
                    " WHERE p.name LIKE 'Jar %%'") == 3, "only the three orders took stock"


def test_an_order_keeps_what_it_was_promised_when_the_option_changes(client, auth, db, world, clock, gate):
    clock(datetime.datetime(2026, 12, 1, 12, 0, tzinfo=UTC))
    db.add_to_cart(world.customer, world.product, 2)
    auth.login_customer()
    client.post("/checkout", data={f"when_{world.producer}": key(gate, SATURDAY)})
    snapshot = "fulfilment_name, fulfilment_address, fulfilment_instructions, fulfilment_date, slot_start, slot_end, fee"
    order_id = order_of(db, world.customer)["order_id"]
    promised = db.row(f"SELECT {snapshot} FROM orders WHERE order_id = %s", (order_id,))
    assert promised["fulfilment_name"] == "Gate" and promised["fulfilment_date"] == SATURDAY
    auth.login_producer()
    option = world.collection[world.producer]
    assert client.post(f"/dashboard/fulfilment/{option}/edit", data={
        "kind": "collection", "name": "New barn", "address": "9 Other Lane", "instructions": "Go round the back",
        "fee": "2.00", "minimum_order": "0", "cutoff_hours": "48", "is_active": "y"}).status_code == 302
    assert client.post(f"/dashboard/fulfilment/{option}/slots/{gate}/delete").status_code == 302
    assert db.row(f"SELECT {snapshot} FROM orders WHERE order_id = %s", (order_id,)) == promised
    page = client.get(f"/dashboard/orders/{order_id}").get_data(as_text=True)
    facts = re.search(r'<dl class="order-facts">.*?</dl>', page, re.S).group(0)
    assert "Gate" in facts and "1 Farm Lane" in facts and "Sat 5 Dec 2026, 09:00–12:00 GMT" in facts
    assert "New barn" not in facts and "9 Other Lane" not in facts


def test_a_customer_cannot_cancel_after_the_cutoff_but_the_producer_can(client, auth, db, world, clock, gate):
    db.execute("UPDATE producer SET phone = '01275 555 014', public_email = 'gate@farm.example' WHERE producer_id = %s",
               (world.producer,))
    clock(SATURDAY_CUTOFF - datetime.timedelta(hours=2))
    db.add_to_cart(world.customer, world.product, 2)
    auth.login_customer()
    client.post("/checkout", data={f"when_{world.producer}": key(gate, SATURDAY)})
    order_id = order_of(db, world.customer)["order_id"]
    assert "Cancel this order" in client.get(f"/orders/{order_id}").get_data(as_text=True)

    clock(SATURDAY_CUTOFF + datetime.timedelta(seconds=1))
    page = client.get(f"/orders/{order_id}").get_data(as_text=True)
    assert "Cancel this order" not in page
    assert "closed at Fri 4 Dec 2026, 09:00 GMT" in page and "01275 555 014" in page and "gate@farm.example" in page
    with db.unchanged():
        response = client.post(f"/orders/{order_id}/cancel")
        assert response.status_code == 409 and "can no longer be cancelled" in response.get_data(as_text=True)

    auth.login_producer()
    client.post("/dashboard/update-order-status", data={"order_id": order_id, "status": "cancelled"})
    client.post("/dashboard/update-order-status", data={"order_id": order_id, "status": "cancelled"})
    assert db.value("SELECT status FROM orders WHERE order_id = %s", (order_id,)) == "cancelled"
    assert db.stock(world.product) == 50, "restocked exactly once"
    assert db.value("SELECT booked FROM slot_booking WHERE slot_id = %s", (gate,)) == 0, "its place is free again"


def test_an_order_by_arrangement_says_the_producer_will_be_in_touch(client, auth, db, world):
    db.add_to_cart(world.customer, world.product, 1)
    auth.login_customer()
    client.post("/checkout", data=world.choose())
    page = client.get(f"/orders/{order_of(db, world.customer)['order_id']}").get_data(as_text=True)
    assert "By arrangement: Hartley Farm will be in touch to agree a time." in page
    assert order_of(db, world.customer)["fulfilment_date"] is None
    assert "Cancel this order" in page, "with no cutoff it can be cancelled while pending"


# --- The producer's week --------------------------------------------------------

@pytest.fixture
def saturday_orders(app, db, world, clock, gate):
    """Three orders for Saturday's farm gate: Jane's, Tom's, and one of Jane's that is then cancelled."""
    clock(datetime.datetime(2026, 12, 1, 12, 0, tzinfo=UTC))
    ids = []
    for email, customer, lines in [("jane@example.com", world.customer, [(world.product, 2), (world.low_product, 1)]),
                                   ("tom@example.com", world.other_customer, [(world.product, 3)]),
                                   ("jane@example.com", world.customer, [(world.product, 5)])]:
        for product, quantity in lines:
            db.add_to_cart(customer, product, quantity)
        shopper = app.test_client()
        shopper.post("/login/customer", data={"email": email, "password": PASSWORD})
        assert shopper.post("/checkout", data={f"when_{world.producer}": key(gate, SATURDAY),
                                               "phone": "07700 900111"}).status_code == 302
        ids.append(order_of(db, customer)["order_id"])
    db.execute("UPDATE orders SET status = 'cancelled' WHERE order_id = %s", (ids[2],))
    return ids


def test_the_schedule_lists_occurrences_with_orders(client, auth, db, world, saturday_orders):
    auth.login_producer()
    page = client.get("/dashboard/schedule").get_data(as_text=True)
    row = re.search(r'<tr>\s*<th scope="row"><a href="/dashboard/schedule/2026-12-05">Sat 5 Dec 2026</a></th>(.*?)</tr>',
                    page, re.S).group(1)
    assert "09:00–12:00" in row and "Gate" in row and ">2</td>" in row and "£10.10" in row


def test_the_packing_list_adds_up_the_days_orders(client, auth, db, world, saturday_orders):
    jane, tom, cancelled = saturday_orders
    auth.login_producer()
    page = client.get("/dashboard/schedule/2026-12-05").get_data(as_text=True)
    picks = dict(re.findall(r'<tr><th scope="row">([^<]+)</th><td class="pick-quantity">(\d+) ×', page))
    assert picks == {"Kale": "1", "Potatoes": "5"}, "the cancelled order's 5 potatoes are left out"
    assert f'id="packing-{jane}"' in page and f'id="packing-{tom}"' in page and f'id="packing-{cancelled}"' not in page
    assert "jane@example.com" in page and "tom@example.com" in page and "07700 900111" in page
    assert "1 cancelled order left out" in page
    rows = list(csv.reader(io.StringIO(client.get("/dashboard/schedule/2026-12-05.csv").get_data(as_text=True))))
    assert [(r[10], r[11]) for r in rows[1:] if r[0] == "pick list"] == [("Kale", "1"), ("Potatoes", "5")]
    assert sorted((r[4], r[10], r[11]) for r in rows[1:] if r[0] == "order") == sorted([
        (str(jane), "Kale", "1"), (str(jane), "Potatoes", "2"), (str(tom), "Potatoes", "3")])


def test_the_packing_list_csv_neutralises_formulas(client, auth, db, world, saturday_orders):
    db.execute("UPDATE customer SET first_name = '=cmd|calc' WHERE customer_id = %s", (world.customer,))
    auth.login_producer()
    rows = list(csv.reader(io.StringIO(client.get("/dashboard/schedule/2026-12-05.csv").get_data(as_text=True))))
    assert {r[5] for r in rows[1:] if r[0] == "order" and r[5].startswith("'")} == {"'=cmd|calc"}


@pytest.mark.parametrize("day, status", [("2026-12-06", 404), ("12-05-2026", 404), ("2026-02-30", 400),
                                         ("9999-12-31", 400), ("0001-01-01", 400)])
def test_a_day_without_the_producers_orders_is_404_and_no_real_day_400(client, auth, db, world, saturday_orders,
                                                                        day, status):
    auth.login_producer("dairy@example.com")
    assert client.get("/dashboard/schedule/2026-12-05").status_code == 404, "the farm's day is not the dairy's"
    assert client.get(f"/dashboard/schedule/{day}").status_code == status
    assert client.get(f"/dashboard/schedule/{day}.csv").status_code == status


def test_paid_and_unpaid_are_recorded_with_who_did_it(client, auth, db, world):
    db.execute("UPDATE orders SET status = 'completed', fee = 1.50 WHERE order_id = %s", (world.order,))
    auth.login_producer()
    assert "£5.10" in client.get("/dashboard").get_data(as_text=True), "2 × £1.80 + £1.50 fee, still to be paid"
    response = client.post(f"/dashboard/orders/{world.order}/paid", data={"paid": "1"})
    assert response.status_code == 302
    row = db.row("SELECT payment_status, paid_at, paid_by_id FROM orders WHERE order_id = %s", (world.order,))
    assert row["payment_status"] == "paid" and row["paid_at"] is not None and row["paid_by_id"] == world.producer
    assert 'id="unpaid-total">£0.00<' in client.get("/dashboard").get_data(as_text=True)
    client.post(f"/dashboard/orders/{world.order}/paid", data={"paid": "0"})
    row = db.row("SELECT payment_status, paid_at, paid_by_id FROM orders WHERE order_id = %s", (world.order,))
    assert row == {"payment_status": "unpaid", "paid_at": None, "paid_by_id": None}
    history = db.rows("SELECT kind, from_status, to_status, changed_by_role FROM order_status_history"
                      " WHERE order_id = %s AND kind = 'payment' ORDER BY history_id", (world.order,))
    assert [(h["from_status"], h["to_status"]) for h in history] == [("unpaid", "paid"), ("paid", "unpaid")]
    assert "Marked paid" in client.get(f"/dashboard/orders/{world.order}").get_data(as_text=True)
    auth.login_customer()
    assert "Marked not paid" in client.get(f"/orders/{world.order}").get_data(as_text=True)


@pytest.mark.parametrize("data", [{"paid": "2"}, {"paid": ""}, {}, {"paid": "yes"}])
def test_a_bad_paid_value_is_400_and_changes_nothing(client, auth, db, world, data):
    auth.login_producer()
    with db.unchanged():
        assert client.post(f"/dashboard/orders/{world.order}/paid", data=data).status_code == 400


def test_a_cancelled_order_is_never_paid(client, auth, db, world):
    db.execute("UPDATE orders SET status = 'cancelled' WHERE order_id = %s", (world.order,))
    auth.login_producer()
    with db.unchanged():
        response = client.post(f"/dashboard/orders/{world.order}/paid", data={"paid": "1"})
        assert response.status_code == 409 and "nothing to pay" in response.get_data(as_text=True)


def test_a_customer_cannot_mark_an_order_paid(client, auth, db, world):
    auth.login_customer()
    with db.unchanged():
        response = client.post(f"/dashboard/orders/{world.order}/paid", data={"paid": "1"})
        assert response.status_code == 302 and response.headers["Location"].startswith("/login/producer")


# --- The producer's settings ---------------------------------------------------------

def test_a_producer_sets_up_an_option_with_a_slot_and_closes_a_day(client, auth, db, world, clock):
    clock(datetime.datetime(2026, 11, 30, 12, 0, tzinfo=UTC))
    db.execute("DELETE FROM fulfilment_option")
    auth.login_producer()
    assert "Customers cannot order from you yet" in client.get("/dashboard").get_data(as_text=True)
    response = client.post("/dashboard/fulfilment/new", data=OPTION)
    assert response.status_code == 302
    option = db.row("SELECT * FROM fulfilment_option WHERE producer_id = %s", (world.producer,))
    assert response.headers["Location"] == f"/dashboard/fulfilment/{option['option_id']}/edit"
    assert (option["kind"], option["postcodes"], option["fee"], option["minimum_order"], option["free_over"],
            option["capacity"], option["address"]) == ("delivery", "BS1, BS2", Decimal("3.50"), Decimal("15.00"),
                                                       Decimal("40.00"), 20, None)
    assert client.post(f"/dashboard/fulfilment/{option['option_id']}/slots",
                       data={"weekday": "3", "start": "16:00", "end": "19:00"}).status_code == 302
    slot = db.row("SELECT weekday, start_time, end_time FROM fulfilment_slot WHERE option_id = %s",
                  (option["option_id"],))
    assert (slot["weekday"], str(slot["start_time"]), str(slot["end_time"])) == (3, "16:00:00", "19:00:00")
    assert client.post("/dashboard/closures", data={"start_date": "2026-12-03", "end_date": "2026-12-03",
                                                    "note": "Away"}).status_code == 302
    assert db.value("SELECT COUNT(*) FROM producer_closure WHERE producer_id = %s", (world.producer,)) == 1
    page = client.get("/dashboard/fulfilment").get_data(as_text=True)
    assert "Delivery to BS1, BS2, Thu, £3.50" in page and "Thu 10 Dec 2026, 16:00–19:00 GMT" in page
    assert "Thu 3 Dec 2026, 16:00" not in page, "the closed Thursday is skipped"
    assert "Customers cannot order from you yet" not in client.get("/dashboard").get_data(as_text=True)


def test_an_option_no_order_used_is_deleted_and_a_used_one_archived(client, auth, db, world):
    auth.login_producer()
    unused, used = world.collection[world.producer], world.delivery[world.producer]
    db.execute("UPDATE orders SET option_id = %s WHERE order_id = %s", (used, world.order))
    assert client.post(f"/dashboard/fulfilment/{unused}/delete").status_code == 302
    assert client.post(f"/dashboard/fulfilment/{used}/delete").status_code == 302
    assert db.value("SELECT COUNT(*) FROM fulfilment_option WHERE option_id = %s", (unused,)) == 0
    assert db.row("SELECT is_archived, is_active FROM fulfilment_option WHERE option_id = %s", (used,)) == {
        "is_archived": 1, "is_active": 0}
    assert client.get(f"/dashboard/fulfilment/{used}/edit").status_code == 404
    assert "Not taking orders yet" in client.get(f"/producers/{world.producer}").get_data(as_text=True)


BAD_SETTINGS = [
    ("slot", {"weekday": "5", "start": "25:00", "end": "26:00"}, "Enter a time as HH:MM, from 00:00 to 23:59."),
    ("slot", {"weekday": "5", "start": "12:00", "end": "09:00"}, "The end must be after the start"),
    ("slot", {"weekday": "5", "start": "12:00", "end": "12:00"}, "The end must be after the start"),
    ("slot", {"weekday": "7", "start": "09:00", "end": "12:00"}, "Choose a day from Monday (0) to Sunday (6)."),
    ("slot", {"weekday": "-1", "start": "09:00", "end": "12:00"}, "Choose a day from Monday (0) to Sunday (6)."),
    ("slot", {"weekday": "5", "start": "9am", "end": "12:00"}, "Enter a time as HH:MM"),
    ("new", dict(OPTION, fee="-1"), "Enter an amount from 0.00 to 999.99."),
    ("new", dict(OPTION, fee="1e9"), "Enter an amount from 0.00 to 999.99."),
    ("new", dict(OPTION, minimum_order="2.555"), "Use at most two decimals"),
    ("new", dict(OPTION, postcodes="BS1, " * 1000), "Keep the postcode areas under 1,000 characters."),
    ("new", dict(OPTION, postcodes=""), "List the postcode areas you deliver to"),
    ("new", dict(OPTION, postcodes="BS1; DROP TABLE"), "is not a postcode area"),
    ("new", dict(OPTION, kind="collection", address=""), "Enter the address where customers collect."),
    ("new", dict(OPTION, kind="teleport"), "Not a valid choice"),
    ("new", dict(OPTION, cutoff_hours="337"), "from 0 to 336"),
    ("new", dict(OPTION, cutoff_hours="-2"), "from 0 to 336"),
    ("new", dict(OPTION, capacity="0"), "from 1 to 10,000"),
    ("new", dict(OPTION, name=""), "This field is required."),
    ("new", dict(OPTION, name="Bristol\x00van"), "Remove the control characters"),
    ("new", dict(OPTION, kind="collection", address="9 Lane\x00\nBS1"), "Remove the control characters"),
    ("profile", {"description": "Organic\x1b[2J"}, "Remove the control characters"),
    ("closure", {"start_date": "9999-12-31", "end_date": "9999-12-31"}, "up to two years ahead"),
    ("closure", {"start_date": "2026-02-30", "end_date": "2026-03-01"}, "Not a valid date value."),
    ("closure", {"start_date": "0001-01-01", "end_date": "2026-12-01"}, "between the years 2000 and 2100"),
    ("closure", {"start_date": "2099-01-02", "end_date": "2099-01-01"}, "cannot be before the first"),
    ("closure", {"start_date": "2020-01-01", "end_date": "2020-01-02"}, "Those days are over already"),
    ("profile", {"website": "javascript:alert(1)"}, "starts with http:// or https://"),
    ("profile", {"website": "ftp://farm.example"}, "starts with http:// or https://"),
    ("profile", {"description": "x" * 2001}, "Field cannot be longer than 2000 characters."),
    ("profile", {"public_email": "not an email"}, "Enter a valid email address."),
    ("profile", {"phone": "call me"}, "Enter a phone number"),
]


@pytest.mark.parametrize("form, data, message", BAD_SETTINGS, ids=[f"{f}:{m[:30]}" for f, _, m in BAD_SETTINGS])
def test_bad_settings_are_refused_with_a_clear_message_and_change_nothing(client, auth, db, world, form, data, message):
    path = {"slot": f"/dashboard/fulfilment/{world.collection[world.producer]}/slots", "new": "/dashboard/fulfilment/new",
            "closure": "/dashboard/closures", "profile": "/dashboard/profile"}[form]
    auth.login_producer()
    with db.unchanged():
        profile = db.row("SELECT description, town, phone, public_email, website FROM producer WHERE producer_id = %s",
                         (world.producer,))
        response = client.post(path, data=data)
        assert response.status_code == 400
        assert message in response.get_data(as_text=True)
    assert db.row("SELECT description, town, phone, public_email, website FROM producer WHERE producer_id = %s",
                  (world.producer,)) == profile


def test_the_profile_is_saved_and_shown_to_customers(client, auth, db, world):
    auth.login_producer()
    response = client.post("/dashboard/profile", data={
        "description": "Roots and an old orchard.", "town": "Chew Magna", "phone": "01275 555 014",
        "public_email": "Hello@Farm.example", "website": "https://farm.example/about",
        "payment_info": "Cash or card at the gate."})
    assert response.status_code == 302
    assert db.row("SELECT town, public_email, website FROM producer WHERE producer_id = %s", (world.producer,)) == {
        "town": "Chew Magna", "public_email": "hello@farm.example", "website": "https://farm.example/about"}
    db.add_slot(world.collection[world.producer], 5, "09:00", "12:00")
    db.execute("UPDATE fulfilment_option SET postcodes = 'BS1, BS2, BS3, BS4, BS5, BS6, BS7, BS8', fee = 3.50,"
               " minimum_order = 15 WHERE option_id = %s", (world.delivery[world.producer],))
    db.add_slot(world.delivery[world.producer], 3, "16:00", "19:00")
    page = client.get(f"/producers/{world.producer}").get_data(as_text=True)
    for text in ["Roots and an old orchard.", "Chew Magna", "01275 555 014", "hello@farm.example",
                 'href="https://farm.example/about"', "Cash or card at the gate.", "Collect at Gate, Sat 09:00–12:00",
                 "Delivery to BS1–BS8, Thu, £3.50", "Minimum order £15.00"]:
        assert text in page, text
    assert re.search(r"Next: \w{3} \d+ \w{3} \d{4}, 09:00–12:00 (GMT|BST)", page)
    product = client.get(f"/products/{world.product}").get_data(as_text=True)
    assert "Collect at Gate, Sat 09:00–12:00 · Delivery to BS1–BS8, Thu, £3.50" in product


def test_the_how_to_pay_note_is_on_the_cart_and_the_order(client, auth, db, world):
    db.execute("UPDATE producer SET payment_info = 'Cash at the gate, please.' WHERE producer_id = %s", (world.producer,))
    db.add_to_cart(world.customer, world.product, 1)
    auth.login_customer()
    assert "How to pay: Cash at the gate, please." in client.get("/cart").get_data(as_text=True)
    response = client.post("/checkout", data=world.choose())
    assert "Cash at the gate, please." in client.get(response.headers["Location"]).get_data(as_text=True)


def test_the_profile_photo_goes_through_the_image_pipeline(app, client, auth, db, world):
    photo = io.BytesIO()
    Image.new("RGB", (900, 600), (200, 120, 40)).save(photo, "PNG")
    auth.login_producer()
    response = client.post("/dashboard/profile", data={"image": (io.BytesIO(photo.getvalue()), "logo.png")},
                           content_type="multipart/form-data")
    assert response.status_code == 302
    first = db.value("SELECT image_url FROM producer WHERE producer_id = %s", (world.producer,))
    assert first.startswith("/uploads/") and client.get(first).status_code == 200
    client.post("/dashboard/profile", data={"image": (io.BytesIO(photo.getvalue()), "logo.png")},
                content_type="multipart/form-data")
    second = db.value("SELECT image_url FROM producer WHERE producer_id = %s", (world.producer,))
    assert second != first and client.get(first).status_code == 404, "the replaced photo is deleted"
    assert f'src="{second}"' in client.get(f"/producers/{world.producer}").get_data(as_text=True)
    refused = client.post("/dashboard/profile", data={"image": (io.BytesIO(b"not an image"), "logo.png")},
                          content_type="multipart/form-data")
    assert refused.status_code == 400 and "not a readable JPEG, PNG or WebP image" in refused.get_data(as_text=True)


def test_orders_from_before_fulfilment_stay_readable_after_the_migration(app, scratch_databases):
    name = scratch_databases()

    def build_before_0009_with_orders_then_migrate():
        cur = migrate_before("0009_fulfilment.sql")
        cur.execute("INSERT INTO producer (producer_id, business_name, email, password_hash) VALUES (1, 'F', 'f@x', 'h')")
        cur.execute("INSERT INTO customer (customer_id, first_name, email, password_hash) VALUES (1, 'Jo', 'j@x', 'h')")
        cur.execute("INSERT INTO product (product_id, producer_id, name, description, category, price, unit)"
                    " VALUES (1, 1, 'Leeks', '', 'Vegetables', 2.00, 'bunch'), (2, 1, 'Kale', '', 'Vegetables', 1.10, 'bag')")
        cur.execute("INSERT INTO orders (order_id, customer_id, producer_id, status, order_type, delivery_address) VALUES"
                    " (1, 1, 1, 'completed', 'delivery', '4 Mill Lane'), (2, 1, 1, 'pending', 'collection', NULL)")
        cur.execute("INSERT INTO order_item (order_id, product_id, quantity, unit_price) VALUES"
                    " (1, 1, 2, 2.00), (1, 2, 3, 1.10), (2, 2, 1, 1.10)")
        cur.close()
        assert database.apply_migrations()[0] == "0009_fulfilment.sql"
        assert query_rows("SELECT order_id, goods_total, item_count, fee, payment_status, fulfilment_date FROM orders"
                          " ORDER BY order_id") == [
            (1, Decimal("7.30"), 5, Decimal("0.00"), "unpaid", None), (2, Decimal("1.10"), 1, Decimal("0.00"), "unpaid", None)]
        assert query_rows("SELECT COUNT(*) FROM fulfilment_option") == [(0,)], "no producer gets options it did not set up"

    make_database(name, build_before_0009_with_orders_then_migrate)


def query_rows(sql):
    cur = database.mysql.connection.cursor()
    cur.execute(sql)
    rows = [tuple(row.values()) for row in cur.fetchall()]
    cur.close()
    return rows


def test_an_order_from_before_fulfilment_shows_its_old_type_and_no_slot(client, auth, db, world):
    db.execute("UPDATE orders SET order_type = 'delivery', delivery_address = '4 Mill Lane' WHERE order_id = %s",
               (world.order,))
    auth.login_customer()
    page = client.get(f"/orders/{world.order}").get_data(as_text=True)
    assert "Delivery to</dt>" in page and "4 Mill Lane" in page and "When</dt>" not in page
    assert 'order-total">£3.60<' in page
