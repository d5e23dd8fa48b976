"""Every page, for every role, plus the error states, in a real browser at a phone's and a desktop's
width: nothing wider than the screen, and no accessibility violation that axe-core finds (WCAG 2.2
A/AA and best practice). The list is here, and a new route that is not in it fails a test."""
import datetime
import re

import pytest
from axe_playwright_python.sync_playwright import Axe

import accounts
import app as app_module
from conftest import round_trips, served
from db import seed_database

WIDTHS = (360, 1280)
AXE_OPTIONS = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa",
                                                      "best-practice"]},
               "resultTypes": ["violations"]}
# GET routes that are not pages: downloads, files, and the robots.txt text.
NOT_PAGES = {"api.list_webhooks", "api.dfc_catalog", "api.list_products", "api.get_product", "api.list_producers", "api.get_producer", "api.openapi", "api.me", "api.list_tokens", "api.cart", "api.list_orders", "api.get_order", "api.admin_producers", "api.admin_customers", "api.packing_list", "static", "uploaded_file", "orders_csv", "schedule_day_csv", "admin_orders_csv", "robots_txt", "healthz",
             "invoice_pdf", "producer_statement_csv", "admin_statement_csv", "admin_ledger_csv", "admin_vat_csv",
             # The card step needs a Stripe server: test_cards.py drives it against localstripe.
             "pay_checkout", "admin_hub_day_csv"}


def next_weekday(weekday):
    today = datetime.date.today()
    return today + datetime.timedelta(days=(weekday - today.weekday() + 6) % 7 + 1)


def reset_token():
    with app_module.app.app_context():
        account = accounts.credentials("customer", 1)
        return accounts.reset_serializer().dumps({"role": "customer", "id": 1,
                                                    "fp": accounts.reset_fingerprint(account)})


def add_from_a_card_then_open_the_basket(page):
    """A guest's basket with something in it: added from the first card of the catalogue."""
    base = page.url.split("/cart")[0]
    page.goto(f"{base}/products")
    page.locator(".card-add button").first.click()
    page.wait_for_load_state()
    page.goto(f"{base}/cart")


def open_a_shortage(page):
    """The producer's order page with the first "Short of …" form open."""
    page.locator(".shortage summary").first.click()


def fill_basket_with_cheese_and_a_chicken(page):
    """A guest's basket with cheese by measure and a chicken priced by weight: an estimated total."""
    base = page.url.split("/cart")[0]
    page.goto(f"{base}/products/13")
    page.get_by_role("button", name="Add to basket").click()
    page.wait_for_load_state()
    page.goto(f"{base}/products/20")
    page.get_by_label("Quantity", exact=True).fill("0.75")
    page.get_by_role("button", name="Add to basket").click()
    page.wait_for_load_state()
    page.goto(f"{base}/cart")


def fill_and_submit(values, button):
    """A page state reached by filling a form and sending it."""
    def act(page):
        for label, value in values.items():
            (page.locator(label) if label.startswith("#") else page.get_by_label(label, exact=True)).fill(value)
        page.get_by_role("button", name=button).click()
        page.wait_for_load_state()
    return act


