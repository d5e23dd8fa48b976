"""The product page and the database-backed cart."""
import pytest


def test_product_page_shows_the_product_and_an_add_form(client, world):
    page = client.get(f"/products/{world.product}").get_data(as_text=True)
    for text in ["Potatoes", "Fresh Potatoes", "Hartley Farm", "£1.80", "/ kg", "In stock", 'name="quantity"']:
        assert text in page


@pytest.mark.parametrize("path", ["/products/999999", "/products/abc", "/products/-1"])
def test_unknown_product_is_404(client, world, path):
    assert client.get(path).status_code == 404


def test_unavailable_product_is_404(client, db, world):
    hidden = db.add_product(world.producer, "Asparagus", available=0)
    assert client.get(f"/products/{hidden}").status_code == 404


def test_out_of_stock_product_page_has_no_add_form(client, db, world):
    db.execute("UPDATE stock SET quantity_available = 0 WHERE product_id = %s", (world.product,))
    page = client.get(f"/products/{world.product}").get_data(as_text=True)
    assert "Out of stock" in page and "Add to cart" not in page


def test_add_to_cart_stores_the_line_in_the_database(client, auth, db, world):
    auth.login_customer()
    response = client.post("/cart/add", data={"product_id": world.product, "quantity": 3})
    assert response.status_code == 302 and response.headers["Location"] == "/cart"
    assert db.cart(world.customer) == {world.product: 3}
    client.post("/cart/add", data={"product_id": world.product})
    assert db.cart(world.customer) == {world.product: 4}, "quantity defaults to 1 and adds up"


def test_add_never_exceeds_stock_and_says_how_many_were_added(client, auth, db, world):
    auth.login_customer()
    response = client.post("/cart/add", data={"product_id": world.low_product, "quantity": 5}, follow_redirects=True)
    assert db.cart(world.customer) == {world.low_product: 2}
    assert "Only 2 of Kale are in stock, so 2 could be added" in response.get_data(as_text=True)
    response = client.post("/cart/add", data={"product_id": world.low_product, "quantity": 1})
    assert response.status_code == 409
    assert "your cart already holds them all" in response.get_data(as_text=True)
    assert db.cart(world.customer) == {world.low_product: 2}


def test_out_of_stock_product_cannot_be_added(client, auth, db, world):
    db.execute("UPDATE stock SET quantity_available = 0 WHERE product_id = %s", (world.product,))
    auth.login_customer()
    response = client.post("/cart/add", data={"product_id": world.product, "quantity": 1})
    assert response.status_code == 409
    assert "out of stock" in response.get_data(as_text=True)
    assert db.cart(world.customer) == {}


@pytest.mark.parametrize("quantity", ["0", "-1", "abc", "1.5", "", "1e3", "99999999999999999999"])
def test_add_with_a_bad_quantity_is_400_and_adds_nothing(client, auth, db, world, quantity):
    auth.login_customer()
    response = client.post("/cart/add", data={"product_id": world.product, "quantity": quantity})
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    said = ["Quantity must be more than 0", "Quantity must be a number from 0", "Enter the quantity as a number",
            "is bought in whole numbers"]
    assert sum(page.count(words) for words in said) == 1, "the error is shown once, at the field"
    assert 'aria-invalid="true"' in page
    assert db.cart(world.customer) == {}


@pytest.mark.parametrize("product_id, status", [("abc", 400), ("", 400), ("999999", 404)])
def test_add_with_a_bad_product_changes_nothing(client, auth, db, world, product_id, status):
    auth.login_customer()
    assert client.post("/cart/add", data={"product_id": product_id, "quantity": 1}).status_code == status
    assert db.cart(world.customer) == {}


def test_add_of_an_unavailable_product_is_404(client, auth, db, world):
    hidden = db.add_product(world.producer, "Asparagus", available=0)
    auth.login_customer()
    assert client.post("/cart/add", data={"product_id": hidden, "quantity": 1}).status_code == 404
    assert db.cart(world.customer) == {}


