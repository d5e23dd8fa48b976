"""The page cache for anonymous visitors: exact invalidation by the catalogue version, never a logged-in
page, never anyone's data or token, and bounded memory; the card grid shared by logged-in people; and the rows
and cards kept rendered by their values."""
import datetime
import re

import pytest

import app as app_module
import catalogue
import pagecache
from conftest import PASSWORD, round_trips, round_trips_of

UTC = datetime.timezone.utc


def get(client, path):
    response = client.get(path)
    assert response.status_code == 200, (path, response.status_code)
    return response.headers.get("X-Page-Cache"), response.get_data(as_text=True)


def warm(client, path):
    """Render path once, then prove the next request is answered from the cache; return the page."""
    get(client, path)
    state, page = get(client, path)
    assert state == "hit", f"{path} was not served from the cache"
    return page


@pytest.fixture
def two_workers(monkeypatch):
    """Two processes' caches: requests alternate between them as a load balancer would send them."""
    caches = [pagecache.PageCache(16 * 1024 * 1024), pagecache.PageCache(16 * 1024 * 1024)]
    rows = [pagecache.PageCache(16 * 1024 * 1024), pagecache.PageCache(16 * 1024 * 1024)]

    def use(n):
        monkeypatch.setattr(app_module, "page_cache", caches[n])
        monkeypatch.setattr(app_module, "row_cache", rows[n])
    use(0)
    return use


def test_an_anonymous_page_costs_one_round_trip_once_cached(client, world):
    get(client, "/products")
    assert round_trips(client, "/products") == 1, "only the catalogue version is read"
    assert client.get("/products").headers["X-Page-Cache"] == "hit"


@pytest.mark.parametrize("path", ["/", "/products", "/products?q=potatoes&sort=name", "/products/{product}",
                                  "/producers", "/producers/{producer}", "/products?category=Vegetables&page=1"])
def test_each_catalogue_page_is_cached_under_its_full_url(client, world, path):
    path = path.format(product=world.product, producer=world.producer)
    page = warm(client, path)
    assert get(client, path + ("&" if "?" in path else "?") + "x=1")[0] is None, "a made-up parameter is never kept"
    assert "csrf_token" not in page and "Log out" not in page


# Each kind of change, made the way the app makes it (or the way an operator at the database would),
# and what the next anonymous request must show.
def rename_product(client, auth, db, world):
    auth.login_producer()
    data = {"name": "Pink fir potatoes", "description": "Waxy.", "category": "Vegetables", "price": "2.40",
            "unit": "kg", "quantity_available": "50", "quantity_seen": "50", "reorder_threshold": "10",
            "is_available": "y"}
    assert client.post(f"/dashboard/products/{world.product}/edit", data=data).status_code == 302
    auth.logout()


def hide_product(client, auth, db, world):
    auth.login_producer()
    assert client.post(f"/dashboard/products/{world.product}/availability").status_code == 302
    auth.logout()


def sell_stock(client, auth, db, world):
    auth.login_customer()
    db.add_to_cart(world.customer, world.product, 44)
    assert client.post("/checkout", data=world.choose()).status_code == 302
    assert db.stock(world.product) == 6
    auth.logout()


def restock(client, auth, db, world):
    auth.login_producer()
    assert client.post("/dashboard/update-stock", data={"product_id": world.product, "quantity": 3}).status_code == 302
    auth.logout()


def edit_profile(client, auth, db, world):
    auth.login_producer()
    assert client.post("/dashboard/profile", data={"description": "Third-generation growers.", "town": "Frome"}
                       ).status_code == 302
    auth.logout()


def rename_producer(client, auth, db, world):
    auth.login_producer()
    assert client.post("/account", data={"action": "name", "business": "Quillfield Growers"}).status_code == 302
    auth.logout()


def add_option(client, auth, db, world):
    db.add_option(world.producer, "collection", "Saturday market stall")


def pause_options(client, auth, db, world):
    db.execute("UPDATE fulfilment_option SET is_active = 0 WHERE producer_id = %s", (world.producer,))


def add_slot(client, auth, db, world):
    db.add_slot(world.collection[world.producer], 5, "09:00", "12:00")


def add_closure(client, auth, db, world):
    db.execute("INSERT INTO producer_closure (producer_id, start_date, end_date, note) VALUES (%s, %s, %s, 'Away')",
               (world.producer, "2026-11-27", "2026-11-29"))


def fill_slot(client, auth, db, world):
    db.execute("UPDATE fulfilment_option SET capacity = 1 WHERE option_id = %s", (world.collection[world.producer],))
    db.execute("INSERT INTO slot_booking (slot_id, slot_date, booked) VALUES (%s, '2026-11-28', 1)",
               (world.gate,))


def log_in_operator(auth, db, world):
    db.add_operator("op@example.com", "Olu")
    auth.login_operator()


def approve_producer(client, auth, db, world):
    log_in_operator(auth, db, world)
    assert client.post(f"/admin/producers/{world.newcomer}/approve", data={"note": "Visited."}).status_code == 302
    auth.logout()


def suspend_producer(client, auth, db, world):
    log_in_operator(auth, db, world)
    assert client.post(f"/admin/producers/{world.producer}/suspend", data={"note": "Complaints."}).status_code == 302
    auth.logout()


