"""Catalogue browsing: search, filters, sorting, pagination, producer pages; query counts; kept connections."""
import re

import pytest
from flask import url_for

from conftest import round_trips
from db import mysql


def names(page):
    return re.findall(r'<h\d class="card-title"><a href="/products/\d+">([^<]+)</a>', page)


@pytest.fixture
def shelf(db, world):
    """A small catalogue with known names, prices, categories and ages."""
    honey = db.add_producer("bees@example.com", "Bramble Apiary")
    ids = {
        "heather": db.add_product(honey, "Heather honey", "8.00", category="Pantry", unit="jar"),
        "clover": db.add_product(honey, "Clover honey", "6.50", category="Pantry", unit="jar"),
        "wax": db.add_product(honey, "Beeswax candle", "4.00", category="Flowers & Plants", unit="each"),
        "loaf": db.add_product(world.other_producer, "Honey oat loaf", "3.10", category="Bakery", unit="loaf"),
    }
    db.execute("UPDATE product SET description = 'Made with our wildflower honey' WHERE product_id = %s",
               (ids["wax"],))
    db.index_search("p.product_id = %s", (ids["wax"],))
    for age, key in enumerate(["heather", "clover", "wax", "loaf"]):
        db.execute("UPDATE product SET created_at = NOW() - INTERVAL %s DAY WHERE product_id = %s", (age, ids[key]))
    return dict(ids, apiary=honey)


def test_search_covers_name_description_and_producer_name(client, shelf):
    assert names(client.get("/products?q=honey&sort=name").get_data(as_text=True)) == [
        "Beeswax candle", "Clover honey", "Heather honey", "Honey oat loaf"]
    assert names(client.get("/products?q=apiary&sort=name").get_data(as_text=True)) == [
        "Beeswax candle", "Clover honey", "Heather honey"]
    assert names(client.get("/products?q=HEATHER hon").get_data(as_text=True)) == ["Heather honey"]
    assert names(client.get("/products?q=rosehill&sort=name").get_data(as_text=True)) == ["Honey oat loaf", "Milk"]


def test_search_hides_unavailable_products(client, db, shelf):
    db.execute("UPDATE product SET is_available = 0 WHERE product_id = %s", (shelf["clover"],))
    assert "Clover honey" not in names(client.get("/products?q=honey").get_data(as_text=True))


def test_category_and_producer_filters(client, world, shelf):
    assert names(client.get("/products?category=Pantry").get_data(as_text=True)) == ["Clover honey", "Heather honey"]
    assert names(client.get(f"/products?producer={shelf['apiary']}&category=Pantry&q=heather")
                 .get_data(as_text=True)) == ["Heather honey"]


@pytest.mark.parametrize("sort, expected", [
    ("name", ["Beeswax candle", "Clover honey", "Heather honey", "Honey oat loaf"]),
    ("price_asc", ["Honey oat loaf", "Beeswax candle", "Clover honey", "Heather honey"]),
    ("price_desc", ["Heather honey", "Clover honey", "Beeswax candle", "Honey oat loaf"]),
    ("newest", ["Heather honey", "Clover honey", "Beeswax candle", "Honey oat loaf"]),
])
def test_sorts(client, shelf, sort, expected):
    assert names(client.get(f"/products?q=honey&sort={sort}").get_data(as_text=True)) == expected


def test_pages_of_24_with_a_count_and_links_that_keep_the_filters(client, db, world):
    for n in range(30):
        db.add_product(world.producer, f"Pumpkin {n:02d}", category="Vegetables")
    first = client.get("/products?q=pumpkin&category=Vegetables&sort=price_desc").get_data(as_text=True)
    assert "30 products matching “pumpkin”" in first
    assert len(names(first)) == 24
    link = re.search(r'href="(/products\?[^"]*page=2[^"]*)"', first).group(1).replace("&amp;", "&")
    assert "q=pumpkin" in link and "category=Vegetables" in link and "sort=price_desc" in link
    second = client.get(link).get_data(as_text=True)
    assert len(names(second)) == 6
    assert not set(names(first)) & set(names(second))


def test_empty_results_have_an_empty_state(client, shelf):
    page = client.get("/products?q=zebra").get_data(as_text=True)
    assert "0 products" in page and "Nothing matches “zebra”" in page


@pytest.mark.parametrize("query", ["page=-1", "page=abc", "page=99999", "page=0", "page=1e3", "sort=bogus",
                                   "q=" + "x" * 10_000, "category=Weapons", "producer=abc", "producer=-5",
                                   "producer=99999999999999", "q=%00%FF", "q=a", "q=the", "q=\"unbalanced",
                                   "q=+++---***", "q=%27%20OR%201%3D1", "sort=name%3BDROP"])