def test_a_guests_addition_is_kept_and_added_after_login(client, db, world):
    response = client.post("/cart/add", data={"product_id": world.product, "quantity": 2,
                                              "next": f"/products/{world.product}"})
    assert response.status_code == 302
    assert response.headers["Location"] == f"/products/{world.product}", "the guest stays where they were"
    assert "Added 2 × Potatoes to your basket" in client.get(response.headers["Location"]).get_data(as_text=True)
    assert db.cart(world.customer) == {}
    login = client.post("/login/customer?next=/cart", data={"email": "jane@example.com",
                                                            "password": "correct horse 42"})
    assert login.headers["Location"] == "/cart"
    assert db.cart(world.customer) == {world.product: 2}
    assert "The 1 product in your basket is now in your cart." in client.get("/cart").get_data(as_text=True)
    client.post("/logout")
    client.post("/login/customer", data={"email": "jane@example.com", "password": "correct horse 42"})
    assert db.cart(world.customer) == {world.product: 2}, "added once, not again at the next login"


def test_a_guests_addition_is_kept_through_signing_up(client, db, world):
    client.post("/cart/add", data={"product_id": world.low_product, "quantity": 1})
    response = client.post("/signup/customer", data={"name": "Ola", "email": "ola@example.com",
                                                     "password": "correct horse 42", "confirm": "correct horse 42"})
    assert response.headers["Location"] == "/cart"
    assert db.cart(db.value("SELECT customer_id FROM customer WHERE email = 'ola@example.com'")) == {world.low_product: 1}


def test_producer_cannot_use_a_cart(client, auth, db, world):
    auth.login_producer()
    response = client.post("/cart/add", data={"product_id": world.product, "quantity": 1})
    assert response.headers["Location"].startswith("/login/customer")
    assert db.value("SELECT COUNT(*) FROM cart_item") == 0


def test_cart_groups_lines_by_producer_with_exact_totals(client, auth, db, world):
    db.execute("UPDATE product SET price = '0.10' WHERE product_id = %s", (world.product,))
    db.add_to_cart(world.customer, world.product, 3)
    db.add_to_cart(world.customer, world.low_product, 2)
    db.add_to_cart(world.customer, world.other_product, 1)
    auth.login_customer()
    page = client.get("/cart").get_data(as_text=True)
    hartley, rosehill = page.index("<h2 id=\"producer-"), page.rindex("<h2 id=\"producer-")
    assert "Hartley Farm" in page[hartley:rosehill] and "Rosehill Dairy" in page[rosehill:]
    assert "£0.30" in page, "3 × £0.10 is exactly £0.30"
    assert "Total from Hartley Farm" in page and "£2.50" in page
    assert "Total from Rosehill Dairy" in page and "£1.40" in page
    assert 'id="grand-total">£3.90<' in page


def test_empty_cart_has_a_friendly_empty_state(client, auth, world):
    auth.login_customer()
    assert "Your cart is empty." in client.get("/cart").get_data(as_text=True)


def test_cart_survives_logout_and_a_login_from_another_browser(app, client, auth, db, world):
    auth.login_customer()
    client.post("/cart/add", data={"product_id": world.product, "quantity": 2})
    auth.logout()
    other_browser = app.test_client()
    other_browser.post("/login/customer", data={"email": "jane@example.com", "password": "correct horse 42"})
    assert 'id="qty-%d" name="quantity" value="2"' % world.product in other_browser.get("/cart").get_data(as_text=True)


def test_cart_shows_price_changes_and_unavailable_products(client, auth, db, world):
    db.add_to_cart(world.customer, world.product, 1, price="1.50")
    db.add_to_cart(world.customer, world.other_product, 1)
    db.execute("UPDATE product SET is_available = 0 WHERE product_id = %s", (world.other_product,))
    auth.login_customer()
    page = client.get("/cart").get_data(as_text=True)
    assert "Price changed from £1.50 to £1.80." in page
    assert "No longer available" in page
    assert 'id="grand-total">£1.80<' in page, "the unavailable line is not charged"


def test_update_changes_caps_and_removes_lines(client, auth, db, world):
    db.add_to_cart(world.customer, world.product, 1)
    db.add_to_cart(world.customer, world.low_product, 1)
    auth.login_customer()
    assert client.post("/cart/update", data={"product_id": world.product, "quantity": 5}).status_code == 302
    assert db.cart(world.customer)[world.product] == 5
    response = client.post("/cart/update", data={"product_id": world.low_product, "quantity": 9}, follow_redirects=True)
    assert db.cart(world.customer)[world.low_product] == 2
    assert "Only 2 of Kale are in stock" in response.get_data(as_text=True)
    client.post("/cart/update", data={"product_id": world.product, "quantity": 0})
    assert db.cart(world.customer) == {world.low_product: 2}


