"""The producer dashboard: stock levels and order statuses, only ever on the producer's own rows."""
import re

import pytest


def merged(valid, changes):
    """A valid form with some fields changed; a change to None leaves the field out."""
    form = dict(valid, **changes)
    return {key: value for key, value in form.items() if value is not None}


def test_dashboard_shows_own_products_orders_and_highlights_low_stock(client, auth, world):
    auth.login_producer()
    page = client.get("/dashboard").get_data(as_text=True)
    assert "Potatoes" in page and "Kale" in page
    assert "Milk" not in page, "another producer's product"
    assert f"#{world.order}" in page and f"#{world.other_order}" not in page
    assert f'<tr class="low-stock" id="product-{world.low_product}">' in page
    assert f'<tr class="" id="product-{world.product}">' in page
    assert re.findall(r'<tr id="restock-(\d+)"', page) == [str(world.low_product)]


def test_update_stock_changes_own_product(client, auth, db, world):
    auth.login_producer()
    response = client.post("/dashboard/update-stock", data={"product_id": world.product, "quantity": "75"})
    assert response.status_code == 302
    assert db.stock(world.product) == 75
    assert "Stock of Potatoes is now 75." in client.get("/dashboard").get_data(as_text=True)


@pytest.mark.parametrize("quantity", ["0", "1000000"])
def test_update_stock_accepts_the_bounds(client, auth, db, world, quantity):
    auth.login_producer()
    client.post("/dashboard/update-stock", data={"product_id": world.product, "quantity": quantity})
    assert db.stock(world.product) == int(quantity)


@pytest.mark.parametrize("data", [
    {"quantity": "-1"},
    {"quantity": "1000001"},
    {"quantity": "99999999999999999999999"},
    {"quantity": "abc"},
    {"quantity": "2.5"},
    {"quantity": "1e3"},
    {"quantity": ""},
    {"quantity": None},
    {"product_id": "abc"},
    {"product_id": None},
    {"product_id": "-3"},
])
def test_update_stock_refuses_bad_input_and_changes_nothing(client, auth, db, world, data):
    auth.login_producer()
    with db.unchanged():
        response = client.post("/dashboard/update-stock", data=merged({"product_id": world.product, "quantity": 12}, data))
        assert response.status_code == 400
        page = response.get_data(as_text=True)
        assert "flash-error" in page


def test_update_stock_on_another_producers_product_is_404(client, auth, db, world):
    auth.login_producer()
    with db.unchanged():
        response = client.post("/dashboard/update-stock", data={"product_id": world.other_product, "quantity": "0"})
        assert response.status_code == 404


def test_update_stock_on_unknown_product_is_404(client, auth, db, world):
    auth.login_producer()
    response = client.post("/dashboard/update-stock", data={"product_id": 999999, "quantity": "1"})
    assert response.status_code == 404


def test_order_status_moves_along_the_transition_table(client, auth, db, world):
    auth.login_producer()
    for status in ["confirmed", "ready", "completed"]:
        response = client.post("/dashboard/update-order-status", data={"order_id": world.order, "status": status})
        assert response.status_code == 302
        assert db.value("SELECT status FROM orders WHERE order_id = %s", (world.order,)) == status
    assert "Collected" in client.get("/dashboard").get_data(as_text=True)


@pytest.mark.parametrize("current, order_type, refused", [
    ("pending", "collection", "completed"),
    ("pending", "collection", "ready"),
    ("confirmed", "collection", "out_for_delivery"),
    ("confirmed", "delivery", "ready"),
    ("completed", "delivery", "cancelled"),
    ("cancelled", "collection", "pending"),
    ("ready", "collection", "pending"),
])
def test_order_status_outside_the_table_is_refused(client, auth, db, world, current, order_type, refused):
    db.execute("UPDATE orders SET status = %s, order_type = %s WHERE order_id = %s",
               (current, order_type, world.order))
    auth.login_producer()
    with db.unchanged():
        response = client.post("/dashboard/update-order-status", data={"order_id": world.order, "status": refused})
        assert response.status_code == 409
        assert "cannot move to" in response.get_data(as_text=True)


