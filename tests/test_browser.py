"""Real-browser journeys: Playwright driving Debian's chromium against the app on a local port."""
import datetime
import io
import re
from decimal import Decimal

import pytest
from PIL import Image
from playwright.sync_api import expect

import fulfilment
from conftest import PASSWORD

@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    page.console_errors = []
    # A CSP violation (an inline script or style, say) shows up here as a console error.
    page.on("console", lambda message: message.type == "error" and page.console_errors.append(message.text))
    yield page
    context.close()


def log_in(page, base, role, email):
    response = page.goto(f"{base}/login/{role}")
    assert response.headers["content-security-policy"].startswith("default-src 'self'"), "CSP is on"
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()


def log_out(page):
    """Log out from the header: on a phone the link sits in the menu."""
    menu = page.locator(".nav-menu > summary")
    if menu.is_visible():
        menu.click()
    page.get_by_role("button", name="Log out").click()


def test_customer_logs_in_through_the_form_and_sees_the_catalogue(live_server, page, world):
    log_in(page, live_server, "customer", "jane@example.com")
    expect(page).to_have_url(f"{live_server}/products")
    expect(page.get_by_text("You are logged in.")).to_be_visible()
    expect(page.get_by_role("heading", name="Potatoes")).to_be_visible()
    expect(page.get_by_role("heading", name="Milk")).to_be_visible()
    expect(page.get_by_text("Welcome back, Jane.")).to_be_visible()
    assert page.console_errors == []


def test_producer_logs_in_and_changes_a_stock_level(live_server, page, db, world):
    log_in(page, live_server, "producer", "farm@example.com")
    expect(page).to_have_url(f"{live_server}/dashboard")
    row = page.locator(f"#product-{world.product}")
    row.get_by_label("New stock for Potatoes").fill("99")
    row.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Stock of Potatoes is now 99.")).to_be_visible()
    expect(page.locator(f"#product-{world.product} .stock-level")).to_have_text("99")
    assert db.stock(world.product) == 99
    assert page.console_errors == []


def test_wrong_password_in_the_browser_shows_the_generic_message(live_server, page, world):
    page.goto(f"{live_server}/login/customer")
    page.get_by_label("Email").fill("jane@example.com")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_text("Incorrect email or password.")).to_be_visible()


def test_customer_adds_two_products_checks_out_and_sees_the_order(live_server, page, db, world):
    log_in(page, live_server, "customer", "jane@example.com")
    page.get_by_role("link", name="Potatoes").click()
    page.get_by_label("Quantity", exact=True).fill("2")
    page.get_by_role("button", name="Add to cart").click()
    expect(page.get_by_text("Added 2 × Potatoes to your cart.")).to_be_visible()
    page.goto(f"{live_server}/products/{world.other_product}")
    page.get_by_role("button", name="Add to cart").click()
    expect(page.locator("#grand-total")).to_have_text("£5.00")
    for producer, option in world.delivery.items():
        page.locator(f'input[name="when_{producer}"][value="{option}@arranged"]').check()
    page.get_by_label("Delivery address").fill("12 Orchard Row")
    page.get_by_label("Postcode").fill("bs1 4dj")
    page.get_by_role("button", name="Place order").click()
    expect(page).to_have_url(re.compile(rf"{live_server}/checkout/[\w-]+"))
    expect(page.get_by_text("your orders are placed")).to_be_visible()
    new_orders = db.rows("SELECT order_id FROM orders WHERE customer_id = %s AND delivery_address = '12 Orchard Row'",
                         (world.customer,))
    assert len(new_orders) == 2
    for row in new_orders:
        expect(page.get_by_role("link", name=f"Order #{row['order_id']}")).to_be_visible()
    assert db.stock(world.product) == 48 and db.cart(world.customer) == {}
    assert page.console_errors == []