SATURDAY = "Sat 28 Nov 2026, 09:00–12:00 GMT"
CHANGES = [
    # (change, page, shown before, shown only after, gone after)
    (rename_product, "/products", "Potatoes", "Pink fir potatoes", None),
    (rename_product, "/products/{product}", "Potatoes", "Pink fir potatoes", None),
    (hide_product, "/products?category=Vegetables", "Potatoes", None, "Potatoes"),
    (sell_stock, "/products/{product}", "In stock", "Low stock · 6 left", None),
    (restock, "/products", "In stock", "Low stock · 3 left", None),
    (edit_profile, "/producers/{producer}", "Hartley Farm", "Third-generation growers.", None),
    (rename_producer, "/producers", "Hartley Farm", "Quillfield Growers", "Hartley Farm"),
    (rename_producer, "/products/{product}", "Hartley Farm", "Quillfield Growers", "Hartley Farm"),
    (add_option, "/producers/{producer}", "Gate", "Saturday market stall", None),
    (pause_options, "/", "Potatoes", None, "Potatoes"),
    (add_slot, "/producers/{producer}", "Gate", SATURDAY, None),
    (add_closure, "/producers/{producer}", SATURDAY, None, SATURDAY),
    (fill_slot, "/producers/{producer}", SATURDAY, None, SATURDAY),
    (approve_producer, "/producers", "Hartley Farm", "Fern Bakery", None),
    (suspend_producer, "/products", "Potatoes", None, "Potatoes"),
]


@pytest.mark.parametrize("change, path, before, after, gone", CHANGES,
                         ids=[f"{c[0].__name__}:{c[1]}" for c in CHANGES])
def test_a_change_shows_on_the_very_next_request_on_every_worker(client, auth, db, world, clock, two_workers,
                                                                   change, path, before, after, gone):
    clock(datetime.datetime(2026, 11, 24, 12, 0, tzinfo=UTC))
    world.newcomer = db.add_producer("fern@example.com", "Fern Bakery", status="pending")
    if change in (add_closure, fill_slot):
        world.gate = db.add_slot(world.collection[world.producer], 5, "09:00", "12:00")
    path = path.format(product=world.product, producer=world.producer)
    for worker in (0, 1):
        two_workers(worker)
        page = warm(client, path)
        assert before in page and (after is None or after not in page)
    two_workers(0)
    change(client, auth, db, world)
    with client.session_transaction() as session:
        session.clear()  # a visitor who never logged in; the change's own "logged out" message is not theirs
    for worker in (0, 1):
        two_workers(worker)
        state, page = get(client, path)
        assert state == "miss", f"worker {worker} served the page from before the change"
        assert (after is None or after in page) and (gone is None or gone not in page)
        assert warm(client, path) == page


def test_ordering_closing_at_a_cutoff_shows_without_any_change(client, db, world, clock, gate):
    path = f"/producers/{world.producer}"
    clock(datetime.datetime(2026, 11, 27, 8, 59, 59, tzinfo=UTC))  # Friday, a second before Saturday's cutoff
    page = warm(client, path)
    assert re.search(r"Next: Sat 28 Nov 2026", page)
    clock(datetime.datetime(2026, 11, 27, 9, 0, 0, tzinfo=UTC))
    state, page = get(client, path)
    assert state == "miss" and re.search(r"Next: Sat 5 Dec 2026", page)


def test_a_new_day_brings_new_times_into_view(client, db, world, clock, gate):
    path = f"/producers/{world.producer}"
    clock(datetime.datetime(2026, 11, 23, 23, 59, 59, tzinfo=UTC))
    assert "12 Dec 2026" not in warm(client, path), "the 14 days ahead end on Sunday 6 Dec"
    clock(datetime.datetime(2026, 11, 30, 0, 0, 0, tzinfo=UTC))
    state, page = get(client, path)
    assert state == "miss" and "12 Dec 2026" in page


@pytest.mark.parametrize("role", ["customer", "producer"])
def test_a_logged_in_visitor_never_receives_a_cached_page(client, auth, world, role):
    warm(client, "/products")
    getattr(auth, f"login_{role}")()
    state, page = get(client, "/products")
    assert state is None and "Log out" in page
    assert "no-store" in client.get("/products").headers["Cache-Control"]
    auth.logout()
    get(client, "/products")  # shows "You are logged out" once
    assert "Log out" not in warm(client, "/products")


def test_a_page_made_for_someone_is_never_kept(client, auth, db, world):
    """The logged-in product page has a CSRF token and a cart badge; none of it reaches a visitor."""
    auth.login_customer()
    db.add_to_cart(world.customer, world.low_product, 2)
    own = client.get(f"/products/{world.product}").get_data(as_text=True)
    assert 'name="csrf_token"' in own and "Jane" in own
    auth.logout()
    get(client, "/")  # shows "You are logged out" once
    state, page = get(client, f"/products/{world.product}")
    assert state == "miss"
    assert "csrf_token" not in page and "Jane" not in page and 'class="count"' not in page


def test_a_visitor_with_a_message_or_a_guest_cart_gets_a_fresh_page(client, world):
    path = f"/products/{world.product}"
    warm(client, path)
    response = client.post("/cart/add", data={"product_id": world.product, "quantity": 2})
    assert response.status_code == 302  # in the guest's basket, with a message
    with client.session_transaction() as session:
        session.pop("_flashes", None)
        assert session["basket"] == {str(world.product): 2}
    assert get(client, path)[0] is None, "a guest basket in the session"
    with client.session_transaction() as session:
        session.clear()
        session["_flashes"] = [("success", "Hello")]
    state, page = get(client, path)
    assert state is None and "Hello" in page
    assert get(client, path)[0] == "hit"