@pytest.mark.parametrize("data", [
    {"status": "shipped"},
    {"status": ""},
    {"status": None},
    {"order_id": "abc"},
    {"order_id": "-1"},
    {"order_id": None},
])
def test_order_status_bad_input_is_400_and_changes_nothing(client, auth, db, world, data):
    auth.login_producer()
    with db.unchanged():
        response = client.post("/dashboard/update-order-status",
                               data=merged({"order_id": world.order, "status": "confirmed"}, data))
        assert response.status_code == 400


def test_order_status_of_another_producers_order_is_404(client, auth, db, world):
    auth.login_producer()
    with db.unchanged():
        response = client.post("/dashboard/update-order-status",
                               data={"order_id": world.other_order, "status": "confirmed"})
        assert response.status_code == 404


def test_cancelling_restores_stock_exactly_once(client, auth, db, world):
    auth.login_producer()
    assert db.stock(world.product) == 50
    client.post("/dashboard/update-order-status", data={"order_id": world.order, "status": "cancelled"})
    assert db.stock(world.product) == 52
    response = client.post("/dashboard/update-order-status", data={"order_id": world.order, "status": "cancelled"})
    assert response.status_code == 409
    assert db.stock(world.product) == 52


@pytest.mark.parametrize("status, order_type, options", [
    ("pending", "collection", ["Confirmed", "Cancelled"]),
    ("confirmed", "collection", ["Ready to collect", "Cancelled"]),
    ("confirmed", "delivery", ["Out for delivery", "Cancelled"]),
    ("ready", "collection", ["Collected"]),
    ("out_for_delivery", "delivery", ["Delivered"]),
    ("completed", "delivery", []),
    ("cancelled", "collection", []),
])
def test_order_page_has_one_button_per_allowed_next_status(client, auth, db, world, status, order_type, options):
    db.execute("UPDATE orders SET status = %s, order_type = %s, delivery_address = 'x' WHERE order_id = %s",
               (status, order_type, world.order))
    auth.login_producer()
    page = client.get(f"/dashboard/orders/{world.order}").get_data(as_text=True)
    assert re.findall(r'>Mark as ([^<]+)</button>', page) == options


def test_a_refused_status_change_answers_on_the_orders_own_page(client, auth, db, world):
    db.execute("UPDATE orders SET status = 'completed' WHERE order_id = %s", (world.order,))
    auth.login_producer()
    response = client.post("/dashboard/update-order-status", data={"order_id": world.order, "status": "cancelled"})
    page = response.get_data(as_text=True)
    assert response.status_code == 409
    assert f"<h1>Order #{world.order}</h1>" in page and "cannot move to Cancelled" in page
    assert "Needs restocking" not in page, "not the whole dashboard"


def test_a_bad_status_for_an_order_answers_on_its_page_and_a_bad_order_on_a_small_one(client, auth, world):
    auth.login_producer()
    response = client.post("/dashboard/update-order-status", data={"order_id": world.order, "status": "shipped"})
    assert response.status_code == 400
    assert f"<h1>Order #{world.order}</h1>" in response.get_data(as_text=True)
    response = client.post("/dashboard/update-order-status", data={"order_id": "x", "status": "confirmed"})
    page = response.get_data(as_text=True)
    assert response.status_code == 400 and "That order could not be found" in page
    assert "Needs restocking" not in page


def test_a_bad_stock_figure_answers_on_the_products_stock_page(client, auth, db, world):
    auth.login_producer()
    response = client.post("/dashboard/update-stock", data={"product_id": world.product, "quantity": "-4"})
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "<h1>Stock of Potatoes</h1>" in page and "Quantity must be a number from 0" in page
    assert f'id="quantity-{world.product}"' in page, "the stock form is there to try again"
    assert "Needs restocking" not in page
    assert db.stock(world.product) == 50