@pytest.mark.parametrize("quantity", ["-1", "abc", "", "2.5", "1000001"])
def test_update_with_bad_quantity_is_400_and_changes_nothing(client, auth, db, world, quantity):
    db.add_to_cart(world.customer, world.product, 1)
    auth.login_customer()
    with db.unchanged():
        assert client.post("/cart/update", data={"product_id": world.product, "quantity": quantity}).status_code == 400


def test_update_of_a_line_not_in_my_cart_is_404(client, auth, db, world):
    db.add_to_cart(world.other_customer, world.product, 1)
    auth.login_customer()
    with db.unchanged():
        assert client.post("/cart/update", data={"product_id": world.product, "quantity": 0}).status_code == 404


def test_unavailable_line_can_only_be_removed(client, auth, db, world):
    db.add_to_cart(world.customer, world.product, 1)
    db.execute("UPDATE product SET is_available = 0 WHERE product_id = %s", (world.product,))
    auth.login_customer()
    assert client.post("/cart/update", data={"product_id": world.product, "quantity": 2}).status_code == 409
    assert db.cart(world.customer) == {world.product: 1}
    client.post("/cart/update", data={"product_id": world.product, "quantity": 0})
    assert db.cart(world.customer) == {}


def test_nav_shows_the_cart_count(client, auth, db, world):
    db.add_to_cart(world.customer, world.product, 3)
    auth.login_customer()
    assert '<span class="count">3</span>' in client.get("/products").get_data(as_text=True)



# --- A guest's basket -----------------------------------------------------------

def test_a_guest_fills_a_basket_from_two_producers_and_signs_up_with_all_of_it(client, db, world):
    for product, quantity in [(world.product, 3), (world.low_product, 5), (world.other_product, 1)]:
        response = client.post("/cart/add", data={"product_id": product, "quantity": quantity, "next": "/products"})
        assert response.status_code == 302 and response.headers["Location"] == "/products"
    basket = client.get("/cart").get_data(as_text=True)
    assert "Your basket" in basket and "Potatoes" in basket and "Kale" in basket and "Milk" in basket
    assert "Log in or sign up to choose when and where" in basket and 'id="checkout-form"' not in basket
    db.execute("UPDATE stock SET quantity_available = 2 WHERE product_id = %s", (world.product,))
    response = client.post("/signup/customer", data={"name": "Ola", "email": "ola@example.com",
                                                     "password": "correct horse 42", "confirm": "correct horse 42"})
    assert response.headers["Location"] == "/cart"
    ola = db.value("SELECT customer_id FROM customer WHERE email = 'ola@example.com'")
    assert db.cart(ola) == {world.product: 2, world.low_product: 2, world.other_product: 1}, "capped at stock"
    page = client.get("/cart").get_data(as_text=True)
    assert "Potatoes: you asked for 3, and only 2 could go in your cart" in page
    with client.session_transaction() as session:
        assert "basket" not in session, "the basket became the cart"


def test_a_guest_changes_and_empties_their_basket(client, db, world):
    client.post("/cart/add", data={"product_id": world.product, "quantity": 3})
    assert client.post("/cart/update", data={"product_id": world.product, "quantity": 60}).status_code == 302
    with client.session_transaction() as session:
        assert session["basket"] == {str(world.product): 50}, "capped at the stock"
    assert client.post("/cart/update", data={"product_id": world.other_product, "quantity": 1}).status_code == 404
    client.post("/cart/update", data={"product_id": world.product, "quantity": 0})
    assert "Your basket is empty." in client.get("/cart").get_data(as_text=True)


@pytest.mark.parametrize("headers, allowed", [
    ({"Origin": "http://localhost"}, True), ({"Origin": "https://evil.example"}, False),
    ({"Sec-Fetch-Site": "same-origin"}, True), ({"Sec-Fetch-Site": "cross-site"}, False),
    ({"Referer": "http://localhost/products"}, True), ({"Referer": "https://evil.example/x"}, False), ({}, False),
])
def test_adding_without_a_token_is_only_for_this_sites_own_pages(app, client, db, world, headers, allowed):
    app.config["WTF_CSRF_ENABLED"] = True
    response = client.post("/cart/add", data={"product_id": world.product, "quantity": 1}, headers=headers)
    with client.session_transaction() as session:
        basket = session.get("basket")
    if allowed:
        assert response.status_code == 302 and basket == {str(world.product): 1}
    else:
        assert response.status_code == 400 and basket is None
        assert "sent from another site" in response.get_data(as_text=True)
