"""Every route, for anonymous users, customers and producers; and who may touch whose rows."""
import datetime

import pytest

PUBLIC_PAGES = ["/", "/products", "/signup/customer", "/login/customer", "/signup/producer",
                "/login/producer", "/logout"]
ROLES = [None, "customer", "producer"]


def log_in(auth, role):
    if role == "customer":
        auth.login_customer()
    elif role == "producer":
        auth.login_producer()


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("path", PUBLIC_PAGES)
def test_public_pages_render_for_every_role(client, auth, world, role, path):
    log_in(auth, role)
    response = client.get(path)
    assert response.status_code == 200
    assert "<nav" in response.get_data(as_text=True), "pages extend the base layout"


@pytest.mark.parametrize("role", ROLES)
def test_healthz_says_the_same_to_every_role_and_gives_no_one_a_session(app, client, auth, db, world, role):
    anonymous = app.test_client().get("/healthz")
    assert anonymous.status_code == 200 and "Set-Cookie" not in anonymous.headers
    log_in(auth, role)
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == anonymous.get_json()
    assert set(response.get_json()) == {"status", "database", "migrations", "outbox_backlog", "outbox_failed",
                                        "outbox_stuck", "worker_last_seen_seconds", "problems", "warnings"}


SOON = (datetime.date.today() + datetime.timedelta(days=30)).isoformat()
OPTION = {"kind": "delivery", "name": "Van", "postcodes": "BS1", "fee": "1.00", "minimum_order": "0",
          "cutoff_hours": "24", "is_active": "y"}
# Every producer route, with the ids it acts on (product, order, option, slot, closure, day) taken from ids.
DASHBOARD_ROUTES = [
    ("get", "/dashboard", None),
    ("get", "/dashboard/products/new", None),
    ("post", "/dashboard/products/new", None),
    ("get", "/dashboard/orders", None),
    ("get", "/dashboard/orders.csv", None),
    ("get", "/dashboard/products/{product}/edit", None),
    ("post", "/dashboard/products/{product}/edit", lambda ids: {
        "name": "Renamed", "category": "Fruit", "price": "1.00", "unit": "kg", "quantity_available": 0,
        "reorder_threshold": 0}),
    ("post", "/dashboard/products/{product}/delete", None),
    ("post", "/dashboard/products/{product}/availability", None),
    ("get", "/dashboard/orders/{order}", None),
    ("post", "/dashboard/update-stock", lambda ids: {"product_id": ids["product"], "quantity": 0}),
    ("post", "/dashboard/update-order-status", lambda ids: {"order_id": ids["order"], "status": "confirmed"}),
    ("post", "/dashboard/orders/{order}/paid", lambda ids: {"paid": "1"}),
    ("post", "/dashboard/orders/{order}/lines/{product}", lambda ids: {"quantity": "1", "reason": "Frost"}),
    ("get", "/dashboard/profile", None),
    ("post", "/dashboard/profile", lambda ids: {"town": "Bath"}),
    ("get", "/dashboard/fulfilment", None),
    ("get", "/dashboard/fulfilment/new", None),
    ("post", "/dashboard/fulfilment/new", lambda ids: OPTION),
    ("get", "/dashboard/fulfilment/{option}/edit", None),
    ("post", "/dashboard/fulfilment/{option}/edit", lambda ids: OPTION),
    ("post", "/dashboard/fulfilment/{option}/delete", None),
    ("post", "/dashboard/fulfilment/{option}/slots", lambda ids: {"weekday": "2", "start": "10:00", "end": "11:00"}),
    ("post", "/dashboard/fulfilment/{option}/slots/{slot}/delete", None),
    ("post", "/dashboard/closures", lambda ids: {"start_date": SOON, "end_date": SOON}),
    ("post", "/dashboard/closures/{closure}/delete", None),
    ("get", "/dashboard/schedule", None),
    ("get", "/dashboard/schedule/{day}", None),
    ("get", "/dashboard/schedule/{day}.csv", None),
    ("post", "/dashboard/schedule/{day}/status", lambda ids: {"order_id": ids["order"], "status": "confirmed"}),
    ("post", "/dashboard/orders/{order}/weights", lambda ids: {f"weight-{ids['order']}-{ids['product']}": "1.9"}),
    ("post", "/dashboard/schedule/{day}/weights", lambda ids: {f"weight-{ids['order']}-{ids['product']}": "1.9"}),
    ("post", "/dashboard/orders/{order}/refunds/{product}", lambda ids: {"quantity": "1", "reason": "Spoilt"}),
    ("get", "/dashboard/statement", None),
    ("get", "/dashboard/statement.csv", None),
]
# A refund is for an order handed over; the one these routes act on is not yet.
REFUSED_HERE = {"/dashboard/orders/{order}/refunds/{product}": 409}
# The routes that act on an id, in the path or (for the two forms the seed names) in the form.
ROUTES_WITH_IDS = [route for route in DASHBOARD_ROUTES
                   if "{" in route[1] or route[1] in ("/dashboard/update-stock", "/dashboard/update-order-status")]