def test_producer_adds_a_product_with_a_photo_and_a_customer_sees_it(live_server, page, db, world):
    photo = io.BytesIO()
    Image.new("RGB", (800, 600), (90, 140, 60)).save(photo, "PNG")
    log_in(page, live_server, "producer", "farm@example.com")
    page.get_by_role("link", name="Add a product").click()
    page.get_by_label("Name").fill("Heritage tomatoes")
    page.get_by_label("Description").fill("Mixed colours, picked ripe.")
    page.get_by_label("Category").select_option("Vegetables")
    page.get_by_label("Price", exact=True).fill("3.40")
    page.get_by_label("Unit", exact=True).fill("500 g")
    page.get_by_label("Stock on hand").fill("25")
    page.get_by_label("Photo").set_input_files(files=[{"name": "tomatoes.png", "mimeType": "image/png",
                                                       "buffer": photo.getvalue()}])
    page.get_by_role("button", name="Add product").click()
    expect(page.get_by_text("Heritage tomatoes has been added to your shop.")).to_be_visible()
    log_out(page)

    log_in(page, live_server, "customer", "jane@example.com")
    card = page.locator(".product-card", has_text="Heritage tomatoes")
    expect(card).to_contain_text("£3.40")
    photo_element = card.locator("img.card-photo")
    expect(photo_element).to_be_visible()
    assert photo_element.evaluate("img => img.naturalWidth") > 0, "the thumbnail is really served"
    assert db.value("SELECT thumbnail_url FROM product WHERE name = 'Heritage tomatoes'").startswith("/uploads/")
    assert page.console_errors == []


def test_a_week_producer_sets_up_collection_customer_orders_producer_packs_and_is_paid(live_server, page, db, world, app):
    db.execute("DELETE FROM fulfilment_option")
    with app.app_context():
        day = fulfilment.local_today() + datetime.timedelta(days=3)
    log_in(page, live_server, "producer", "farm@example.com")
    expect(page.get_by_text("Customers cannot order from you yet")).to_be_visible()
    page.get_by_role("link", name="Set up collection or delivery").click()
    page.get_by_label("Collection: customers come to you").check()
    page.get_by_label("Name").fill("Farm gate")
    page.get_by_label("Collection address").fill("Hartley Farm, Chew Lane")
    page.get_by_label("Ordering closes, hours before the start").fill("2")
    page.get_by_role("button", name="Add it").click()
    expect(page.get_by_text("Farm gate is set up.")).to_be_visible()
    page.get_by_label("Day").select_option(str(day.weekday()))
    page.get_by_label("From").fill("09:00")
    page.get_by_label("Until").fill("12:00")
    page.get_by_role("button", name="Add this time").click()
    expect(page.get_by_text(f"Farm gate now runs {fulfilment.WEEKDAYS[day.weekday()]}s 09:00–12:00.")).to_be_visible()
    log_out(page)

    log_in(page, live_server, "customer", "jane@example.com")
    page.goto(f"{live_server}/products/{world.product}")
    expect(page.get_by_text(f"Collect at Farm gate, {fulfilment.WEEKDAYS[day.weekday()][:3]} 09:00–12:00")).to_be_visible()
    page.get_by_label("Quantity", exact=True).fill("3")
    page.get_by_role("button", name="Add to cart").click()
    choices = page.get_by_role("group", name="Collect at Farm gate · free")
    choices.get_by_label(re.compile(rf"{day:%a %-d %b %Y}, 09:00–12:00 (GMT|BST)")).check()
    page.get_by_role("button", name="Place order").click()
    expect(page.get_by_text("your order is placed")).to_be_visible()
    order_id = db.value("SELECT MAX(order_id) FROM orders WHERE customer_id = %s", (world.customer,))
    assert db.value("SELECT fulfilment_date FROM orders WHERE order_id = %s", (order_id,)) == day
    log_out(page)

    log_in(page, live_server, "producer", "farm@example.com")
    page.get_by_role("link", name="This week").click()
    page.get_by_role("link", name=day.strftime("%a %-d %b %Y")).click()
    expect(page.locator(".pick-table")).to_contain_text("Potatoes")
    expect(page.locator(".pick-table")).to_contain_text("3 × kg")
    expect(page.locator(f"#packing-{order_id}")).to_contain_text("jane@example.com")
    expect(page.locator(f"#packing-{order_id}")).to_contain_text("Not paid")
    page.locator(f"#packing-{order_id} h3 a").click()
    page.get_by_role("button", name="Record as paid").click()
    expect(page.get_by_text(f"Order #{order_id} is marked paid.")).to_be_visible()
    assert db.value("SELECT payment_status FROM orders WHERE order_id = %s", (order_id,)) == "paid"
    page.get_by_role("link", name=re.compile("Packing list for")).click()
    expect(page.locator(f"#packing-{order_id}")).to_contain_text("Paid")
    assert page.console_errors == []


