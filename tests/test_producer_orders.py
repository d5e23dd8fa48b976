"""The producer's order list, CSV export, and the whole journey through the pages with no SQL."""
import csv
import io
import re
from decimal import Decimal

import pytest

from conftest import PASSWORD


def listed_orders(page):
    return [int(n) for n in re.findall(r'<tr id="order-(\d+)">', page)]


def test_order_list_is_newest_first_25_a_page(client, auth, db, world):
    ids = [db.add_order(world.customer, [(world.product, 1, "1.80")]) for _ in range(30)]
    db.execute("UPDATE orders SET placed_at = NOW() - INTERVAL order_id MINUTE WHERE producer_id = %s",
               (world.producer,))
    auth.login_producer()
    first = listed_orders(client.get("/dashboard/orders").get_data(as_text=True))
    second_page = client.get("/dashboard/orders?page=2").get_data(as_text=True)
    second = listed_orders(second_page)
    everything = sorted([world.order] + ids)
    assert first == everything[:25], "lower ids were placed later here, so they come first"
    assert second == everything[25:]
    assert world.other_order not in first + second
    assert "Page 2 of 2" in second_page


def test_order_list_filters_by_status_and_keeps_the_filter_in_page_links(client, auth, db, world):
    confirmed = [db.add_order(world.customer, [(world.product, 1, "1.80")], status="confirmed") for _ in range(27)]
    auth.login_producer()
    page = client.get("/dashboard/orders?status=confirmed").get_data(as_text=True)
    assert set(listed_orders(page)) <= set(confirmed) and len(listed_orders(page)) == 25
    assert "/dashboard/orders?page=2&amp;status=confirmed" in page
    assert listed_orders(client.get("/dashboard/orders?status=pending").get_data(as_text=True)) == [world.order]


@pytest.mark.parametrize("query", ["status=bogus", "page=-1", "page=abc", "page=99999", "status=" + "x" * 5000])
def test_order_list_bad_parameters_fall_back_to_defaults(client, auth, world, query):
    auth.login_producer()
    response = client.get(f"/dashboard/orders?{query}")
    assert response.status_code == 200


def test_order_list_shows_the_columns(client, auth, db, world):
    order = db.add_order(world.customer, [(world.product, 2, "1.80"), (world.low_product, 1, "1.10")],
                         order_type="delivery")
    auth.login_producer()
    page = client.get("/dashboard/orders").get_data(as_text=True)
    row = page.split(f'<tr id="order-{order}">')[1].split("</tr>")[0]
    for text in ["Jane", 'data-label="Items">3</td>', "£4.70", "Delivery", "Pending"]:
        assert text in row


def test_dashboard_home_counts_orders_by_status_and_lists_newest_pending(client, auth, db, world):
    for status in ["confirmed", "confirmed", "completed"]:
        db.add_order(world.customer, [(world.product, 1, "1.80")], status=status)
    auth.login_producer()
    page = client.get("/dashboard").get_data(as_text=True)
    counts = dict((label, int(n)) for n, label in re.findall(
        r'<span class="count-number">(\d+)</span>\s*<span class="count-label">([^<]+)</span>', page))
    assert counts["Pending"] == 1 and counts["Confirmed"] == 2 and counts["Completed"] == 1
    assert counts["Cancelled"] == 0
    assert f'id="pending-{world.order}"' in page


def read_csv(response):
    return list(csv.reader(io.StringIO(response.get_data(as_text=True))))