# (role, path, what to do there first, or None): the demo data's ids (seed.sql).
PAGES = [
    (None, "/", None),
    (None, "/products", None),
    (None, "/products?q=honey", None),
    (None, "/products?q=zzzz", None),
    (None, "/products?category=Bakery&sort=price_desc&in_stock=1", None),
    (None, "/products/1", None),
    (None, "/producers", None),
    (None, "/api/docs", None),
    (None, "/producers/1", None),
    (None, "/signup/customer", None),
    (None, "/signup/customer", fill_and_submit({"Email": "not an email"}, "Sign up")),
    (None, "/signup/producer", None),
    (None, "/login/customer", None),
    (None, "/login/customer", fill_and_submit({"Email": "jane@example.com", "Password": "wrong one"}, "Log in")),
    (None, "/login/producer", None),
    (None, "/login/operator", None),
    (None, "/logout", None),
    (None, "/password/forgot/customer", None),
    (None, "/password/reset/not-a-token", None),
    (None, "/password/reset/{token}", None),
    (None, "/no-such-page", None),
    (None, "/cart", None),
    (None, "/cart", add_from_a_card_then_open_the_basket),
    (None, "/products/13", None),
    (None, "/products/20", None),
    (None, "/products?category=Meat+%26+Fish", None),
    (None, "/cart", fill_basket_with_cheese_and_a_chicken),
    ("customer", "/products/22", None),
    ("customer", "/products/1", None),
    ("customer", "/cart", None),
    ("customer", "/cart", fill_and_submit({"Postcode": "SW1A 1AA"}, "Place order")),
    ("customer", "/orders", None),
    ("customer", "/orders/7", None),
    ("customer", "/baskets/1", None),
    ("customer", "/checkout/demo-checkout-jane-7", None),
    ("customer", "/account", None),
    ("customer", "/account/balance", None),
    ("customer", "/invoices/1", None),
    ("customer", "/account", fill_and_submit({"#current_password": "x"}, "Change password")),
    ("tom", "/cart", None),
    ("tom", "/orders/4", None),
    ("producer", "/dashboard", None),
    ("producer", "/dashboard/products/new", None),
    ("producer", "/dashboard/products/new", fill_and_submit({"Price": "-3"}, "Add product")),
    ("producer", "/dashboard/products/1/edit", None),
    ("producer", "/dashboard/orders", None),
    ("producer", "/dashboard/orders?status=pending", None),
    ("producer", "/dashboard/orders/7", None),
    ("producer", "/dashboard/orders/7", open_a_shortage),
    ("producer", "/dashboard/orders/8", None),
    ("producer", "/dashboard/orders/8", fill_and_submit({"#weight-8-13": "4.5"}, "Save the weights")),
    ("producer", "/dashboard/schedule/{saturday}", None),
    ("producer", "/dashboard/schedule/{saturday}", fill_and_submit({"#weight-8-13": "0"}, "Save the weights")),
    ("producer", "/dashboard/products/13/edit", None),
    ("producer", "/dashboard/profile", None),
    ("producer", "/dashboard/webhooks", None),
    ("producer", "/dashboard/webhooks", fill_and_submit({"Endpoint URL": "http://127.0.0.1/hooks"}, "Add endpoint")),
    ("producer", "/dashboard/fulfilment", None),
    ("producer", "/dashboard/hubs/1/products", None),
    ("producer", "/dashboard/fulfilment", fill_and_submit({"First closed day": next_weekday(3).isoformat(),
                                                          "Last closed day": next_weekday(3).isoformat()},
                                                         "Close these days")),
    ("producer", "/dashboard/fulfilment/new", None),
    ("producer", "/dashboard/fulfilment/2/edit", None),
    ("producer", "/dashboard/fulfilment/2/edit", fill_and_submit({"From": "25:00"}, "Add this time")),
    ("producer", "/dashboard/schedule", None),
    ("producer", "/dashboard/schedule/{thursday}", None),
    ("producer", "/account", None),
    ("producer", "/dashboard/statement", None),
    ("bramble", "/dashboard/statement", None),
    ("bramble", "/dashboard/orders/5", None),
    ("bramble", "/invoices/1", None),
    ("willow", "/dashboard", None),
    ("willow", "/producers/5", None),
    ("operator", "/admin", None),
    ("operator", "/admin/producers", None),
    ("operator", "/admin/producers/5", None),
    ("operator", "/admin/producers/1", fill_and_submit({"The co-op's fee on their orders (%)": "101"}, "Set their fee")),
    ("operator", "/admin/customers", None),
    ("operator", "/admin/customers?q=jane", None),
    ("operator", "/admin/customers/1", None),
    ("operator", "/admin/customers/1/balance", None),
    ("operator", "/admin/customers/1/balance", fill_and_submit({"Amount received": "-1"}, "Add to their credit")),
    ("operator", "/admin/statements", None),
    ("operator", "/admin/producers/4/statement", None),
    ("operator", "/admin/producers/4/statement", fill_and_submit({"Amount": "99999"}, "Record it")),
    ("operator", "/admin/bank", None),
    ("operator", "/admin/accounts", None),
    ("operator", "/admin/payments", None),
    ("operator", "/admin/hubs", None),
    ("operator", "/admin/hubs/1", None),
    ("operator", "/admin/hubs/1/days/{saturday}", None),
    ("operator", "/admin/hubs/1", fill_and_submit({"Fee per basket": "-1"}, "Save")),
    ("operator", "/admin/orders", None),
    ("operator", "/admin/orders/7", None),
    ("operator", "/admin/emails", None),
    ("operator", "/admin/webhooks", None),
    ("operator", "/admin/emails?failed=1", None),
    ("operator", "/admin/operators", None),
    ("operator", "/admin/operators/1", None),
    ("operator", "/account", None),
]
ACCOUNTS = {"customer": ("customer", "jane@example.com"), "tom": ("customer", "tom@example.com"),
            "producer": ("producer", "hartley@noeari.com"), "willow": ("producer", "willow@noeari.com"),
            "bramble": ("producer", "bramble@noeari.com"),
            "operator": ("operator", "operator@noeari.com")}