def test_a_visitor_adds_from_a_cached_page_and_lands_in_the_cart_after_login(client, db, world):
    page = warm(client, f"/products/{world.product}")
    assert re.search(r'<form method="post" action="/cart/add" class="add-to-cart" novalidate>', page)
    assert "csrf_token" not in page, "no token, so the page stays in the cache"
    assert get(client, f"/products/{world.product}")[0] == "hit"
    added = client.post("/cart/add", data={"product_id": world.product, "quantity": 3,
                                            "next": f"/products/{world.product}"})
    assert added.status_code == 302 and added.headers["Location"] == f"/products/{world.product}"
    response = client.post("/login/customer", data={"email": "jane@example.com", "password": PASSWORD})
    assert response.status_code == 302 and response.headers["Location"] == "/cart"
    assert db.cart(world.customer) == {world.product: 3}


def test_a_link_that_adds_on_the_way_to_login_still_works(client, db, world):
    login = client.get(f"/login/customer?add={world.product}&quantity=3").get_data(as_text=True)
    assert "3 × Potatoes goes into your cart" in login
    assert f'href="/signup/customer?add={world.product}&amp;quantity=3"' in login
    response = client.post(f"/login/customer?add={world.product}&quantity=3",
                           data={"email": "jane@example.com", "password": PASSWORD})
    assert response.status_code == 302 and response.headers["Location"] == "/cart"
    assert db.cart(world.customer) == {world.product: 3}


def test_a_visitor_s_add_to_cart_also_works_through_signup(client, db, world):
    response = client.post(f"/signup/customer?add={world.low_product}&quantity=1",
                           data={"name": "Ada", "email": "ada@example.com", "password": "long enough pw",
                                 "confirm": "long enough pw"})
    assert response.status_code == 302 and response.headers["Location"] == "/cart"
    ada = db.value("SELECT customer_id FROM customer WHERE email = 'ada@example.com'")
    assert db.cart(ada) == {world.low_product: 1}


@pytest.mark.parametrize("args, message", [("add=99999&quantity=1", "no longer available"),
                                           ("add=abc&quantity=1", "cannot be found"),
                                           ("add={product}&quantity=0", "more than 0 and at most 1,000,000"),
                                           ("add={product}&quantity=-4", "more than 0 and at most 1,000,000"),
                                           ("add={product}&quantity=99999999999", "more than 0 and at most 1,000,000")])
def test_a_visitor_s_bad_addition_is_explained_and_adds_nothing(client, db, world, args, message):
    args = args.format(product=world.product)
    assert message in client.get(f"/login/customer?{args}").get_data(as_text=True)
    before = db.cart(world.customer)
    assert client.post(f"/login/customer?{args}", data={"email": "jane@example.com", "password": PASSWORD}
                       ).status_code == 302
    assert db.cart(world.customer) == before


def test_the_cache_is_bounded_in_bytes_and_drops_the_least_recently_used():
    one = pagecache.entry_cost("/p0", b"x" * 30)
    assert one > 30 + len("/p0"), "an entry costs its key and bookkeeping too"
    cache = pagecache.PageCache(max_bytes=3 * one + 10)
    for n in range(5):
        cache.put(1, f"/p{n}", b"x" * 30)
    assert cache.size <= 3 * one + 10 and cache.get(1, "/p0") is None and cache.get(1, "/p4") == b"x" * 30
    cache.get(1, "/p2")
    cache.put(1, "/p5", b"y" * 30)
    assert cache.get(1, "/p2") is not None and cache.get(1, "/p3") is None
    cache.put(2, "/p6", b"z")
    assert cache.size == pagecache.entry_cost("/p6", b"z") and cache.get(1, "/p4") is None, \
        "a newer version empties the store"
    cache.put(1, "/old", b"o")
    assert cache.get(1, "/old") is None and cache.get(2, "/p6") == b"z"
    cache.put(2, "/huge", b"h" * 3 * one)
    assert cache.get(2, "/huge") is None
    cache.put(2, "/soon", b"s", expires=1000.0)
    assert cache.get(2, "/soon", now=999.0) == b"s" and cache.get(2, "/soon", now=1000.0) is None


def test_the_cache_can_be_turned_off(app, client, world):
    app.config["PAGE_CACHE_MB"] = 0
    try:
        client.get("/products")
        assert client.get("/products").headers.get("X-Page-Cache") is None
    finally:
        app.config["PAGE_CACHE_MB"] = 16


def test_three_thousand_long_unique_urls_keep_the_cache_within_its_budget():
    """Keys and each entry's bookkeeping count too, not only the pages: small pages under long URLs were the
    way past the budget."""
    import gc
    import tracemalloc
    budget = 1024 * 1024
    cache = pagecache.PageCache(budget)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for n in range(3000):
        key = f"/products?q={n:05d}{'long search words ' * 110}"
        cache.put(1, key, f"<p>No product matches {n}.</p>".encode() * 8, 1e12 + n)
    gc.collect()
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert cache.size <= budget
    assert held <= budget, f"the cache holds {held:,} bytes for a budget of {budget:,}"
    assert 0 < len(cache.entries) < 3000, "the oldest went first"


@pytest.mark.parametrize("path", ["/products?page=1&q=cheese", "/products?q=cheese&q=bread", "/products?utm=x",
                                  "/products?q=cheese&nonce=1", "/?x=1", "/producers?page=1&page=2"])
