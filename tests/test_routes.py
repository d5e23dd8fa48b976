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


@pytest.mark.parametrize("role, status", [(None, 302), ("customer", 302), ("producer", 200)])
def test_dashboard_is_for_producers_only(client, auth, world, role, status):
    log_in(auth, role)
    response = client.get("/dashboard")
    assert response.status_code == status
    if status == 302:
        assert response.headers["Location"] == "/login/producer?next=/dashboard"


@pytest.mark.parametrize("role", [None, "customer"])
@pytest.mark.parametrize("path, data", [
    ("/dashboard/update-stock", lambda w: {"product_id": w.product, "quantity": 0}),
    ("/dashboard/update-order-status", lambda w: {"order_id": w.order, "status": "confirmed"}),
])
def test_dashboard_posts_need_a_producer_and_change_nothing(client, auth, db, world, role, path, data):
    log_in(auth, role)
    before = db.snapshot()
    response = client.post(path, data=data(world))
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login/producer")
    assert db.snapshot() == before


@pytest.mark.parametrize("path, data", [
    ("/dashboard/update-stock", lambda product, order: {"product_id": product, "quantity": 0}),
    ("/dashboard/update-order-status", lambda product, order: {"order_id": order, "status": "confirmed"}),
])
@pytest.mark.parametrize("acting, owner", [("farm@example.com", "other"), ("dairy@example.com", "own")])
def test_producer_gets_404_for_the_other_producers_ids(client, auth, db, world, path, data, acting, owner):
    """Each producer, acting on the ids the other one owns, gets 404 and changes nothing."""
    ids = {"own": (world.product, world.order), "other": (world.other_product, world.other_order)}[owner]
    auth.login_producer(acting)
    before = db.snapshot()
    response = client.post(path, data=data(*ids))
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