def test_csv_export_has_one_row_per_order_line(client, auth, db, world):
    order = db.add_order(world.customer, [(world.product, 2, "1.80"), (world.low_product, 3, "1.10")],
                         status="confirmed", order_type="delivery")
    auth.login_producer()
    response = client.get("/dashboard/orders.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.is_streamed
    assert "attachment" in response.headers["Content-Disposition"]
    rows = read_csv(response)
    assert rows[0] == ["order id", "placed at", "customer first name", "product", "quantity", "unit", "unit price",
                       "estimated weight (kg)", "final weight (kg)", "line total", "order type", "status", "fee",
                       "order total", "fulfilment date", "window", "paid"]
    lines = [row for row in rows[1:] if row[0] == str(order)]
    assert [row[2:] for row in lines] == [
        ["Jane", "Kale", "3", "bag", "1.10", "", "", "3.30", "delivery", "confirmed", "0.00", "6.90", "", "", "unpaid"],
        ["Jane", "Potatoes", "2", "kg", "1.80", "", "", "3.60", "delivery", "confirmed", "0.00", "6.90", "", "",
         "unpaid"]]
    assert all(row[0] in (str(order), str(world.order)) for row in rows[1:]), "only this producer's orders"


@pytest.mark.parametrize("name", ["=HYPERLINK(\"http://evil.example\",\"x\")", "+1+1", "-2+3", "@SUM(A1)",
                                  "\tTabbed"])
def test_csv_neutralises_formula_injection(client, auth, db, world, name):
    evil = db.add_product(world.producer, name)
    db.add_order(world.customer, [(evil, 1, "3.20")])
    db.execute("UPDATE customer SET first_name = '=cmd|calc' WHERE customer_id = %s", (world.customer,))
    auth.login_producer()
    rows = read_csv(client.get("/dashboard/orders.csv"))
    products = [row[3] for row in rows[1:]]
    assert "'" + name in products and name not in products
    assert all(row[2] == "'=cmd|calc" for row in rows[1:])


def test_csv_filters_by_status_and_dates(client, auth, db, world):
    old = db.add_order(world.customer, [(world.product, 1, "1.80")], status="completed")
    db.execute("UPDATE orders SET placed_at = '2026-01-15 23:59:00' WHERE order_id = %s", (old,))
    newer = db.add_order(world.customer, [(world.product, 1, "1.80")], status="completed")
    db.execute("UPDATE orders SET placed_at = '2026-02-01 00:00:00' WHERE order_id = %s", (newer,))
    auth.login_producer()

    def ids(query):
        return {row[0] for row in read_csv(client.get(f"/dashboard/orders.csv?{query}"))[1:]}

    assert ids("status=completed") == {str(old), str(newer)}
    assert ids("from=2026-01-15&to=2026-01-15") == {str(old)}
    assert ids("from=2026-01-16&to=2026-02-01") == {str(newer)}
    assert ids("status=pending") == {str(world.order)}


@pytest.mark.parametrize("query, message", [
    ("from=yesterday", "write it like 2026-11-21"), ("to=2026-13-01", "write it like 2026-11-21"),
    ("from=2026-02-30", "is not a real date"), ("to=9999-12-31", "between the years 2000 and 2100"),
    ("from=0001-01-01", "between the years 2000 and 2100"),
])
def test_csv_with_a_malformed_or_out_of_range_date_is_a_clear_400(client, auth, world, query, message):
    auth.login_producer()
    response = client.get(f"/dashboard/orders.csv?{query}")
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)


def test_csv_streams_thousands_of_lines_in_chunks(client, auth, db, world):
    order_ids = []
    for _ in range(40):
        order_ids.append(db.execute("INSERT INTO orders (customer_id, producer_id, order_type)"
                                    " VALUES (%s, %s, 'collection')", (world.customer, world.producer)))
    products = [db.add_product(world.producer, f"Item {n:03d}") for n in range(100)]
    values = ", ".join(f"({o}, {p}, 1, 1.25, 1.25)" for o in order_ids for p in products)
    db.execute(f"INSERT INTO order_item (order_id, product_id, quantity, unit_price, line_total) VALUES {values}")
    auth.login_producer()
    response = client.get("/dashboard/orders.csv")
    chunks = [chunk.decode() if isinstance(chunk, bytes) else chunk for chunk in response.response]
    assert len(chunks) > 5, "rows leave in many chunks, not one big string"
    rows = list(csv.reader(io.StringIO("".join(chunks))))
    new_lines = [row for row in rows[1:] if int(row[0]) in order_ids]
    assert len(rows) == 1 + 4000 + 1, "header, the new lines, and the world's one order line"
    assert len(new_lines) == 4000
    assert sum(Decimal(row[6]) for row in new_lines) == Decimal("5000.00")