def test_a_url_that_is_not_canonical_is_rendered_but_never_kept(client, world, path):
    assert get(client, path)[0] is None and get(client, path)[0] is None


@pytest.mark.parametrize("path", ["/products?q=cheese&page=1", "/products?category=Bakery&sort=name", "/",
                                  "/producers?page=1"])
def test_a_canonical_url_is_kept(client, world, path):
    assert get(client, path)[0] == "miss"
    assert get(client, path)[0] == "hit"


def test_the_host_header_does_not_make_a_new_cache_entry(client, world):
    get(client, "/products")
    assert client.get("/products", headers={"Host": "made-up.example"}).headers["X-Page-Cache"] == "hit"


# --- The shared card grid, for logged-in people too ------------------------------------------

def grid_entries():
    return {key: body for key, (body, _) in app_module.page_cache.entries.items() if key.startswith("grid:")}


def test_customers_share_the_card_grid_and_each_sees_their_own_page_around_it(client, auth, db, world, two_workers):
    db.add_to_cart(world.customer, world.low_product, 1)
    auth.login_customer()
    jane = client.get("/products").get_data(as_text=True)
    assert list(grid_entries()) == ["grid:cart:/products?"]
    auth.login_customer("tom@example.com")
    assert round_trips(client, "/products") == 2, "the account, and the catalogue version: no catalogue query"
    tom = client.get("/products").get_data(as_text=True)
    assert "Tom" in tom and "Jane" not in tom and "Jane" in jane
    grid = grid_entries()["grid:cart:/products?"]
    assert "Potatoes" in grid and "to cart" in grid and grid in tom and grid in jane
    for personal in ("Jane", "Tom", "jane@example.com", "csrf", 'class="count"', "Log out"):
        assert personal not in grid, f"{personal} in a shared grid"


@pytest.mark.parametrize("role, variant, adds", [("customer", "cart", "to cart"), ("producer", "none", None),
                                                 ("operator", "none", None)])
def test_each_role_gets_the_grid_made_for_what_it_may_do(client, auth, db, world, operator, two_workers, role,
                                                          variant, adds):
    getattr(auth, f"login_{role}")()
    page = client.get("/products?category=Vegetables").get_data(as_text=True)
    [(key, grid)] = grid_entries().items()
    assert key == f"grid:{variant}:/products?category=Vegetables"
    assert (adds in grid) if adds else ("card-add" not in grid), "only those who may add see the button"
    assert grid in page


SHARED_GRID_CHANGES = [(change, path, before, after, gone) for change, path, before, after, gone in CHANGES
                       if path in ("/products", "/products?category=Vegetables", "/producers/{producer}")
                       and change not in (add_option, add_slot, add_closure, fill_slot, edit_profile)]


@pytest.mark.parametrize("change, path, before, after, gone", SHARED_GRID_CHANGES,
                         ids=[f"{c[0].__name__}:{c[1]}" for c in SHARED_GRID_CHANGES])
def test_a_change_shows_in_the_shared_grid_on_the_very_next_request_on_every_worker(
        client, auth, db, world, clock, two_workers, change, path, before, after, gone):
    clock(datetime.datetime(2026, 11, 24, 12, 0, tzinfo=UTC))
    path = path.format(product=world.product, producer=world.producer)
    customer = app_module.app.test_client()
    assert customer.post("/login/customer", data={"email": "tom@example.com",
                                                  "password": PASSWORD}).status_code == 302
    for worker in (0, 1):
        two_workers(worker)
        customer.get(path)
        page = customer.get(path).get_data(as_text=True)
        assert before in page and (after is None or after not in page)
        assert any(before in grid for grid in grid_entries().values()), "served from the shared grid"
    two_workers(0)
    change(client, auth, db, world)
    for worker in (0, 1):
        two_workers(worker)
        page = customer.get(path).get_data(as_text=True)
        assert (after is None or after in page) and (gone is None or gone not in page), f"worker {worker}"


# --- Rows and cards kept rendered by their values ----------------------------------------------

def kept(fragment):
    """The row cache's bodies holding fragment."""
    return [body for body, _ in app_module.row_cache.entries.values() if fragment in body]


def each_worker(client, two_workers, path, warm=False):
    """(worker, page) for path as each of the two workers answers it in turn; warm asks each once before, so
    that what it keeps is in use on the second answer."""
    for worker in (0, 1):
        two_workers(worker)
        if warm:
            client.get(path)
        yield worker, client.get(path).get_data(as_text=True)


def row(page, row_id):
    return re.search(rf'<tr[^>]*id="{row_id}".*?</tr>', page, re.S).group(0)


@pytest.mark.parametrize("role, path, row_id, before, changes, after, gone", [
    ("producer", "/dashboard", "product", 'class="stock-level">50<',
     ["UPDATE stock SET quantity_available = 4321 WHERE product_id = %s",
      "UPDATE product SET name = 'Maris Piper' WHERE product_id = %s"],
     ['class="stock-level">4321<', "Maris Piper"], ['class="stock-level">50<', "Potatoes"]),
    ("customer", "/cart", "cart-line", 'value="3"',
     ["UPDATE stock SET quantity_available = 2 WHERE product_id = %s",
      "UPDATE product SET price = 2.10 WHERE product_id = %s"],
     ["Only 2", "Reduce to 2", "Price changed from £1.80 to £2.10"], ["£5.40"]),
])
def test_a_kept_row_shows_a_change_to_its_values_on_the_next_request_on_every_worker(
        client, auth, db, world, two_workers, role, path, row_id, before, changes, after, gone):
    db.add_to_cart(world.customer, world.product, 3)
    auth.login(role, {"producer": "farm@example.com", "customer": "jane@example.com"}[role])
    for worker, page in each_worker(client, two_workers, path, warm=True):
        assert before in row(page, f"{row_id}-{world.product}") and kept(f'id="{row_id}-{world.product}"'), worker
    for change in changes:
        db.execute(change, (world.product,))
    for worker, page in each_worker(client, two_workers, path):
        line = row(page, f"{row_id}-{world.product}")
        assert all(text in line for text in after) and not any(text in line for text in gone), worker