STATE_STEPS = {"/dashboard/schedule/{thursday}", "/dashboard/schedule/{saturday}"}


def page_id(case):
    role, path, act = case
    return f"{role or 'anonymous'} {path}{' (refused)' if act else ''}"


def test_every_page_route_is_in_the_page_list():
    adapter = app_module.app.url_map.bind("localhost")
    listed = {adapter.match(path.split("?")[0].format(token="x", thursday="2026-01-01", saturday="2026-01-03"))[0]
              for _, path, _ in PAGES
              if path != "/no-such-page"}
    pages = {rule.endpoint for rule in app_module.app.url_map.iter_rules() if "GET" in rule.methods}
    assert pages - NOT_PAGES - listed == set(), "add these routes' pages to PAGES"


@pytest.fixture(scope="module")
def demo(test_database):
    """The demo data, loaded as `make run` loads it, into the test database."""
    from conftest import Database
    database = Database(test_database)
    database.clear()
    with app_module.app.app_context():
        seed_database()
    database.execute("INSERT INTO email_outbox (dedupe_key, recipient, subject, body_text, attempts, failed_at,"
                     " last_error) VALUES ('demo', 'jane@example.com', 'Order #7 is confirmed', 'x', 5,"
                     " UTC_TIMESTAMP(), 'SMTPDataError: 451 try later')")
    yield {"token": reset_token(), "thursday": next_weekday(3).isoformat(), "saturday": next_weekday(5).isoformat()}
    database.clear()
    database.conn.close()


# Round trips to the database per page (statements and pings), with the page cache off: what rendering
# each page costs, once its kept rows are kept (a producer's kept page, app.render_kept, costs only the session's
# statement then; a customer's cart's offers, catalogue.kept_offers, nothing past its lines, which carry their version).
# A page's count does not grow with the
# rows it shows (test_catalogue.py).
STATEMENTS = {
    'anonymous /': 1,
    'anonymous /api/docs': 0,
    'anonymous /products': 1,
    'anonymous /products?q=honey': 1,
    'anonymous /products?q=zzzz': 2,
    'anonymous /products?category=Bakery&sort=price_desc&in_stock=1': 1,
    'anonymous /products/1': 5,
    'anonymous /cart': 0,
    'anonymous /producers': 2,
    'anonymous /producers/1': 6,
    'anonymous /signup/customer': 0,
    'anonymous /signup/producer': 0,
    'anonymous /login/customer': 0,
    'anonymous /login/producer': 0,
    'anonymous /login/operator': 0,
    'anonymous /logout': 0,
    'anonymous /password/forgot/customer': 0,
    'anonymous /password/reset/not-a-token': 0,
    'anonymous /password/reset/{token}': 1,
    'anonymous /no-such-page': 0,
    'customer /products/22': 7,
    'customer /products/1': 7,
    'customer /cart': 2,
    'customer /orders': 4,
    'customer /orders/7': 8,
    'customer /baskets/1': 9,
    'customer /checkout/demo-checkout-jane-7': 4,
    'customer /account': 2,
    'customer /account/balance': 4,
    'operator /admin/customers/1/balance': 5,
    'tom /cart': 2,
    'tom /orders/4': 3,
    'producer /dashboard': 1,
    'producer /dashboard/products/new': 2,
    'producer /dashboard/products/1/edit': 3,
    'producer /dashboard/orders': 3,
    'producer /dashboard/orders?status=pending': 3,
    'producer /dashboard/orders/7': 3,
    'producer /dashboard/orders/8': 3,
    'producer /dashboard/schedule/{saturday}': 1,
    'producer /dashboard/products/13/edit': 3,
    'anonymous /products/13': 5,
    'anonymous /products/20': 4,
    'anonymous /products?category=Meat+%26+Fish': 1,
    'producer /dashboard/profile': 2,
    'producer /dashboard/webhooks': 2,
    'producer /dashboard/fulfilment': 10,
    'producer /dashboard/hubs/1/products': 3,
    'producer /dashboard/fulfilment/new': 1,
    'producer /dashboard/fulfilment/2/edit': 3,
    'producer /dashboard/schedule': 3,
    'producer /dashboard/schedule/{thursday}': 1,
    'producer /account': 2,
    'willow /dashboard': 1,
    'operator /admin': 5,
    'operator /admin/producers': 3,
    'operator /admin/producers/5': 3,
    'operator /admin/customers': 3,
    'operator /admin/customers?q=jane': 3,
    'operator /admin/customers/1': 3,
    'operator /admin/orders': 4,
    'operator /admin/orders/7': 3,
    'operator /admin/emails?failed=1': 3,
    'willow /producers/5': 5,
    'operator /admin/emails': 3,
    'operator /admin/webhooks': 2,
    'operator /admin/operators': 3,
    'operator /admin/operators/1': 4,
    'operator /account': 2,
    'customer /invoices/1': 2,
    'producer /dashboard/statement': 7,
    'bramble /dashboard/statement': 7,
    'bramble /dashboard/orders/5': 4,
    'bramble /invoices/1': 2,
    'operator /admin/statements': 2,
    'operator /admin/producers/4/statement': 7,
    'operator /admin/bank': 4,
    'operator /admin/accounts': 6,
    'operator /admin/payments': 2,
    'operator /admin/hubs': 3,
    'operator /admin/hubs/1': 5,
    'operator /admin/hubs/1/days/{saturday}': 6,
}