def test_an_operator_approves_a_new_producer_whose_product_then_appears(live_server, page, db, world, operator):
    page.goto(f"{live_server}/signup/producer")
    page.get_by_label("Business name").fill("Fern Bakery")
    page.get_by_label("Email").fill("fern@example.com")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Confirm password").fill(PASSWORD)
    page.get_by_role("button", name="Sign up").click()
    expect(page.get_by_text("Your shop is awaiting approval by the co-op")).to_be_visible()
    page.get_by_role("link", name="Add a product").click()
    page.get_by_label("Name").fill("Fern rye")
    page.get_by_label("Price", exact=True).fill("3.20")
    page.get_by_label("Unit", exact=True).fill("loaf")
    page.get_by_label("Stock on hand").fill("12")
    page.get_by_role("button", name="Add product").click()
    log_out(page)
    page.goto(f"{live_server}/products")
    expect(page.get_by_role("heading", name="Fern rye")).to_have_count(0)

    log_in(page, live_server, "operator", "op@example.com")
    expect(page).to_have_url(f"{live_server}/admin")
    page.get_by_role("link", name="Fern Bakery").click()
    page.get_by_label("Note (optional)").fill("Met them at the market.")
    page.get_by_role("button", name="Approve Fern Bakery").click()
    expect(page.get_by_text("Fern Bakery is now approved.")).to_be_visible()
    expect(page.locator("#account-state")).to_have_text("Approved")
    log_out(page)

    page.goto(f"{live_server}/products")
    expect(page.get_by_role("heading", name="Fern rye")).to_be_visible()
    assert db.value("SELECT status FROM producer WHERE email = 'fern@example.com'") == "approved"
    assert page.console_errors == []


def test_after_a_checkout_error_focus_is_on_a_summary_that_links_to_each_bad_field(live_server, page, db, world):
    db.add_to_cart(world.customer, world.product, 1)
    log_in(page, live_server, "customer", "jane@example.com")
    page.goto(f"{live_server}/cart")
    page.locator(f'input[name="when_{world.producer}"][value="{world.delivery[world.producer]}@arranged"]').check()
    page.get_by_role("button", name="Place order").click()
    summary = page.locator(".error-summary")
    expect(summary).to_be_focused()
    expect(summary).to_contain_text("There is a problem")
    links = summary.get_by_role("link")
    assert sorted(links.evaluate_all("links => links.map(a => a.getAttribute('href'))")) == ["#delivery_address",
                                                                                              "#postcode"]
    address = page.get_by_label("Delivery address")
    expect(address).to_have_attribute("aria-invalid", "true")
    described = address.get_attribute("aria-describedby").split()
    assert "delivery_address-error" in described
    expect(page.locator("#delivery_address-error")).to_have_text("Enter a delivery address, or choose collection.")
    links.filter(has_text="Enter a delivery address").click()
    expect(address).to_be_focused()
    assert db.cart(world.customer) == {world.product: 1}


def test_a_guests_addition_survives_logging_in(live_server, page, db, world):
    page.goto(f"{live_server}/products/{world.product}")
    page.get_by_label("Quantity", exact=True).fill("3")
    page.get_by_role("button", name="Add to basket").click()
    expect(page).to_have_url(f"{live_server}/products/{world.product}")
    expect(page.get_by_text("Added 3 × Potatoes to your basket.")).to_be_visible()
    page.goto(f"{live_server}/login/customer")
    page.get_by_label("Email").fill("jane@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{live_server}/cart")
    expect(page.get_by_text("The 1 product in your basket is now in your cart.")).to_be_visible()
    expect(page.get_by_label("Quantity of Potatoes")).to_have_value("3")
    assert db.cart(world.customer) == {world.product: 3}


DESTRUCTIVE = [
    ("customer", "/orders/{order}", "Cancel this order", "Yes, cancel order #{order}",
     "SELECT status FROM orders WHERE order_id = {order}", "pending", "cancelled"),
    ("producer", "/dashboard/orders/{order}", "Cancel the order", "Mark as Cancelled",
     "SELECT status FROM orders WHERE order_id = {order}", "pending", "cancelled"),
    ("producer", "/dashboard", "Delete Kale", "Yes, delete Kale",
     "SELECT COUNT(*) FROM product WHERE product_id = {low_product}", 1, 0),
    ("producer", "/dashboard/fulfilment", "Delete Van", "Yes, delete Van",
     "SELECT COUNT(*) FROM fulfilment_option WHERE option_id = {van}", 1, 0),
    ("producer", "/dashboard/fulfilment/{gate}/edit", "Remove Saturday 09:00", "Yes, remove it",
     "SELECT COUNT(*) FROM fulfilment_slot WHERE option_id = {gate}", 1, 0),
]