def csrf_tokens(page):
    return set(re.findall(r'name="csrf_token"[^>]*value="([^"]+)"', page))


def test_a_kept_row_carries_each_request_s_own_csrf_token_and_keeps_none(app, client, auth, db, world):
    app.config["WTF_CSRF_ENABLED"] = True

    def log_in():
        page = client.get("/login/producer").get_data(as_text=True)
        client.post("/login/producer", data={"email": "farm@example.com", "password": PASSWORD,
                                             "csrf_token": csrf_tokens(page).pop()})
        return client.get("/dashboard").get_data(as_text=True)
    first = log_in()
    client.post("/logout", data={"csrf_token": csrf_tokens(first).pop()})
    second = log_in()
    stock_row = row(second, f"product-{world.product}")
    assert kept(f'id="product-{world.product}"'), "the second session's row came from the row cache"
    [token] = csrf_tokens(stock_row)
    assert token in csrf_tokens(second) and token not in csrf_tokens(first), "this session's token, not the last"
    for body, _ in app_module.row_cache.entries.values():
        assert not csrf_tokens(body) - {app_module.TOKEN_MARK}, "no token is kept"
    response = client.post("/dashboard/update-stock", data={"product_id": world.product, "quantity": "12",
                                                            "csrf_token": token})
    assert response.status_code == 302
    assert db.value("SELECT quantity_available FROM stock WHERE product_id = %s", (world.product,)) == 12


def test_a_card_is_shared_across_searches_and_returns_to_each_page_s_own_url(client, auth, world):
    auth.login_customer()
    client.get("/products?q=potato")
    page = client.get("/products?sort=price_asc&q=potatoes").get_data(as_text=True)
    [card] = kept(f"/products/{world.product}\"")
    assert app_module.NEXT_MARK in card and "q=potato" not in card, "kept without the page it was made on"
    assert 'name="next" value="/products?sort=price_asc&amp;q=potatoes"' in page
    assert "to cart" in card and "to basket" not in card
    auth.logout()
    visitor = client.get("/products?q=potatoes&sort=name").get_data(as_text=True)
    assert "to basket" in visitor and 'name="next" value="/products?q=potatoes&amp;sort=name"' in visitor
    assert len(kept(f"/products/{world.product}\"")) == 2, "a visitor's card is another variant"


def test_a_guest_s_basket_lines_are_never_kept(client, db, world, two_workers):
    client.post("/cart/add", data={"product_id": world.product, "quantity": "2"}, headers={"Origin": "http://localhost"})
    page = client.get("/cart").get_data(as_text=True)
    assert 'value="2"' in row(page, f"cart-line-{world.product}")
    assert not kept(f'id="cart-line-{world.product}"')


def checkout_keys(page):
    return re.findall(r'name="checkout_key"[^>]*value="([^"]+)"', page)


def test_the_kept_checkout_form_carries_each_request_s_own_key_and_token_and_keeps_neither(
        app, client, auth, db, world, two_workers):
    app.config["WTF_CSRF_ENABLED"] = True
    db.add_to_cart(world.customer, world.product, 1)
    page = client.get("/login/customer").get_data(as_text=True)
    client.post("/login/customer", data={"email": "jane@example.com", "password": PASSWORD,
                                         "csrf_token": csrf_tokens(page).pop()})
    first, second = (client.get("/cart").get_data(as_text=True) for _ in range(2))
    sections = kept('id="checkout-form"')
    assert len(sections) == 2 and len(kept_carts()) == 1, "the form as a row, and the cart kept whole around it"
    for section in sections:
        assert not set(checkout_keys(first) + checkout_keys(second)) & set(checkout_keys(section)), "no key is kept"
        assert csrf_tokens(section) == {app_module.TOKEN_MARK}, "no token is kept"
    assert "\x00" not in second and len(set(checkout_keys(first) + checkout_keys(second))) == 2, "a new key each time"
    [key], [token] = checkout_keys(second), csrf_tokens(re.search(r'<form[^>]*id="checkout-form".*?</form>', second,
                                                                   re.S).group(0))
    response = client.post("/checkout", data=world.choose(checkout_key=key, csrf_token=token))
    assert response.status_code == 302
    assert db.value("SELECT checkout_key FROM orders WHERE customer_id = %s ORDER BY order_id DESC LIMIT 1",
                    (world.customer,)) == key


def kept_carts():
    """The row cache's kept carts: their blocks, with their checkout key's mark."""
    return [body for body in kept_pages() if app_module.CHECKOUT_KEY_MARK in body]


def change_quantity(client, auth, db, world):
    db.execute("UPDATE cart_item SET quantity = 5 WHERE customer_id = %s", (world.customer,))