def owned_ids(db, world, producer, product, order):
    """Ids of rows that producer owns: the world's product and order (given a date), an option with a slot, a closure."""
    option = world.delivery[producer]
    slot = db.add_slot(option, 3, "16:00", "19:00")
    closure = db.execute("INSERT INTO producer_closure (producer_id, start_date, end_date) VALUES (%s, %s, %s)",
                         (producer, "2099-03-01", "2099-03-02"))
    day = "2099-06-0" + ("1" if producer == world.producer else "2")
    db.execute("UPDATE orders SET fulfilment_date = %s, slot_start = '09:00', slot_end = '12:00', option_id = %s"
               " WHERE order_id = %s", (day, option, order))
    return {"product": product, "order": order, "option": option, "slot": slot, "closure": closure, "day": day}


@pytest.fixture
def ids(db, world):
    """{'own': ids the logged-in farm owns, 'other': ids the dairy owns}."""
    return {"own": owned_ids(db, world, world.producer, world.product, world.order),
            "other": owned_ids(db, world, world.other_producer, world.other_product, world.other_order)}


def call(client, route, ids):
    method, path, data = route
    return getattr(client, method)(path.format(**ids), data=data(ids) if data else None)


@pytest.mark.parametrize("role", [None, "customer"])
@pytest.mark.parametrize("route", DASHBOARD_ROUTES, ids=lambda r: f"{r[0]} {r[1]}")
def test_every_dashboard_route_sends_non_producers_to_the_producer_login(client, auth, db, ids, role, route):
    log_in(auth, role)
    with db.unchanged():
        response = call(client, route, ids["own"])
        assert response.status_code == 302
        assert response.headers["Location"].startswith("/login/producer")


@pytest.mark.parametrize("route", DASHBOARD_ROUTES, ids=lambda r: f"{r[0]} {r[1]}")
def test_every_dashboard_route_works_for_its_producer(client, auth, ids, route):
    auth.login_producer()
    assert call(client, route, ids["own"]).status_code in (200, 302, 400, REFUSED_HERE.get(route[1]))


@pytest.mark.parametrize("route", ROUTES_WITH_IDS, ids=lambda r: f"{r[0]} {r[1]}")
@pytest.mark.parametrize("acting, owner", [("farm@example.com", "other"), ("dairy@example.com", "own")])
def test_producer_gets_404_for_the_other_producers_ids(client, auth, db, ids, route, acting, owner):
    """Each producer, acting on the ids the other one owns, gets 404 and changes nothing."""
    auth.login_producer(acting)
    with db.unchanged():
        response = call(client, route, ids[owner])
        assert response.status_code == 404
        assert "Page not found" in response.get_data(as_text=True)


def test_catalogue_lists_available_products_with_producer_price_and_stock(client, db, world):
    db.execute("UPDATE stock SET quantity_available = 0 WHERE product_id = %s", (world.other_product,))
    db.add_product(world.producer, "Hidden asparagus", available=0)
    page = client.get("/products").get_data(as_text=True)
    assert "Potatoes" in page and "Hartley Farm" in page and "£1.80" in page and "/ kg" in page
    assert "Hidden asparagus" not in page
    assert "In stock" in page
    assert "Low stock · 2 left" in page
    assert "Out of stock" in page
    assert "3 products" in page


def test_catalogue_paginates(client, db, world):
    for n in range(30):
        db.add_product(world.producer, f"Zucchini {n:02d}")
    first = client.get("/products").get_data(as_text=True)
    second = client.get("/products?page=2").get_data(as_text=True)
    assert "Page 1 of 2" in first and "Zucchini 29" not in first
    assert "Zucchini 29" in second
    assert client.get("/products?page=abc").status_code == 200


def test_empty_catalogue_has_a_friendly_empty_state(client, db):
    page = client.get("/products").get_data(as_text=True)
    assert "No products are available right now." in page


def test_unknown_page_is_a_styled_404(client, db):
    response = client.get("/no-such-page")
    assert response.status_code == 404
    page = response.get_data(as_text=True)
    assert "Page not found" in page and "<nav" in page


def test_get_on_a_post_route_is_405(client, auth, world):
    auth.login_producer()
    assert client.get("/dashboard/update-stock").status_code == 405