@pytest.mark.parametrize("role, path, opener, confirm, sql, before, after", DESTRUCTIVE,
                         ids=[case[2] for case in DESTRUCTIVE])
def test_destructive_actions_ask_first_and_keeping_it_changes_nothing(live_server, page, db, world, role, path,
                                                                      opener, confirm, sql, before, after):
    db.add_slot(world.collection[world.producer], 5, "09:00", "12:00")
    ids = {"order": world.order, "low_product": world.low_product, "van": world.delivery[world.producer],
           "gate": world.collection[world.producer]}
    log_in(page, live_server, role, "jane@example.com" if role == "customer" else "farm@example.com")
    page.goto(live_server + path.format(**ids))
    snapshot = db.snapshot()
    asking = page.locator("details.confirm").filter(has=page.get_by_text(opener.split()[0], exact=False)).filter(
        has_text=opener.split()[-1]).first
    asking.locator("summary").click()
    confirm_button = page.get_by_role("button", name=confirm.format(**ids))
    expect(confirm_button).to_be_visible()
    asking.locator("summary").click()
    expect(confirm_button).to_be_hidden()
    assert db.snapshot() == snapshot and db.value(sql.format(**ids)) == before, "keeping it changed nothing"
    asking.locator("summary").click()
    confirm_button.click()
    page.wait_for_load_state()
    assert db.value(sql.format(**ids)) == after
    assert page.console_errors == []


def test_a_refused_quantity_shows_one_error_at_the_field_and_keeps_the_products_address(live_server, page, db, world):
    log_in(page, live_server, "customer", "jane@example.com")
    page.goto(f"{live_server}/products/{world.product}")
    page.get_by_label("Quantity", exact=True).fill("0")
    page.get_by_role("button", name="Add to cart").click()
    expect(page.get_by_text("Quantity must be more than 0.")).to_have_count(1)
    expect(page.get_by_label("Quantity", exact=True)).to_have_attribute("aria-invalid", "true")
    expect(page).to_have_url(f"{live_server}/products/{world.product}")
    assert db.cart(world.customer) == {}


# The gap in pixels between a button's first visible word and the next, its hidden words aside.
SPACE_AFTER_FIRST_WORD = """button => {
    const walker = document.createTreeWalker(button, NodeFilter.SHOW_TEXT), shown = [];
    while (walker.nextNode()) {
        const node = walker.currentNode;
        if (node.textContent.trim() && !node.parentElement.closest('.visually-hidden')) shown.push(node);
    }
    const first = document.createRange(), next = document.createRange(), last = shown[1];
    const start = last.textContent.search(/\\S/);
    first.selectNodeContents(shown[0]);
    next.setStart(last, start);
    next.setEnd(last, start + 1);
    return next.getBoundingClientRect().left - first.getBoundingClientRect().right;
}"""


def test_a_guest_fills_a_basket_from_two_producers_then_signs_up_and_has_it_all(live_server, page, db, world):
    page.goto(f"{live_server}/products")
    add = page.get_by_role("button", name="Add Potatoes to basket")
    assert add.evaluate(SPACE_AFTER_FIRST_WORD) > 2, "Add and to basket keep their space around the hidden name"
    add.click()
    expect(page).to_have_url(f"{live_server}/products")
    expect(page.get_by_text("Added 1 × Potatoes to your basket.")).to_be_visible()
    page.get_by_role("button", name="Add Milk to basket").click()
    page.goto(f"{live_server}/products/{world.low_product}")
    page.get_by_label("Quantity", exact=True).fill("3")
    page.get_by_role("button", name="Add to basket").click()
    expect(page.get_by_text("Added 2 × Kale to your basket (only 2 in stock).")).to_be_visible()
    page.locator(".nav-cart").click()
    expect(page.get_by_role("heading", name="Your basket")).to_be_visible()
    page.get_by_role("link", name="Sign up", exact=True).last.click()
    page.get_by_label("First name").fill("Ola")
    page.get_by_label("Email").fill("ola@example.com")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Confirm password").fill(PASSWORD)
    page.get_by_role("button", name="Sign up").click()
    expect(page).to_have_url(f"{live_server}/cart")
    expect(page.get_by_text("The 3 products in your basket are now in your cart.")).to_be_visible()
    ola = db.value("SELECT customer_id FROM customer WHERE email = 'ola@example.com'")
    assert db.cart(ola) == {world.product: 1, world.other_product: 1, world.low_product: 2}
    assert page.console_errors == []