@pytest.mark.parametrize("case", [case for case in PAGES if not case[2]], ids=[page_id(c) for c in PAGES if not c[2]])
def test_each_page_costs_a_known_number_of_round_trips(demo, case):
    role, path, _ = case
    app = app_module.app
    client = app.test_client()
    if role:
        kind, email = ACCOUNTS[role]
        assert client.post(f"/login/{kind}", data={"email": email, "password": "password123"}).status_code == 302
    app.config["PAGE_CACHE_MB"] = 0
    try:
        path = path.format(**demo)
        status = client.get(path).status_code
        trips = round_trips(client, path, status)
    finally:
        app.config["PAGE_CACHE_MB"] = 16
    assert trips == STATEMENTS[page_id(case)], f"{path} now makes {trips} round trips"


@pytest.mark.parametrize("words, found", [("cheese", {"Rosehill Cheddar"}), ("bread", {"Sourdough loaf", "Seeded rye"}),
                                           ("loaves", {"Sourdough loaf"}), ("dairy", None)])
def test_the_demo_catalogue_answers_a_shopper_s_words(demo, words, found):
    page = app_module.app.test_client().get(f"/products?q={words}").get_data(as_text=True)
    names = set(re.findall(r'<h\d class="card-title"><a href="/products/\d+">([^<]+)</a>', page))
    if found is None:  # the producer Rosehill Dairy, and the category Dairy & Eggs
        assert {"Rosehill Cheddar", "Natural yoghurt"} <= names
    else:
        assert found <= names


@pytest.fixture(scope="module")
def server(demo):
    """The app, with CSRF on, served from a thread, for the whole module."""
    with served(app_module.app) as url:
        yield url


@pytest.fixture(scope="module")
def browsers(browser, server):
    """A logged-in browser context per role, made once."""
    contexts = {}
    for role in [None, *ACCOUNTS]:
        context = browser.new_context(viewport={"width": WIDTHS[0], "height": 800})
        if role:
            kind, email = ACCOUNTS[role]
            page = context.new_page()
            page.goto(f"{server}/login/{kind}")
            page.get_by_label("Email").fill(email)
            page.get_by_label("Password").fill("password123")
            page.get_by_role("button", name="Log in").click()
            page.wait_for_load_state()
            page.close()
        contexts[role] = context
    yield contexts
    for context in contexts.values():
        context.close()


@pytest.mark.parametrize("case", PAGES, ids=[page_id(case) for case in PAGES])
def test_no_page_is_wider_than_the_screen_or_has_an_accessibility_violation(browsers, server, demo, case):
    role, path, act = case
    page = browsers[role].new_page()
    errors = []
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    try:
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 800})
            page.goto(server + path.format(**demo))
            if act:
                act(page)
            overflow = page.evaluate("document.documentElement.scrollWidth")
            assert overflow <= width, f"{overflow} px wide at {width} px"
            results = Axe().run(page, options=AXE_OPTIONS)
            problems = [f"{v['id']} ({v['impact']}): {v['help']} — " + "; ".join(
                node["target"][0] if isinstance(node["target"][0], str) else str(node["target"][0])
                for node in v["nodes"][:3]) for v in results.response["violations"]]
            assert problems == [], f"at {width} px: " + "\n".join(problems)
        assert [e for e in errors if "Content Security Policy" in e] == []
    finally:
        page.close()
