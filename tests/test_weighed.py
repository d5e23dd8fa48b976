"""Food sold by measure and by weight: exact decimal quantities in steps, unit prices as the law asks, money
rounded once per line, estimates at checkout, and final weights that reprice an order and tell its customer
once."""
import os
import threading
from decimal import Decimal

import pytest

import measures
from conftest import PASSWORD, connect, make_database
from db import apply_migrations, migration_files, mysql, run_sql_file
from test_schema import ROOT


def cheese(db, world, quantity="12.5", **rules):
    """Hartley Farm's cheddar at £24.00/kg, in steps of 0.25 kg from 0.5 kg to 5 kg."""
    selling = dict(sold_by="measure", measure="kg", step="0.25", min_quantity="0.5", max_quantity="5", **rules)
    return db.add_product(world.producer, "Cheddar", "24.00", quantity=quantity, unit="kg", category="Dairy & Eggs",
                          **selling)


def chicken(db, world, name="Chicken", quantity=8, weight="1.8", price="9.00"):
    """A whole chicken at £9.00/kg, about 1.8 kg, ordered by the bird and paid by its weight."""
    return db.add_product(world.producer, name, price, quantity=quantity, unit="whole bird", category="Meat & Fish",
                          sold_by="weighed", estimated_weight=weight)


def checkout(client, world, **data):
    """Jane (logged in) checks out her cart from Hartley Farm by arrangement; the response."""
    return client.post("/checkout", data={f"when_{world.producer}": f"{world.collection[world.producer]}@arranged",
                                          **data})


def newest_order(db, world):
    return db.value("SELECT MAX(order_id) FROM orders WHERE customer_id = %s", (world.customer,))


def line_of(db, order_id, product_id):
    return db.row("SELECT quantity, unit_price, sold_by, measure, estimated_weight, weight, line_total"
                  " FROM order_item WHERE order_id = %s AND product_id = %s", (order_id, product_id))


# --- Money rounded once, per line -------------------------------------------

@pytest.mark.parametrize("line, total", [
    ({"sold_by": "measure", "measure": "kg", "quantity": Decimal("0.75"), "price": Decimal("24.00")}, "18.00"),
    ({"sold_by": "measure", "measure": "100g", "quantity": Decimal("300"), "price": Decimal("1.20")}, "3.60"),
    ({"sold_by": "measure", "measure": "kg", "quantity": Decimal("0.333"), "price": Decimal("10.05")}, "3.35"),
    ({"sold_by": "measure", "measure": "kg", "quantity": Decimal("0.125"), "price": Decimal("0.20")}, "0.03"),
    ({"sold_by": "measure", "measure": "l", "quantity": Decimal("1.5"), "price": Decimal("1.99")}, "2.99"),
    ({"sold_by": "unit", "measure": None, "quantity": Decimal("3"), "price": Decimal("1.10")}, "3.30"),
    ({"sold_by": "weighed", "measure": None, "quantity": Decimal("1"), "price": Decimal("9.00"),
      "estimated_weight": Decimal("1.8"), "tolerance_percent": Decimal("10"), "weight": Decimal("1.93")}, "17.37"),
])
def test_a_line_is_priced_by_its_measure_and_rounded_half_up_once(line, total):
    assert measures.line_total(line) == Decimal(total)


def test_rounding_is_half_up_never_to_even():
    assert measures.round_money(Decimal("0.025")) == Decimal("0.03")
    assert measures.round_money(Decimal("2.675")) == Decimal("2.68")
    assert measures.round_money(Decimal("2.6749")) == Decimal("2.67")