def test_bad_parameters_fall_back_to_defaults(client, shelf, query):
    response = client.get(f"/products?{query}")
    assert response.status_code == 200
    assert "Traceback" not in response.get_data(as_text=True)


def test_page_beyond_the_end_shows_the_first_page(client, shelf):
    assert names(client.get("/products?page=99999").get_data(as_text=True)) == names(
        client.get("/products").get_data(as_text=True))


def test_unknown_category_falls_back_to_all(client, shelf):
    assert names(client.get("/products?category=Weapons").get_data(as_text=True)) == names(
        client.get("/products").get_data(as_text=True))


def test_producers_list_with_product_counts(client, db, world, shelf):
    db.execute("UPDATE product SET is_available = 0 WHERE product_id = %s", (shelf["wax"],))
    page = client.get("/producers").get_data(as_text=True)
    entry = page.split(f'id="producer-{shelf["apiary"]}"')[1].split("</li>")[0]
    assert "Bramble Apiary" in entry and "2 products" in entry
    assert "Hartley Farm" in page and "Rosehill Dairy" in page


def test_producer_page_lists_their_available_products(client, db, world, shelf):
    for n in range(26):
        db.add_product(shelf["apiary"], f"Comb {n:02d}")
    page = client.get(f"/producers/{shelf['apiary']}").get_data(as_text=True)
    assert "<h1>Bramble Apiary</h1>" in page and "29 products" in page
    assert "Honey oat loaf" not in page
    assert f'href="/producers/{shelf["apiary"]}?page=2"' in page
    assert client.get("/producers/999999").status_code == 404


@pytest.mark.parametrize("role, path", [(None, "/products"), (None, "/products?q=item"), ("customer", "/cart"),
                                        ("customer", "/orders"), ("producer", "/dashboard"),
                                        ("producer", "/dashboard/orders"), (None, "/producers")])
def test_statements_per_page_do_not_grow_with_the_rows_shown(client, auth, db, world, role, path):
    if role:
        getattr(auth, f"login_{role}")()
    db.add_to_cart(world.customer, world.low_product, 1)  # a cart with one line costs what one with many does
    few = round_trips(client, path)
    for n in range(30):
        product = db.add_product(world.producer, f"Item {n:02d}", quantity=0 if n % 3 else 50, threshold=5)
        db.add_to_cart(world.customer, product, 1)
        db.add_order(world.customer, [(product, 1, "1.00"), (world.product, 2, "1.80")], status="pending")
        db.add_producer(f"p{n}@example.com", f"Farm {n}")
    many = round_trips(client, path)
    assert many == few, f"{path}: {few} round trips with few rows, {many} with many"
    assert few <= 10


@pytest.mark.parametrize("path", ["/products", "/products?q=potatoes", "/products?category=Vegetables&in_stock=1",
                                  "/products?producer=1&sort=price_desc"])
def test_a_catalogue_page_costs_one_round_trip_and_no_ping_or_rollback(client, world, path):
    assert round_trips(client, path) == 1, "the page, with its count"


def test_a_connection_idle_longer_than_the_setting_is_pinged_first(app, client, world):
    app.config["MYSQL_PING_AFTER_SECONDS"] = 0
    # The request pings and reads the page; reading the server's count afterwards pings once more.
    assert round_trips(client, "/products") == 3


def test_a_kept_connection_that_the_server_dropped_is_replaced(app, client, db, world):
    assert client.get("/products").status_code == 200
    with app.app_context():
        thread_id = mysql.connection.thread_id()
    db.execute(f"KILL {int(thread_id)}")
    assert client.get("/products").status_code == 200
    with app.app_context():
        assert mysql.connection.thread_id() != thread_id


def test_a_transaction_left_open_is_rolled_back_at_the_end_of_the_request(app, db, world):
    with app.test_request_context("/"):
        cur = mysql.connection.cursor()
        cur.execute("START TRANSACTION")
        cur.execute("UPDATE stock SET quantity_available = 0 WHERE product_id = %s", (world.product,))
        cur.close()
        app.do_teardown_appcontext()
    assert db.stock(world.product) == 50
    with app.app_context():
        cur = mysql.connection.cursor()
        cur.execute("SELECT quantity_available FROM stock WHERE product_id = %s", (world.product,))
        assert cur.fetchone()["quantity_available"] == 50, "the kept connection sees no leftover change"
        cur.close()


def test_connections_are_kept_per_thread_and_can_be_switched_off(app, client, world):
    client.get("/products")
    with app.app_context():
        kept = mysql.connection.thread_id()
    client.get("/products")
    with app.app_context():
        assert mysql.connection.thread_id() == kept
    app.config["MYSQL_REUSE_CONNECTIONS"] = False
    with app.app_context():
        first = mysql.connection.thread_id()
    with app.app_context():
        assert mysql.connection.thread_id() != first