def test_cheese_by_the_kilo_and_a_chicken_by_weight_from_basket_to_final_total(live_server, page, db, world, app):
    cheddar = db.add_product(world.producer, "Cheddar", "24.00", quantity="12.5", unit="kg", sold_by="measure",
                             measure="kg", step="0.25", min_quantity="0.5", max_quantity="5")
    bird = db.add_product(world.producer, "Chicken", "9.00", quantity=8, unit="whole bird", sold_by="weighed",
                          estimated_weight="1.8")
    with app.app_context():
        day = fulfilment.local_today() + datetime.timedelta(days=3)
    page.goto(f"{live_server}/products/{cheddar}")
    expect(page.get_by_text("In steps of 0.25 kg, at least 0.5 kg, at most 5 kg.")).to_be_visible()
    page.get_by_label("Quantity", exact=True).fill("0.75")
    page.get_by_role("button", name="Add to basket").click()
    page.goto(f"{live_server}/products/{bird}")
    expect(page.get_by_text("about 1.8 kg, about £16.20 each")).to_be_visible()
    page.get_by_role("button", name="Add to basket").click()
    page.goto(f"{live_server}/cart")
    expect(page.locator("#grand-total")).to_have_text("£34.20")
    expect(page.get_by_text("Estimated total to pay")).to_be_visible()
    expect(page.get_by_text("at most 10% more than estimated").first).to_be_visible()
    log_in(page, live_server, "customer", "jane@example.com")
    page.goto(f"{live_server}/cart")
    page.get_by_role("group", name=re.compile("^Collect at Gate")).get_by_role("radio").first.check()
    page.get_by_role("button", name="Place order").click()
    expect(page.get_by_text("your order is placed")).to_be_visible()
    order_id = db.value("SELECT MAX(order_id) FROM orders WHERE customer_id = %s", (world.customer,))
    db.execute("UPDATE orders SET fulfilment_date = %s, slot_start = '09:00', slot_end = '12:00' WHERE order_id = %s",
               (day, order_id))
    log_out(page)

    log_in(page, live_server, "producer", "farm@example.com")
    page.goto(f"{live_server}/dashboard/schedule/{day.isoformat()}")
    expect(page.locator(".pick-table")).to_contain_text("0.75 kg")
    page.get_by_label(re.compile("^Weight of Chicken, kg")).fill("2.3")
    page.get_by_role("button", name="Save the weights").click()
    expect(page.get_by_text("more than 10% over the estimated 1.8 kg")).to_be_visible()
    assert db.value("SELECT weight FROM order_item WHERE order_id = %s AND product_id = %s", (order_id, bird)) is None
    page.get_by_label("Yes, 2.3 kg is right").check()
    page.get_by_role("button", name="Save the weights").click()
    expect(page.get_by_text("Recorded 1 weight")).to_be_visible()
    assert db.value("SELECT line_total FROM order_item WHERE order_id = %s AND product_id = %s",
                    (order_id, bird)) == Decimal("17.82")
    assert db.value("SELECT COUNT(*) FROM email_outbox WHERE dedupe_key = %s", (f"order-weighed:{order_id}",)) == 1
    log_out(page)

    log_in(page, live_server, "customer", "jane@example.com")
    page.goto(f"{live_server}/orders/{order_id}")
    expect(page.locator(".order-total")).to_have_text("£35.82")
    expect(page.get_by_text("weighed 2.3 kg (estimated 1.8 kg)", exact=True)).to_be_visible()
    expect(page.get_by_text("Chicken: weighed 2.3 kg (estimated 1.8 kg)")).to_be_visible()
    assert page.console_errors == ["Failed to load resource: the server responded with a status of 400 (BAD REQUEST)"], \
        "only the refused weight's page, answered with 400"