def test_quantities_in_steps_and_money_through_checkout(client, auth, db, world):
    cheddar = cheese(db, world)
    olives = db.add_product(world.producer, "Olives", "1.20", quantity=5000, unit="g", sold_by="measure",
                            measure="100g", step="100", min_quantity="100")
    awkward = db.add_product(world.producer, "Comté", "10.05", quantity=10, unit="kg", sold_by="measure",
                             measure="kg", step="0.001", min_quantity="0.001")
    auth.login_customer()
    for product, quantity in [(cheddar, "0.75"), (olives, "300"), (awkward, "0.333")]:
        assert client.post("/cart/add", data={"product_id": product, "quantity": quantity}).status_code == 302
    assert db.cart(world.customer) == {cheddar: Decimal("0.75"), olives: Decimal("300"), awkward: Decimal("0.333")}
    cart = client.get("/cart").get_data(as_text=True)
    assert "£24.00/kg" in cart and "£1.20 per 100 g" in cart and "£18.00" in cart and "£3.60" in cart
    assert checkout(client, world).status_code == 302
    order_id = newest_order(db, world)
    assert [line_of(db, order_id, product)["line_total"] for product in (cheddar, olives, awkward)] == [
        Decimal("18.00"), Decimal("3.60"), Decimal("3.35")]
    assert db.row("SELECT goods_total, item_count FROM orders WHERE order_id = %s", (order_id,)) == {
        "goods_total": Decimal("24.95"), "item_count": 3}, "a line sold by measure counts as one item"
    assert (db.stock(cheddar), db.stock(olives), db.stock(awkward)) == (Decimal("11.75"), Decimal("4700"),
                                                                       Decimal("9.667"))
    page = client.get(f"/orders/{order_id}").get_data(as_text=True)
    assert "0.75 kg" in page and "300 g" in page and "2.000" not in page


@pytest.mark.parametrize("quantity, says", [
    ("0.3", "is bought in steps of 0.25 kg"),
    ("0.25", "is bought 0.5 kg at least"),
    ("5.25", "is bought 5 kg at most"),
    ("0.7501", "at most 3 decimals"),
    ("-1", "Quantity must be a number from 0"),
    ("0", "Quantity must be more than 0"),
    ("1e3", "Enter the quantity as a number"),
    ("NaN", "Enter the quantity as a number"),
])
def test_a_quantity_off_the_steps_is_refused_and_nothing_changes(client, auth, db, world, quantity, says):
    cheddar = cheese(db, world)
    auth.login_customer()
    with db.unchanged():
        response = client.post("/cart/add", data={"product_id": cheddar, "quantity": quantity})
        assert response.status_code == 400
        assert says in response.get_data(as_text=True)


def test_a_whole_product_refuses_a_fraction_and_a_cart_line_keeps_its_steps(client, auth, db, world):
    cheddar = cheese(db, world)
    auth.login_customer()
    with db.unchanged():
        response = client.post("/cart/add", data={"product_id": world.product, "quantity": "1.5"})
        assert response.status_code == 400 and "Potatoes is bought in whole numbers, not 1.5" in response.get_data(
            as_text=True)
    assert client.post("/cart/add", data={"product_id": cheddar, "quantity": "1"}).status_code == 302
    with db.unchanged():
        response = client.post("/cart/update", data={"product_id": cheddar, "quantity": "1.1"})
        assert response.status_code == 400 and "steps of 0.25 kg" in response.get_data(as_text=True)
    assert client.post("/cart/update", data={"product_id": cheddar, "quantity": "1.75"}).status_code == 302
    assert db.cart(world.customer) == {cheddar: Decimal("1.75")}


def test_a_guest_basket_keeps_exact_decimals_into_the_account(client, auth, db, world):
    cheddar = cheese(db, world)
    assert client.post("/cart/add", data={"product_id": cheddar, "quantity": "0.75"}).status_code == 302
    assert client.post("/cart/add", data={"product_id": cheddar, "quantity": "0.5"}).status_code == 302
    basket = client.get("/cart").get_data(as_text=True)
    assert 'value="1.25"' in basket and "£30.00" in basket
    auth.login_customer()
    assert db.cart(world.customer) == {cheddar: Decimal("1.25")}