def change_payment_info(client, auth, db, world):
    db.execute("UPDATE producer SET payment_info = 'Cash or card at the gate.' WHERE producer_id = %s",
               (world.producer,))


def rename_option(client, auth, db, world):
    db.execute("UPDATE fulfilment_option SET name = 'Orchard shed' WHERE option_id = %s",
               (world.collection[world.producer],))


def short_stock(client, auth, db, world):
    db.execute("UPDATE stock SET quantity_available = 2 WHERE product_id = %s", (world.product,))


CART_CHANGES = [
    # (change, shown only after, gone after)
    (change_quantity, 'value="5"', 'value="3"'),
    (change_payment_info, "Cash or card at the gate.", None),
    (short_stock, "Only 2 left.", None),
    (rename_producer, "Quillfield Growers", None),
    (rename_option, "Orchard shed", None),
    (pause_options, "is not taking orders yet", SATURDAY),
    (add_closure, None, SATURDAY),
    (fill_slot, "Full: " + SATURDAY, None),
]


@pytest.mark.parametrize("change, after, gone", CART_CHANGES, ids=[c[0].__name__ for c in CART_CHANGES])
def test_a_kept_cart_shows_each_change_on_the_next_request_on_every_worker(
        client, auth, db, world, clock, two_workers, monkeypatch, change, after, gone):
    monkeypatch.setattr(catalogue, "offer_store", {"version": None, "offers": {}})
    clock(datetime.datetime(2026, 11, 24, 12, 0, tzinfo=UTC))
    world.gate = db.add_slot(world.collection[world.producer], 5, "09:00", "12:00")
    db.add_to_cart(world.customer, world.product, 3)
    auth.login_customer()
    for worker, page in each_worker(client, two_workers, "/cart", warm=True):
        assert SATURDAY in page and 'value="3"' in page and len(kept_carts()) == 1, worker
        assert (after is None or after not in page), worker
    change(client, auth, db, world)
    auth.login_customer()
    for worker, page in each_worker(client, two_workers, "/cart"):
        assert after is None or after in page, worker
        assert gone is None or gone not in page, worker


def test_a_kept_cart_moves_on_when_a_cutoff_passes_though_nothing_else_changes(client, auth, db, world, clock,
                                                                             two_workers, monkeypatch):
    """Two times on offer, none chosen: only the offer itself (its stamp) tells the page before from after."""
    monkeypatch.setattr(catalogue, "offer_store", {"version": None, "offers": {}})
    db.add_slot(world.collection[world.producer], 5, "09:00", "12:00")
    db.add_slot(world.collection[world.producer], 6, "09:00", "12:00")
    db.add_to_cart(world.customer, world.product, 1)
    auth.login_customer()
    clock(datetime.datetime(2026, 11, 27, 8, 59, 59, tzinfo=UTC))  # Friday, a second before Saturday's cutoff
    for worker, page in each_worker(client, two_workers, "/cart", warm=True):
        assert "Sat 28 Nov 2026" in page and "Sun 29 Nov 2026" in page and len(kept_carts()) == 1, worker
    clock(datetime.datetime(2026, 11, 27, 9, 0, 0, tzinfo=UTC))
    for worker, page in each_worker(client, two_workers, "/cart"):
        assert "Sat 28 Nov 2026" not in page and "Sun 29 Nov 2026" in page, worker


def test_a_kept_cart_is_only_ever_its_own_customer_s(app, client, auth, db, world, two_workers):
    app.config["WTF_CSRF_ENABLED"] = True
    other = db.add_customer("sam@example.com", "Sam")
    for customer in (world.customer, other):
        db.add_to_cart(customer, world.product, 2)
    pages = {}
    for email in ("jane@example.com", "sam@example.com"):
        page = client.get("/login/customer").get_data(as_text=True)
        client.post("/login/customer", data={"email": email, "password": PASSWORD, "csrf_token": csrf_tokens(page).pop()})
        client.get("/cart")
        pages[email] = client.get("/cart").get_data(as_text=True)
        client.post("/logout", data={"csrf_token": csrf_tokens(pages[email]).pop()})
    assert len(kept_carts()) == 2, "the same cart's values, kept once for each customer"
    assert not csrf_tokens(pages["jane@example.com"]) & csrf_tokens(pages["sam@example.com"])
    assert not set(checkout_keys(pages["jane@example.com"])) & set(checkout_keys(pages["sam@example.com"]))
    for body in kept_carts():
        assert csrf_tokens(body) == {app_module.TOKEN_MARK} and checkout_keys(body) == [app_module.CHECKOUT_KEY_MARK]


def test_the_checkout_form_s_errors_and_values_show_on_a_kept_form(client, auth, db, world):
    db.add_to_cart(world.customer, world.product, 1)
    auth.login_customer()
    client.get("/cart")
    client.get("/cart")
    response = client.post("/checkout", data=world.choose("delivery", delivery_address="", postcode="BS1 4DJ"))
    page = response.get_data(as_text=True)
    assert response.status_code == 400 and "Enter a delivery address" in page and 'value="BS1 4DJ"' in page
    assert "Enter a delivery address" not in client.get("/cart").get_data(as_text=True)


