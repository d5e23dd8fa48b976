"""The layout holds: every HTML route is in app.py, the area modules beside it know nothing of requests and
import nothing above them, and their functions work with an app context alone (as the JSON API and the
worker will call them)."""
import ast
import pathlib
from decimal import Decimal

import flask
import pytest

import checkout
import orders
import producers

ROOT = pathlib.Path(__file__).resolve().parent.parent
# Each module beside app.py, lowest first: a module may import only modules before it in this list.
LAYERS = ["db", "outbox", "fulfilment", "measures", "invoices", "ledger", "bank", "statements", "search", "images", "pagecache", "backup", "mail", "tokens", "shapes", "webhooks", "catalogue",
          "orders", "payments", "accounts", "checkout", "changes", "producers", "hubs", "dfc", "worker", "jobs"]
REQUEST_NAMES = {"request", "g", "session", "url_for", "flash", "abort", "redirect", "make_response",
                 "after_this_request"}
AREA_MODULES = [name for name in LAYERS if name != "db"]  # db.py keeps the request's connection on g, as flaskr's


def module_tree(name):
    return ast.parse((ROOT / f"{name}.py").read_text(encoding="utf-8"))


def imported_modules(tree):
    """The project modules a module imports, wherever in it the import is."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names & (set(LAYERS) | {"app", "api"})


def flask_names(tree):
    """What a module takes from flask, by `from flask import x` or as flask.x."""
    taken = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "flask":
            taken |= {alias.name for alias in node.names}
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "flask":
            taken.add(node.attr)
    return taken


def test_every_module_beside_app_is_in_the_layer_list():
    beside = {path.stem for path in ROOT.glob("*.py")} - {"app", "api", "api_document", "gunicorn.conf"}
    assert beside == set(LAYERS), "a new module gets its place in LAYERS"


@pytest.mark.parametrize("name", LAYERS)
def test_no_module_imports_upwards_or_in_a_circle(name):
    below = set(LAYERS[:LAYERS.index(name)])
    assert imported_modules(module_tree(name)) <= below, f"{name}.py imports a module above it"


@pytest.mark.parametrize("name", AREA_MODULES)
def test_area_modules_know_nothing_of_requests(name):
    tree = module_tree(name)
    assert not flask_names(tree) & REQUEST_NAMES, f"{name}.py reaches for the request"
    routes = [node for node in ast.walk(tree) if isinstance(node, ast.Attribute) and node.attr in ("route", "get",
                                                                                                  "post")
              and isinstance(node.value, ast.Name) and node.value.id in ("app", "bp", "blueprint")]
    assert not routes, f"{name}.py defines a route"


def test_every_html_route_is_defined_in_app_py(app):
    outside = {rule.rule for rule in app.url_map.iter_rules()
               if rule.endpoint != "static" and app.view_functions[rule.endpoint].__module__ != "app"}
    assert outside and all(rule.startswith(("/api/v1/", "/api/dfc/")) for rule in outside), \
        "only the JSON API lives in api.py"
    assert all(app.view_functions[rule.endpoint].__module__ == "api" for rule in app.url_map.iter_rules()
               if rule.rule.startswith("/api/v1/"))


def test_an_order_is_placed_through_checkout_with_no_request(app, db, world):
    db.add_to_cart(world.customer, world.product, 3)
    db.add_to_cart(world.customer, world.other_product, 1)
    choices = {producer: f"{option}@arranged" for producer, option in world.collection.items()}
    with app.app_context():
        assert not flask.has_request_context()
        order_ids = checkout.place_orders(world.customer, choices,
                                          {"delivery_address": None, "postcode": None, "phone": None}).order_ids
        mine = orders.load_own_order("customer", world.customer, order_ids[0])
    assert len(order_ids) == 2 and mine["status"] == "pending"
    placed = db.rows("SELECT producer_id, goods_total, option_id FROM orders WHERE order_id IN (%s, %s)"
                     " ORDER BY producer_id", tuple(order_ids))
    assert [(row["producer_id"], row["goods_total"], row["option_id"]) for row in placed] == [
        (world.producer, Decimal("5.40"), world.collection[world.producer]),
        (world.other_producer, Decimal("1.40"), world.collection[world.other_producer])]
    assert db.cart(world.customer) == {}
    assert (db.stock(world.product), db.stock(world.other_product)) == (47, 29)
    assert db.value("SELECT COUNT(*) FROM email_outbox") == 3, "the confirmation and each producer's new order"


def test_a_refused_checkout_names_its_problems_and_changes_nothing(app, db, world):
    db.add_to_cart(world.customer, world.low_product, 5)
    with app.app_context(), db.unchanged():
        with pytest.raises(checkout.CheckoutRefused) as refusal:
            checkout.place_orders(world.customer, {world.producer: f"{world.collection[world.producer]}@arranged"},
                                  {"delivery_address": None, "postcode": None, "phone": None})
    assert refusal.value.problems == ["Only 2 of Kale left; you asked for 5."]


def test_a_producer_sees_and_changes_only_their_own_products_with_no_request(app, db, world):
    with app.app_context():
        assert producers.own_product(world.producer, world.other_product) is None
        assert producers.delete_or_archive(world.producer, "product", world.other_product) is None
        assert producers.delete_or_archive(world.producer, "product", world.low_product) == (
            {"product_id": world.low_product, "name": "Kale", "image_url": None, "thumbnail_url": None}, False)
    assert db.value("SELECT COUNT(*) FROM product WHERE product_id IN (%s, %s)",
                    (world.other_product, world.low_product)) == 1
