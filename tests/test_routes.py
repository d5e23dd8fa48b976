"""Every route, for anonymous users, customers and producers; and who may touch whose rows."""
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


# Every producer route, with the ids it acts on taken from (product, order).
DASHBOARD_ROUTES = [
    ("get", "/dashboard", None),
    ("get", "/dashboard/products/new", None),
    ("post", "/dashboard/products/new", None),
    ("get", "/dashboard/orders", None),
    ("get", "/dashboard/orders.csv", None),
    ("get", "/dashboard/products/{product}/edit", None),
    ("post", "/dashboard/products/{product}/edit", lambda product, order: {
        "name": "Renamed", "category": "Fruit", "price": "1.00", "unit": "kg", "quantity_available": 0,
        "reorder_threshold": 0}),
    ("post", "/dashboard/products/{product}/delete", None),
    ("post", "/dashboard/products/{product}/availability", None),
    ("get", "/dashboard/orders/{order}", None),
    ("post", "/dashboard/update-stock", lambda product, order: {"product_id": product, "quantity": 0}),
    ("post", "/dashboard/update-order-status", lambda product, order: {"order_id": order, "status": "confirmed"}),
]
ROUTES_WITH_IDS = [route for route in DASHBOARD_ROUTES if "{" in route[1] or route[2]]


def call(client, route, product, order):
    method, path, data = route
    return getattr(client, method)(path.format(product=product, order=order),
                                   data=data(product, order) if data else None)


@pytest.mark.parametrize("role", [None, "customer"])
@pytest.mark.parametrize("route", DASHBOARD_ROUTES, ids=lambda r: f"{r[0]} {r[1]}")
def test_every_dashboard_route_sends_non_producers_to_the_producer_login(client, auth, db, world, role, route):
    log_in(auth, role)
    before = db.snapshot()
    response = call(client, route, world.product, world.order)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login/producer")
    assert db.snapshot() == before


@pytest.mark.parametrize("route", DASHBOARD_ROUTES, ids=lambda r: f"{r[0]} {r[1]}")
def test_every_dashboard_route_works_for_its_producer(client, auth, world, route):
    auth.login_producer()
    assert call(client, route, world.product, world.order).status_code in (200, 302, 400)


@pytest.mark.parametrize("route", ROUTES_WITH_IDS, ids=lambda r: f"{r[0]} {r[1]}")
@pytest.mark.parametrize("acting, owner", [("farm@example.com", "other"), ("dairy@example.com", "own")])
def test_producer_gets_404_for_the_other_producers_ids(client, auth, db, world, route, acting, owner):
    """Each producer, acting on the ids the other one owns, gets 404 and changes nothing."""
    product, order = {"own": (world.product, world.order), "other": (world.other_product, world.other_order)}[owner]
    auth.login_producer(acting)
    before = db.snapshot()
    response = call(client, route, product, order)
    assert response.status_code == 404
    assert "Page not found" in response.get_data(as_text=True)
    assert db.snapshot() == before


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