def test_a_day_s_list_is_kept_and_a_change_shows_on_the_next_request_on_every_worker(
        client, auth, db, world, two_workers):
    day = db.value("SELECT CURDATE() + INTERVAL 1 DAY")
    db.execute("UPDATE orders SET fulfilment_date = %s, slot_start = '09:00', slot_end = '12:00' WHERE order_id = %s",
               (day, world.order))
    auth.login_producer()
    path = f"/dashboard/schedule/{day.isoformat()}"
    for worker, page in each_worker(client, two_workers, path, warm=True):
        assert "Jane" in page and "2 x Potatoes (kg)" in page and kept(f'id="packing-{world.order}"'), worker
    db.execute("UPDATE customer SET first_name = 'Janet' WHERE customer_id = %s", (world.customer,))
    db.execute("UPDATE order_item SET quantity = 5 WHERE order_id = %s", (world.order,))
    db.execute("UPDATE product SET name = 'Maris Piper' WHERE product_id = %s", (world.product,))
    for worker, page in each_worker(client, two_workers, path):
        assert "Janet" in page and "5 x Maris Piper (kg)" in page and "Potatoes" not in page, f"worker {worker}"


# --- A producer's own pages, kept under their version -------------------------------------------

def kept_pages():
    """The row cache's kept pages (their blocks, as render_kept keeps them)."""
    return [body for body, _ in app_module.row_cache.entries.values() if app_module.BLOCK_MARK in body]


def for_tomorrow(db, order_id):
    day = db.value("SELECT CURDATE() + INTERVAL 1 DAY")
    db.execute("UPDATE orders SET fulfilment_date = %s, slot_start = '09:00', slot_end = '12:00' WHERE order_id = %s",
               (day, order_id))
    return day


def new_order(db, world):
    return db.add_order(world.other_customer, [(world.low_product, 1, "1.10")])


# Each kind of change a producer's page shows, made alone, as the database's triggers must see it: (page, change
# (db, world) -> a new row's id or None, what the page then shows, and what it no longer shows).
KEPT_PAGE_CHANGES = {
    "a customer's name": ("day", lambda db, w: db.execute(
        "UPDATE customer SET first_name = 'Janet' WHERE customer_id = %s", (w.customer,)), "· Janet\n", "· Jane\n"),
    "a customer's email": ("day", lambda db, w: db.execute(
        "UPDATE customer SET email = 'janet@example.com' WHERE customer_id = %s", (w.customer,)),
        "mailto:janet@example.com", "mailto:jane@example.com"),
    "a line alone": ("day", lambda db, w: db.execute(
        "UPDATE order_item SET quantity = 5 WHERE order_id = %s", (w.order,)), "5 x Potatoes", "2 x Potatoes"),
    "a product's name": ("day", lambda db, w: db.execute(
        "UPDATE product SET name = 'Maris Piper' WHERE product_id = %s", (w.product,)), "Maris Piper", "Potatoes"),
    "an order's status": ("day", lambda db, w: db.execute(
        "UPDATE orders SET status = 'ready' WHERE order_id = %s", (w.order,)), "Ready to collect", "· Pending"),
    "an order placed for the day": ("day", lambda db, w: for_tomorrow(db, new_order(db, w)) and None,
                                    "1 x Kale", None),
    "stock": ("dashboard", lambda db, w: db.execute(
        "UPDATE stock SET quantity_available = 4321 WHERE product_id = %s", (w.product,)),
        'class="stock-level">4321<', 'class="stock-level">50<'),
    "collection and delivery paused": ("dashboard", lambda db, w: db.execute(
        "UPDATE fulfilment_option SET is_active = 0 WHERE producer_id = %s", (w.producer,)),
        "Customers cannot order from you yet", None),
    "a new product": ("dashboard", lambda db, w: db.add_product(w.producer, "Leeks", "0.90"), "Leeks", None),
    "an order placed": ("dashboard", lambda db, w: new_order(db, w), 'id="pending-{new}"', None),
    "an order removed": ("dashboard", lambda db, w: db.delete_orders("order_id = %s", (w.order,)), None,
                         'id="pending-{order}"'),
    "a pending customer's name": ("dashboard", lambda db, w: db.execute(
        "UPDATE customer SET first_name = 'Janet' WHERE customer_id = %s", (w.customer,)), "· Janet ·", "· Jane ·"),
}


@pytest.mark.parametrize("change", KEPT_PAGE_CHANGES)
def test_a_producer_s_kept_page_shows_each_kind_of_change_on_the_next_request_on_every_worker(
        client, auth, db, world, two_workers, change):
    kind, make, after, gone = KEPT_PAGE_CHANGES[change]
    path = "/dashboard" if kind == "dashboard" else f"/dashboard/schedule/{for_tomorrow(db, world.order).isoformat()}"
    auth.login_producer()
    for worker, page in each_worker(client, two_workers, path, warm=True):
        assert kept_pages() and (gone is None or gone.format(order=world.order) in page), f"worker {worker}"
    new = make(db, world)
    for worker, page in each_worker(client, two_workers, path):
        assert after is None or after.format(new=new) in page, f"worker {worker}"
        assert gone is None or gone.format(order=world.order) not in page, f"worker {worker}"


def test_a_kept_page_is_given_only_to_its_own_producer_with_this_request_s_header_and_messages(
        client, auth, db, world, two_workers):
    auth.login_producer()
    client.get("/dashboard")
    mine = client.get("/dashboard").get_data(as_text=True)
    assert len(kept_pages()) == 1 and "Hartley Farm" in mine
    with client.session_transaction() as session:
        session["_flashes"] = [("success", "A message for this request")]
    page = client.get("/dashboard").get_data(as_text=True)
    assert "A message for this request" in page and len(kept_pages()) == 1, "the layout is rendered afresh"
    auth.logout()
    auth.login_producer("dairy@example.com")
    theirs = client.get("/dashboard").get_data(as_text=True)
    assert "Rosehill Dairy" in theirs and "Hartley Farm" not in theirs and "Potatoes" not in theirs
    assert len(kept_pages()) == 2