def test_new_producer_runs_a_shop_through_the_pages_alone(app, db, monkeypatch):
    """Signup → product → approval → a customer orders it → the producer completes it, with no SQL but checks."""
    producer, customer = app.test_client(), app.test_client()
    assert producer.post("/signup/producer", data={"business": "Fern Bakery", "email": "fern@example.com",
                                                   "password": PASSWORD, "confirm": PASSWORD}).status_code == 302
    assert producer.post("/dashboard/products/new", data={
        "name": "Rye loaf", "description": "Dark and sour.", "category": "Bakery", "price": "3.75",
        "unit": "loaf", "quantity_available": "10", "reorder_threshold": "2", "is_available": "y"}).status_code == 302
    product_id = int(re.search(r'id="product-(\d+)"', producer.get("/dashboard").get_data(as_text=True)).group(1))
    assert producer.post("/dashboard/fulfilment/new", data={
        "kind": "collection", "name": "Bakery door", "address": "2 Fern Row", "fee": "0", "minimum_order": "0",
        "cutoff_hours": "12", "is_active": "y"}).status_code == 302
    option_id = db.value("SELECT option_id FROM fulfilment_option WHERE name = 'Bakery door'")
    monkeypatch.setenv("OPERATOR_PASSWORD", PASSWORD)
    assert app.test_cli_runner().invoke(args=["create-operator", "op@example.com", "--name", "Olu"]).exit_code == 0
    operator = app.test_client()
    assert operator.post("/login/operator", data={"email": "op@example.com", "password": PASSWORD}).status_code == 302
    fern = db.value("SELECT producer_id FROM producer WHERE email = 'fern@example.com'")
    assert operator.post(f"/admin/producers/{fern}/approve").status_code == 302

    assert customer.post("/signup/customer", data={"name": "Ola", "email": "ola@example.com",
                                                   "password": PASSWORD, "confirm": PASSWORD}).status_code == 302
    assert "Rye loaf" in customer.get("/products").get_data(as_text=True)
    customer.post("/cart/add", data={"product_id": product_id, "quantity": 2})
    placed = customer.post("/checkout", data={f"when_{db.value('SELECT producer_id FROM producer')}": f"{option_id}@arranged"})
    assert placed.status_code == 302 and placed.headers["Location"].startswith("/checkout/")
    order_id = db.value("SELECT MAX(order_id) FROM orders")

    order_page = producer.get(f"/dashboard/orders/{order_id}").get_data(as_text=True)
    assert "Rye loaf" in order_page and "£7.50" in order_page
    for status in ["confirmed", "ready", "completed"]:
        assert producer.post("/dashboard/update-order-status",
                             data={"order_id": order_id, "status": status}).status_code == 302
    assert "Collected" in customer.get(f"/orders/{order_id}").get_data(as_text=True)
    assert db.value("SELECT status FROM orders WHERE order_id = %s", (order_id,)) == "completed"
    assert db.stock(product_id) == 8


def test_order_counts_stay_exact_through_checkout_status_changes_and_cancels(app, client, auth, db, world):
    def counts():
        kept = {r["status"]: r["n"] for r in db.rows(
            "SELECT status, CAST(SUM(n) AS SIGNED) AS n FROM order_count WHERE producer_id = %s GROUP BY status",
            (world.producer,)) if r["n"]}
        actual = {r["status"]: r["n"] for r in db.rows(
            "SELECT status, COUNT(*) AS n FROM orders WHERE producer_id = %s GROUP BY status", (world.producer,))}
        return kept, actual

    customer = app.test_client()
    customer.post("/login/customer", data={"email": "jane@example.com", "password": PASSWORD})
    customer.post("/cart/add", data={"product_id": world.product, "quantity": 1})
    customer.post("/checkout", data=world.choose())
    auth.login_producer()
    client.post("/dashboard/update-order-status", data={"order_id": world.order, "status": "confirmed"})
    client.post("/dashboard/update-order-status", data={"order_id": world.order, "status": "ready"})
    customer.post(f"/orders/{world.order}/cancel")
    db.delete_orders("order_id = %s", (world.order,))
    kept, actual = counts()
    assert kept == actual and sum(actual.values()) == 1
    page = client.get("/dashboard/orders").get_data(as_text=True)
    assert len(listed_orders(page)) == 1


def test_an_order_moves_with_no_request_only_the_acting_account(app, db, world):
    """orders.py knows nothing of requests: the worker or the API to come calls it with the acting account."""
    import orders
    with app.app_context():
        order, moved = orders.change_order_status("producer", world.producer, world.order, "confirmed")
    assert moved and order["status"] == "pending"
    assert db.value("SELECT status FROM orders WHERE order_id = %s", (world.order,)) == "confirmed"
    assert db.row("SELECT changed_by_role, changed_by_id FROM order_status_history WHERE order_id = %s",
                  (world.order,)) == {"changed_by_role": "producer", "changed_by_id": world.producer}
    assert db.value("SELECT COUNT(*) FROM email_outbox WHERE dedupe_key = %s",
                    (f"order-status:{world.order}:confirmed",)) == 1
    with db.unchanged():
        with app.app_context(), pytest.raises(orders.OrderNotFound):
            orders.change_order_status("producer", world.other_producer, world.order, "cancelled")
        with app.app_context():
            assert orders.load_own_order("customer", world.other_customer, world.order) is None