def test_catalogue_counts_stay_exact_through_every_kind_of_product_change(client, auth, db, world, shelf):
    def shown(category=None):
        page = client.get("/products", query_string={"category": category} if category else {}).get_data(as_text=True)
        return int(re.search(r'result-count"[^>]*>(\d+) product', page).group(1))

    def actual(category=None):
        sql = "SELECT COUNT(*) FROM product WHERE is_available = 1"
        return db.value(sql + " AND category = %s", (category,)) if category else db.value(sql)

    auth.login_producer()
    client.post("/dashboard/products/new", data={"name": "Chard", "category": "Vegetables", "price": "2.00",
                                                 "unit": "bunch", "quantity_available": "5", "reorder_threshold": "1",
                                                 "is_available": "y"})
    client.post(f"/dashboard/products/{world.low_product}/availability")
    client.post(f"/dashboard/products/{world.product}/edit", data={
        "name": "Potatoes", "category": "Fruit", "price": "1.80", "unit": "kg", "quantity_available": "50",
        "quantity_seen": "50", "reorder_threshold": "10", "is_available": "y"})
    client.post(f"/dashboard/products/{world.product}/delete")
    db.execute("DELETE FROM product WHERE product_id = %s", (shelf["wax"],))
    for category in [None, "Vegetables", "Fruit", "Pantry", "Flowers & Plants"]:
        assert shown(category) == actual(category), category


@pytest.mark.parametrize("sort", ["name", "price_asc", "price_desc", "newest"])
def test_out_of_stock_products_come_after_the_rest_in_every_sort(client, db, world, shelf, sort):
    db.execute("UPDATE stock SET quantity_available = 0 WHERE product_id IN (%s, %s)", (shelf["heather"], world.product))
    listed = names(client.get(f"/products?sort={sort}").get_data(as_text=True))
    sold_out = {"Heather honey", "Potatoes"}
    assert len(listed) == 7 and set(listed[-2:]) == sold_out, listed
    in_stock = names(client.get(f"/products?sort={sort}&in_stock=1").get_data(as_text=True))
    assert in_stock == listed[:-2]
    page = client.get(f"/products?in_stock=1&sort={sort}").get_data(as_text=True)
    assert re.search(r'result-count"[^>]*>5 products, in stock', page)


def test_a_product_selling_out_moves_after_the_rest_at_once(client, db, world, shelf):
    assert names(client.get("/products").get_data(as_text=True))[0] == "Beeswax candle"
    db.execute("UPDATE stock SET quantity_available = 0 WHERE product_id = %s", (shelf["wax"],))
    assert names(client.get("/products").get_data(as_text=True))[-1] == "Beeswax candle"
    assert db.value("SELECT out_of_stock FROM product WHERE product_id = %s", (shelf["wax"],)) == 1
    db.execute("UPDATE stock SET quantity_available = 4 WHERE product_id = %s", (shelf["wax"],))
    assert names(client.get("/products").get_data(as_text=True))[0] == "Beeswax candle"


def test_just_in_shows_only_what_can_be_ordered_now(client, db, world, shelf):
    db.execute("UPDATE stock SET quantity_available = 0 WHERE product_id = %s", (shelf["heather"],))
    home = names(client.get("/").get_data(as_text=True))
    assert "Heather honey" not in home, "sold out"
    assert "Clover honey" not in home and "Beeswax candle" not in home, "their producer is not taking orders yet"
    assert "Honey oat loaf" in home and "Potatoes" in home
    page = client.get("/products").get_data(as_text=True)
    card = page.split("Clover honey")[1].split("</article>")[0]
    assert "Not taking orders yet" in card


def test_the_restock_panel_leaves_out_what_the_producer_hid(client, auth, db, world):
    db.execute("UPDATE product SET is_available = 0 WHERE product_id = %s", (world.low_product,))
    auth.login_producer()
    page = client.get("/dashboard").get_data(as_text=True)
    assert f'id="restock-{world.low_product}"' not in page
    assert 'class="count"' not in page.split("</header>")[0], "no restock badge"
    response = client.post("/dashboard/update-stock", data={"product_id": world.low_product, "quantity": 10},
                           follow_redirects=True)
    assert "Kale is still hidden from the catalogue: choose Show in its row" in response.get_data(as_text=True)


@pytest.mark.parametrize("script_root", ["", "/shop"])
@pytest.mark.parametrize("endpoint, argument", [("product_page", "product_id"), ("producer_page", "producer_id")])
def test_card_links_are_exactly_what_url_for_builds(app, endpoint, argument, script_root):
    from app import item_url
    with app.test_request_context("/products", environ_base={"SCRIPT_NAME": script_root}):
        for item_id in (1, 9, 10, 12345, 4294967295):
            assert item_url(endpoint, item_id) == url_for(endpoint, **{argument: item_id})