def test_a_page_rendered_afresh_is_kept_under_the_version_its_values_are_of(app, db, world):
    import producers
    from db import query

    def version():
        return db.value(f"SELECT {catalogue.PRODUCER_VERSION.format(producer='%s')}", (world.producer,))

    def load():
        db.execute("UPDATE stock SET quantity_available = 77 WHERE product_id = %s", (world.product,))
        return query("SELECT quantity_available FROM stock WHERE product_id = %s", (world.product,), one=True)
    before = version()
    with app.test_request_context():
        read, values = producers.as_of_version(world.producer, load)
    assert (read, values["quantity_available"]) == (before, 50), "the version and the values of one snapshot"
    assert version() > before, "the change committed meanwhile raised the version"


# --- A cart's offers, kept under the catalogue version -------------------------------------------

CART_OFFER_CHANGES = [
    # (change, shown before, shown only after, gone after)
    (pause_options, SATURDAY, "is not taking orders yet", SATURDAY),
    (add_option, "Gate", "Saturday market stall", None),
    (add_closure, SATURDAY, None, SATURDAY),
    (fill_slot, 'value="' , "Full: " + SATURDAY, None),
]


@pytest.mark.parametrize("change, before, after, gone", CART_OFFER_CHANGES, ids=[c[0].__name__ for c in CART_OFFER_CHANGES])
def test_a_change_to_a_cart_s_offers_shows_on_the_next_request_on_every_worker(
        client, auth, db, world, clock, two_workers, monkeypatch, change, before, after, gone):
    stores = [{"version": None, "offers": {}}, {"version": None, "offers": {}}]
    clock(datetime.datetime(2026, 11, 24, 12, 0, tzinfo=UTC))
    world.gate = db.add_slot(world.collection[world.producer], 5, "09:00", "12:00")
    db.add_to_cart(world.customer, world.product, 1)
    auth.login_customer()
    for worker in (0, 1):
        monkeypatch.setattr(catalogue, "offer_store", stores[worker])
        client.get("/cart")
        assert before in client.get("/cart").get_data(as_text=True) and stores[worker]["offers"], f"worker {worker}"
    change(client, auth, db, world)
    for worker in (0, 1):
        monkeypatch.setattr(catalogue, "offer_store", stores[worker])
        page = client.get("/cart").get_data(as_text=True)
        assert (after is None or after in page) and (gone is None or gone not in page), f"worker {worker}"


def test_a_sale_keeps_a_cart_s_offers_but_shows_at_once_on_the_catalogue(client, auth, db, world, monkeypatch):
    """Offers show no stock: a sale raises the catalogue's version, not the part the offers are kept under."""
    store = {"version": None, "offers": {}}
    monkeypatch.setattr(catalogue, "offer_store", store)
    db.add_to_cart(world.customer, world.product, 1)
    auth.login_customer()
    client.get("/cart")
    kept, catalogue_before = store["offers"][world.producer], client.get("/products").get_data(as_text=True)
    db.execute("UPDATE stock SET quantity_available = 7, reorder_threshold = 10 WHERE product_id = %s",
               (world.product,))
    assert round_trips_of(client, lambda: client.get("/cart"), 200) == 2
    assert store["offers"][world.producer] is kept
    after = client.get("/products").get_data(as_text=True)
    assert after.count("Low stock") == catalogue_before.count("Low stock") + 1


@pytest.mark.parametrize("change", [pause_options, add_closure, fill_slot])
def test_a_checkout_takes_no_time_its_worker_kept_before_a_change_to_it(client, auth, db, world, clock, monkeypatch,
                                                                         change):
    monkeypatch.setattr(catalogue, "offer_store", {"version": None, "offers": {}})
    clock(datetime.datetime(2026, 11, 24, 12, 0, tzinfo=UTC))
    world.gate = db.add_slot(world.collection[world.producer], 5, "09:00", "12:00")
    db.add_to_cart(world.customer, world.product, 1)
    auth.login_customer()
    assert SATURDAY in client.get("/cart").get_data(as_text=True)
    change(client, auth, db, world)
    with db.unchanged():
        response = client.post("/checkout", data={f"when_{world.producer}": f"{world.gate}@2026-11-28"})
        assert response.status_code in (400, 409)


def test_a_cart_s_kept_offers_move_on_when_a_cutoff_passes(client, auth, db, world, clock, monkeypatch):
    monkeypatch.setattr(catalogue, "offer_store", {"version": None, "offers": {}})
    db.add_slot(world.collection[world.producer], 5, "09:00", "12:00")
    db.add_to_cart(world.customer, world.product, 1)
    auth.login_customer()
    clock(datetime.datetime(2026, 11, 27, 8, 59, 59, tzinfo=UTC))  # Friday, a second before Saturday's cutoff
    client.get("/cart")
    assert "Sat 28 Nov 2026" in client.get("/cart").get_data(as_text=True)
    clock(datetime.datetime(2026, 11, 27, 9, 0, 0, tzinfo=UTC))
    page = client.get("/cart").get_data(as_text=True)
    assert "Sat 28 Nov 2026" not in page and "Sat 5 Dec 2026" in page