def test_an_order_edit_keeps_to_the_steps(client, auth, db, world):
    cheddar = cheese(db, world)
    db.add_to_cart(world.customer, cheddar, "1")
    auth.login_customer()
    assert checkout(client, world).status_code == 302
    order_id = newest_order(db, world)
    with db.unchanged():
        response = client.post(f"/orders/{order_id}/lines/{cheddar}", data={"quantity": "1.1"})
        assert response.status_code == 409 and "steps of 0.25 kg" in response.get_data(as_text=True)
    assert client.post(f"/orders/{order_id}/lines/{cheddar}", data={"quantity": "1.5"}).status_code == 302
    assert line_of(db, order_id, cheddar)["line_total"] == Decimal("36.00")
    assert db.stock(cheddar) == Decimal("11.0")
    assert db.row("SELECT quantity_before, quantity_after FROM order_status_history WHERE order_id = %s"
                  " AND kind = 'line'", (order_id,)) == {"quantity_before": Decimal("1"), "quantity_after": Decimal("1.5")}


def test_stock_of_2_5_kg_sells_exactly_five_half_kilos_to_ten_buyers_at_once(app, db, world):
    cheddar = cheese(db, world, quantity="2.5")
    buyers = [db.add_customer(f"buyer{n}@example.com", f"Buyer {n}") for n in range(10)]
    clients = []
    for n, customer_id in enumerate(buyers):
        db.add_to_cart(customer_id, cheddar, "0.5")
        one = app.test_client()
        assert one.post("/login/customer", data={"email": f"buyer{n}@example.com", "password": PASSWORD}).status_code == 302
        clients.append(one)
    barrier, statuses = threading.Barrier(len(clients)), [None] * len(clients)

    def buy(index):
        barrier.wait()
        statuses[index] = checkout(clients[index], world).status_code

    threads = [threading.Thread(target=buy, args=(index,)) for index in range(len(clients))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    placed = db.value("SELECT COUNT(*) FROM order_item WHERE product_id = %s", (cheddar,))
    assert placed == 5 and statuses.count(302) == 5, statuses
    assert db.stock(cheddar) == 0


# --- Weighed items: estimates at checkout -----------------------------------

def test_a_weighed_item_shows_its_price_per_kg_and_estimate_everywhere(client, auth, db, world):
    bird = chicken(db, world)
    page = client.get(f"/products/{bird}").get_data(as_text=True)
    assert "£9.00/kg" in page and "about 1.8 kg, about £16.20" in page
    assert "You pay for the actual weight, at most 10% more than estimated." in page
    card = client.get("/products?q=chicken").get_data(as_text=True)
    assert "£9.00/kg" in card and "about 1.8 kg, about £16.20 each" in card
    db.add_to_cart(world.customer, bird, 2)
    auth.login_customer()
    cart = client.get("/cart").get_data(as_text=True)
    assert "£32.40" in cart and "estimated" in cart and "Estimated total to pay" in cart
    assert "at most 10% more than estimated" in cart


@pytest.mark.parametrize("minimum, placed", [("16.00", True), ("16.21", False)])
def test_the_minimum_order_uses_the_estimate(client, auth, db, world, minimum, placed):
    bird = chicken(db, world)
    db.execute("UPDATE fulfilment_option SET minimum_order = %s WHERE option_id = %s",
               (minimum, world.collection[world.producer]))
    db.add_to_cart(world.customer, bird, 1)
    auth.login_customer()
    if placed:
        assert checkout(client, world).status_code == 302
        assert line_of(db, newest_order(db, world), bird)["line_total"] == Decimal("16.20")
    else:
        with db.unchanged():
            response = checkout(client, world)
            assert response.status_code == 409 and "Add £0.01 more from Hartley Farm" in response.get_data(as_text=True)


@pytest.mark.parametrize("free_over, fee", [("16.20", "0.00"), ("16.21", "3.50")])
def test_free_over_uses_the_estimate(client, auth, db, world, free_over, fee):
    bird = chicken(db, world)
    van = world.delivery[world.producer]
    db.execute("UPDATE fulfilment_option SET fee = 3.50, free_over = %s WHERE option_id = %s", (free_over, van))
    db.add_to_cart(world.customer, bird, 1)
    auth.login_customer()
    response = client.post("/checkout", data={f"when_{world.producer}": f"{van}@arranged",
                                              "delivery_address": "12 Orchard Row", "postcode": "BS1 4DJ"})
    assert response.status_code == 302
    assert db.value("SELECT fee FROM orders WHERE order_id = %s", (newest_order(db, world),)) == Decimal(fee)


# --- Final weights -----------------------------------------------------------

def weighed_order(client, auth, db, world, birds=1, **other):
    """Jane's order of a chicken (and, with other, more weighed products by name); the producer logged in after."""
    bird = chicken(db, world)
    extra = {name: chicken(db, world, name=name, weight=weight, price=price) for name, (weight, price) in other.items()}
    db.add_to_cart(world.customer, bird, birds)
    for product in extra.values():
        db.add_to_cart(world.customer, product, 1)
    auth.login_customer()
    assert checkout(client, world).status_code == 302
    order_id = newest_order(db, world)
    auth.logout()
    auth.login_producer()
    return order_id, bird, extra


def weighed_emails(db, order_id):
    return db.rows("SELECT recipient, subject, body_text FROM email_outbox WHERE dedupe_key = %s",
                   (f"order-weighed:{order_id}",))


def test_a_weight_reprices_the_line_is_recorded_and_the_customer_is_told_once_all_are_weighed(client, auth, db, world):
    order_id, bird, extra = weighed_order(client, auth, db, world, Duck=("2.2", "11.00"))
    duck = extra["Duck"]
    assert db.value("SELECT goods_total FROM orders WHERE order_id = %s", (order_id,)) == Decimal("40.40")
    response = client.post(f"/dashboard/orders/{order_id}/weights", data={f"weight-{order_id}-{bird}": "1.93"})
    assert response.status_code == 302
    assert line_of(db, order_id, bird)["weight"] == Decimal("1.93")
    assert line_of(db, order_id, bird)["line_total"] == Decimal("17.37")
    assert db.value("SELECT goods_total FROM orders WHERE order_id = %s", (order_id,)) == Decimal("41.57")
    history = db.row("SELECT kind, changed_by_role, changed_by_id, product_id, quantity_before, quantity_after, note"
                     " FROM order_status_history WHERE order_id = %s AND kind = 'weight'", (order_id,))
    assert history == {"kind": "weight", "changed_by_role": "producer", "changed_by_id": world.producer,
                       "product_id": bird, "quantity_before": None, "quantity_after": Decimal("1.93"),
                       "note": "estimated 1.8 kg"}
    assert not weighed_emails(db, order_id), "the duck is not weighed yet"
    assert client.post(f"/dashboard/orders/{order_id}/weights", data={f"weight-{order_id}-{duck}": "2.1"}).status_code == 302
    [email] = weighed_emails(db, order_id)
    assert email["recipient"] == "jane@example.com" and "£40.47" in email["subject"]
    assert "Chicken: estimated 1.8 kg, weighed 1.93 kg, £17.37" in email["body_text"]
    assert "Duck: estimated 2.2 kg, weighed 2.1 kg, £23.10" in email["body_text"]
    assert client.post(f"/dashboard/orders/{order_id}/weights", data={f"weight-{order_id}-{duck}": "2.1"}).status_code == 302
    assert len(weighed_emails(db, order_id)) == 1, "a weight saved again tells nobody again"
    assert client.post(f"/dashboard/orders/{order_id}/weights", data={f"weight-{order_id}-{duck}": "2.15"}).status_code == 302
    assert len(weighed_emails(db, order_id)) == 1
    [correction] = db.rows("SELECT body_text FROM email_outbox WHERE dedupe_key LIKE %s", (f"order-changed:{order_id}:customer:%",))
    assert "Duck: weight corrected from 2.1 kg to 2.15 kg" in correction["body_text"]
    assert db.value("SELECT COUNT(*) FROM order_status_history WHERE order_id = %s AND kind = 'weight'", (order_id,)) == 3
    page = client.get(f"/dashboard/orders/{order_id}").get_data(as_text=True)
    assert "weighed 1.93 kg (estimated 1.8 kg)" in page and "Chicken: weighed 1.93 kg" in page


def test_a_weight_over_the_tolerance_waits_for_confirming_and_the_charge_is_capped(client, auth, db, world):
    order_id, bird, _ = weighed_order(client, auth, db, world)
    field = f"weight-{order_id}-{bird}"
    with db.unchanged():
        response = client.post(f"/dashboard/orders/{order_id}/weights", data={field: "2.25"})
        page = response.get_data(as_text=True)
        assert response.status_code == 400
        assert "more than 10% over the estimated 1.8 kg" in page and "the customer pays at most £17.82" in page
        assert f'name="confirm" value="{order_id}-{bird}"' in page and 'value="2.25"' in page
    response = client.post(f"/dashboard/orders/{order_id}/weights", data={field: "2.25", "confirm": f"{order_id}-{bird}"})
    assert response.status_code == 302
    assert line_of(db, order_id, bird)["weight"] == Decimal("2.25")
    assert line_of(db, order_id, bird)["line_total"] == Decimal("17.82"), "1.98 kg (1.8 kg + 10%) at £9.00/kg"
    [email] = weighed_emails(db, order_id)
    assert "£17.82" in email["subject"]


@pytest.mark.parametrize("weight, says", [
    ("0", "above 0"), ("-1.2", "above 0"), ("abc", "as a number"), ("1.2345", "to the gram"),
    ("180.001", "over 100 times the estimated 1.8 kg"), ("1e2", "as a number"),
])
def test_a_bad_weight_is_refused_and_nothing_changes(client, auth, db, world, weight, says):
    order_id, bird, _ = weighed_order(client, auth, db, world)
    with db.unchanged():
        response = client.post(f"/dashboard/orders/{order_id}/weights", data={f"weight-{order_id}-{bird}": weight})
        assert response.status_code == 400
        assert says in response.get_data(as_text=True)


def test_the_day_s_list_takes_every_weight_in_one_submit_all_or_none(client, auth, db, world):
    order_id, bird, extra = weighed_order(client, auth, db, world, birds=2, Duck=("2.2", "11.00"))
    duck = extra["Duck"]
    day = db.value("SELECT CURDATE() + INTERVAL 1 DAY")
    db.execute("UPDATE orders SET fulfilment_date = %s, slot_start = '09:00', slot_end = '12:00' WHERE order_id = %s",
               (day, order_id))
    page = client.get(f"/dashboard/schedule/{day.isoformat()}").get_data(as_text=True)
    assert f'name="weight-{order_id}-{bird}"' in page and f'name="weight-{order_id}-{duck}"' in page
    assert "about 3.6 kg;" in page and "1 order to weigh" in page, "the pick list shows the two birds' estimate"
    with db.unchanged():
        response = client.post(f"/dashboard/schedule/{day.isoformat()}/weights",
                               data={f"weight-{order_id}-{bird}": "3.7", f"weight-{order_id}-{duck}": "0"})
        assert response.status_code == 400, "one bad weight keeps the good one back too"
    response = client.post(f"/dashboard/schedule/{day.isoformat()}/weights",
                           data={f"weight-{order_id}-{bird}": "3.7", f"weight-{order_id}-{duck}": "2.3"})
    assert response.status_code == 302
    assert line_of(db, order_id, bird)["line_total"] == Decimal("33.30")
    assert line_of(db, order_id, duck)["line_total"] == Decimal("25.30")
    assert len(weighed_emails(db, order_id)) == 1
    csv = client.get(f"/dashboard/schedule/{day.isoformat()}.csv").get_data(as_text=True)
    assert "Chicken,2,whole bird,3.6,3.7" in csv


def test_weights_of_another_producer_s_order_or_a_completed_one_are_refused(client, auth, db, world):
    order_id, bird, _ = weighed_order(client, auth, db, world)
    auth.logout()
    auth.login_producer("dairy@example.com")
    with db.unchanged():
        assert client.post(f"/dashboard/orders/{order_id}/weights",
                           data={f"weight-{order_id}-{bird}": "1.9"}).status_code == 404
        assert client.post(f"/dashboard/orders/{order_id}/weights", data={}).status_code == 404
    auth.logout()
    auth.login_producer()
    with db.unchanged():
        assert client.post(f"/dashboard/orders/{world.order}/weights",
                           data={f"weight-{order_id}-{bird}": "1.9"}).status_code == 400, "not this order's line"
    db.execute("UPDATE orders SET status = 'completed' WHERE order_id = %s", (order_id,))
    with db.unchanged():
        response = client.post(f"/dashboard/orders/{order_id}/weights", data={f"weight-{order_id}-{bird}": "1.9"})
        assert response.status_code == 409 and "can no longer change" in response.get_data(as_text=True)


# --- Producers set how a product is sold -------------------------------------

def product_form(**fields):
    return {"name": "Cheddar", "description": "", "category": "Dairy & Eggs", "price": "24.00", "unit": "kg",
            "sold_by": "measure", "measure": "kg", "step": "0.25", "min_quantity": "", "max_quantity": "5",
            "estimated_weight": "", "tolerance_percent": "10", "quantity_available": "12.5", "reorder_threshold": "2",
            "is_available": "y", **fields}


def test_a_producer_adds_a_product_sold_by_measure_and_one_weighed(client, auth, db, world):
    auth.login_producer()
    assert client.post("/dashboard/products/new", data=product_form()).status_code == 302
    row = db.row("SELECT p.sold_by, p.measure, p.step, p.min_quantity, p.max_quantity, s.quantity_available,"
                 " p.sort_price FROM product p JOIN stock s ON s.product_id = p.product_id WHERE p.name = 'Cheddar'")
    assert row == {"sold_by": "measure", "measure": "kg", "step": Decimal("0.25"), "min_quantity": Decimal("0.25"),
                   "max_quantity": Decimal("5"), "quantity_available": Decimal("12.5"), "sort_price": Decimal("6")}
    assert client.post("/dashboard/products/new", data=product_form(
        name="Chicken", sold_by="weighed", price="9.00", unit="bird", estimated_weight="1.8", quantity_available="8",
        step="", max_quantity="")).status_code == 302
    row = db.row("SELECT sold_by, measure, step, min_quantity, estimated_weight, sort_price FROM product"
                 " WHERE name = 'Chicken'")
    assert row == {"sold_by": "weighed", "measure": None, "step": Decimal("1"), "min_quantity": Decimal("1"),
                   "estimated_weight": Decimal("1.8"), "sort_price": Decimal("16.2")}


@pytest.mark.parametrize("fields, says", [
    ({"step": ""}, "Enter the step it is bought in"),
    ({"step": "0.3", "max_quantity": "5"}, "The maximum must be a whole number of steps of 0.3 kg"),
    ({"min_quantity": "1", "max_quantity": "0.5"}, "The maximum cannot be below the minimum"),
    ({"measure": "100g", "step": "0.5", "quantity_available": "100"}, "A step in g is a whole number"),
    ({"step": "0.0001"}, "at most 3 decimals"),
    ({"sold_by": "weighed", "estimated_weight": ""}, "Enter the weight of a typical item"),
    ({"sold_by": "weighed", "estimated_weight": "1.8", "tolerance_percent": "150"}, "percentage from 0 to 100"),
    ({"sold_by": "unit", "quantity_available": "2.5"}, "counted in whole numbers"),
    ({"sold_by": "kilo"}, "Not a valid choice"),
])
def test_selling_rules_that_do_not_stand_together_are_refused(client, auth, db, world, fields, says):
    auth.login_producer()
    with db.unchanged():
        response = client.post("/dashboard/products/new", data=product_form(**fields))
        assert response.status_code == 400
        assert says in response.get_data(as_text=True)


def test_sorting_by_price_compares_the_least_a_shopper_can_buy(client, db, world):
    cheese(db, world)  # £24.00/kg from 0.5 kg: £12.00
    chicken(db, world)  # about £16.20
    db.add_product(world.producer, "Jam", "13.00", unit="jar")
    db.index_search()
    page = client.get("/products?sort=price_desc").get_data(as_text=True)
    names = [name for name in ("Chicken", "Jam", "Cheddar") if name in page]
    assert names == ["Chicken", "Jam", "Cheddar"]
    assert page.index("Chicken") < page.index("Jam") < page.index("Cheddar")


def test_the_producer_csv_shows_quantity_measure_estimate_and_weight(client, auth, db, world):
    order_id, bird, _ = weighed_order(client, auth, db, world, birds=2)
    client.post(f"/dashboard/orders/{order_id}/weights", data={f"weight-{order_id}-{bird}": "3.7"})
    csv = client.get("/dashboard/orders.csv").get_data(as_text=True)
    header = csv.splitlines()[0]
    assert "quantity,unit,unit price,estimated weight (kg),final weight (kg),line total" in header
    assert ",Chicken,2,whole bird,9.00,3.6,3.7,33.30," in csv


# --- The migration keeps every product as it was -----------------------------

def test_the_migration_keeps_existing_products_orders_and_carts_exactly(scratch_databases):
    name = scratch_databases()
    files = migration_files()
    before = [f for f in files if f < "0018"]

    def build_then_migrate():
        cur = mysql.connection.cursor()
        for file in before:
            run_sql_file(cur, os.path.join(ROOT, "migrations", file))
            cur.execute("INSERT INTO schema_migrations (filename) VALUES (%s)", (file,))
        cur.execute("INSERT INTO producer (producer_id, business_name, email, password_hash, status)"
                    " VALUES (1, 'Old Farm', 'o@x.org', 'h', 'approved')")
        cur.execute("INSERT INTO customer (customer_id, first_name, email, password_hash) VALUES (1, 'Jo', 'j@x', 'h')")
        cur.execute("INSERT INTO product (product_id, producer_id, name, description, category, price, unit)"
                    " VALUES (1, 1, 'Leeks', '', 'Vegetables', 2.00, 'bunch'), (2, 1, 'Kale', '', 'Vegetables', 1.10, 'bag')")
        cur.execute("UPDATE stock SET quantity_available = 7, reorder_threshold = 2")
        cur.execute("INSERT INTO orders (order_id, customer_id, producer_id, order_type) VALUES (1, 1, 1, 'collection')")
        cur.execute("INSERT INTO order_item (order_id, product_id, quantity, unit_price) VALUES (1, 1, 2, 2.00), (1, 2, 3, 1.10)")
        cur.execute("INSERT INTO cart_item (customer_id, product_id, quantity, price_when_added) VALUES (1, 2, 4, 1.10)")
        cur.close()
        assert apply_migrations()[0].startswith("0018")

    make_database(name, build_then_migrate)
    conn = connect(name)
    cur = conn.cursor()
    cur.execute("SELECT product_id, sold_by, measure, step, min_quantity, max_quantity, estimated_weight, sort_price"
                " FROM product ORDER BY product_id")
    assert [tuple(row.values()) for row in cur.fetchall()] == [
        (1, "unit", None, Decimal("1.000"), Decimal("1.000"), None, None, Decimal("2.00")),
        (2, "unit", None, Decimal("1.000"), Decimal("1.000"), None, None, Decimal("1.10"))]
    cur.execute("SELECT goods_total, item_count FROM orders")
    assert cur.fetchall() == ({"goods_total": Decimal("7.30"), "item_count": 5},)
    cur.execute("SELECT product_id, quantity, line_total, sold_by FROM order_item ORDER BY product_id")
    assert [tuple(row.values()) for row in cur.fetchall()] == [(1, 2, Decimal("4.00"), "unit"),
                                                              (2, 3, Decimal("3.30"), "unit")]
    cur.execute("SELECT quantity FROM cart_item")
    assert cur.fetchall() == ({"quantity": 4},)
    cur.execute("SELECT quantity_available FROM stock ORDER BY product_id")
    assert [row["quantity_available"] for row in cur.fetchall()] == [7, 7]
    conn.close()
