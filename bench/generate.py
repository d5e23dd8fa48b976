"""Build the benchmark database (never the dev one) at a given scale, fast, with multi-row INSERTs.

Usage: python bench/generate.py small|large [database]
"""
import datetime
import os
import random
import sys
import time
from decimal import Decimal

import bcrypt

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import search  # noqa: E402
from app import app  # noqa: E402
from catalogue import CATEGORIES  # noqa: E402
from db import create_schema, mysql  # noqa: E402

SCALES = {
    "small": {"producers": 10, "products": 1_000, "customers": 400, "orders": 6_000},
    "large": {"producers": 500, "products": 50_000, "customers": 20_000, "orders": 200_000},
}
# The growth table's points: products grown at 10,000 orders, orders grown at 10,000 products.
GROWTH = [{"products": 1_000, "orders": 10_000}, {"products": 10_000, "orders": 10_000},
          {"products": 50_000, "orders": 10_000}, {"products": 10_000, "orders": 1_000},
          {"products": 10_000, "orders": 100_000}]
BENCH_PASSWORD = "bench-password"
BENCH_PRODUCER_ORDERS = 5_000
BENCH_CUSTOMER_ORDERS = 100
COMMON_WORD = "organic"  # in about one product in sixteen: the search scenario's word
SCHEDULE_DAYS = 150  # producer 1's dated orders are spread over this many days from today

PLACES = ["Oak", "Willow", "Meadow", "Brook", "Hill", "Ash", "Elm", "Fern", "Heath", "Moor", "Vale", "Marsh"]
KINDS = ["Farm", "Dairy", "Bakery", "Orchard", "Apiary", "Gardens", "Kitchen", "Smokehouse"]
ADJECTIVES = ["Fresh", "Heritage", "Wild", "Smoked", "Golden", "Rustic", "Seasonal", "Spiced", "Classic", "Young",
              "Aged", "Sweet", "Tangy", "Hearty", COMMON_WORD.capitalize(), "Crisp"]
ITEMS = {
    "Vegetables": ["carrots", "potatoes", "kale", "leeks", "beetroot", "onions", "squash", "parsnips"],
    "Fruit": ["apples", "pears", "plums", "raspberries", "strawberries", "cherries", "rhubarb"],
    "Dairy & Eggs": ["milk", "butter", "cheddar", "yoghurt", "cream", "eggs", "kefir"],
    "Meat & Fish": ["sausages", "bacon", "lamb chops", "chicken", "trout", "beef mince"],
    "Bakery": ["sourdough", "rye loaf", "croissants", "scones", "focaccia", "buns"],
    "Pantry": ["honey", "jam", "chutney", "marmalade", "oats", "flour"],
    "Drinks": ["apple juice", "cider", "cordial", "kombucha", "perry"],
    "Flowers & Plants": ["tulips", "sweet peas", "herb pots", "dahlias", "seedlings"],
}
UNITS = ["kg", "500 g", "each", "dozen", "jar", "bunch", "litre", "bottle", "loaf"]
STATUSES = ["pending"] * 2 + ["confirmed"] * 2 + ["ready", "out_for_delivery"] + ["completed"] * 6 + ["cancelled"]


def insert(cur, table, columns, rows, batch=5_000, suffix=""):
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))}){suffix}"
    for start in range(0, len(rows), batch):
        cur.executemany(sql, rows[start:start + batch])


def growth_sizes(products, orders):
    """A growth point's sizes: 100 products a producer, and at least 400 customers."""
    return {"producers": max(10, products // 100), "products": products, "customers": max(400, orders // 10),
            "orders": orders}


def generate(sizes):
    rng = random.Random(42)
    now = datetime.datetime.now().replace(microsecond=0)
    password_hash = bcrypt.hashpw(BENCH_PASSWORD.encode(), bcrypt.gensalt(4)).decode()

    producers = [(n, f"{PLACES[n % len(PLACES)]} {KINDS[n % len(KINDS)]} {n}", f"producer{n}@bench.noeari",
                  password_hash) for n in range(1, sizes["producers"] + 1)]
    products, stock = [], []
    per_producer = sizes["products"] // sizes["producers"]
    products_of = {}
    for n in range(1, sizes["products"] + 1):
        producer_id = (n - 1) // per_producer + 1
        category = CATEGORIES[n % len(CATEGORIES)]
        name = f"{rng.choice(ADJECTIVES)} {rng.choice(ITEMS[category])} {n}"
        created = now - datetime.timedelta(minutes=rng.randrange(2 * 365 * 24 * 60))
        description = f"{name} from producer {producer_id}, picked and packed to order."
        products.append((n, producer_id, name, description, category, f"{rng.randrange(50, 3000) / 100:.2f}",
                         rng.choice(UNITS), 1 if rng.random() < 0.95 else 0, created,
                         *search.product_columns(name, description, category, producers[producer_id - 1][1])))
        stock.append((n, rng.randrange(0, 400), rng.randrange(0, 20)))
        products_of.setdefault(producer_id, []).append(n)

    customers = [(n, f"Customer{n}", f"customer{n}@bench.noeari", password_hash)
                 for n in range(1, sizes["customers"] + 1)]

    orders, lines = [], []
    producer_orders = min(BENCH_PRODUCER_ORDERS, sizes["orders"] // 2)  # producer 1's, the dashboards' producer
    for order_id in range(1, sizes["orders"] + 1):
        if order_id <= producer_orders:
            producer_id, customer_id = 1, rng.randrange(2, sizes["customers"] + 1)
        elif order_id <= producer_orders + BENCH_CUSTOMER_ORDERS:
            producer_id, customer_id = rng.randrange(2, sizes["producers"] + 1), 1
        else:
            producer_id, customer_id = rng.randrange(2, sizes["producers"] + 1), rng.randrange(2, sizes["customers"] + 1)
        order_type = rng.choice(["collection", "delivery"])
        # Producer 1's orders are for its Saturday-morning collection, about 33 a day over the days ahead.
        dated = order_id <= producer_orders
        status, placed = rng.choice(STATUSES), now - datetime.timedelta(minutes=rng.randrange(365 * 24 * 60))
        # Producers record payment as they are paid: only the last fortnight's completed orders are unpaid.
        paid = status == "completed" and placed < now - datetime.timedelta(days=14)
        orders.append((order_id, customer_id, producer_id, status, order_type,
                       f"{order_id} Bench Street" if order_type == "delivery" else None, placed,
                       "paid" if paid else "unpaid", placed + datetime.timedelta(days=7) if paid else None,
                       1 if dated else None, 1 if dated else None, "Farm gate" if dated else None,
                       now.date() + datetime.timedelta(days=order_id % SCHEDULE_DAYS) if dated else None,
                       "09:00" if dated else None, "12:00" if dated else None))
        for product_id in rng.sample(products_of[producer_id], rng.randrange(1, 6)):
            quantity, price = rng.randrange(1, 5), Decimal(products[product_id - 1][5])
            lines.append((order_id, product_id, quantity, price, quantity * price))

    cart = [(1, products_of[p][0], 1, products[products_of[p][0] - 1][5]) for p in (2, 3, 4)]

    cur = mysql.connection.cursor()
    cur.execute("SET unique_checks = 0, foreign_key_checks = 0")
    insert(cur, "producer", ["producer_id", "business_name", "email", "password_hash", "status"],
           [row + ("approved",) for row in producers])
    insert(cur, "customer", ["customer_id", "first_name", "email", "password_hash"], customers)
    # Every producer collects at its farm gate: producer 1 on Saturday mornings, the rest by arrangement.
    insert(cur, "fulfilment_option", ["option_id", "producer_id", "kind", "name", "address"],
           [(n, n, "collection", "Farm gate", f"{n} Farm Lane") for n, *_ in producers])
    insert(cur, "fulfilment_slot", ["slot_id", "option_id", "weekday", "start_time", "end_time"],
           [(1, 1, 5, "09:00", "12:00")])
    # Products and their stock with every check on: MariaDB loads an empty table in bulk when both are off, and
    # then the rows its triggers write (each product's stock row and search terms, and the stock figures marking
    # what is in stock) are not all kept.
    cur.execute("SET unique_checks = 1, foreign_key_checks = 1")
    insert(cur, "product", ["product_id", "producer_id", "name", "description", "category", "price", "unit",
                            "is_available", "created_at", "search_name", "search_text", "search_producer"], products)
    insert(cur, "stock", ["product_id", "quantity_available", "reorder_threshold"], stock,
           suffix=" ON DUPLICATE KEY UPDATE quantity_available = VALUES(quantity_available),"
                  " reorder_threshold = VALUES(reorder_threshold)")
    cur.execute("SET unique_checks = 0, foreign_key_checks = 0")
    insert(cur, "orders", ["order_id", "customer_id", "producer_id", "status", "order_type", "delivery_address",
                           "placed_at", "payment_status", "paid_at", "option_id", "slot_id", "fulfilment_name", "fulfilment_date", "slot_start",
                           "slot_end"], orders)
    insert(cur, "order_item", ["order_id", "product_id", "quantity", "unit_price", "line_total"], lines)
    insert(cur, "cart_item", ["customer_id", "product_id", "quantity", "price_when_added"], cart)
    cur.execute("SET unique_checks = 1, foreign_key_checks = 1")
    cur.execute("ANALYZE TABLE producer, customer, product, stock, orders, order_item, cart_item, fulfilment_option")
    cur.fetchall()
    cur.close()
    return {"producers": len(producers), "products": len(products), "customers": len(customers),
            "orders": len(orders), "order lines": len(lines)}


def build(sizes, database="noeari_bench"):
    """Drop and rebuild database with sizes (a SCALES entry) from schema.sql; return (row counts, seconds taken)."""
    if database == os.environ.get("MYSQL_DB", "noeari") or not database.startswith("noeari_bench"):
        raise SystemExit(f"refusing to build the benchmark in {database!r}: it must be a noeari_bench database")
    started = time.monotonic()
    with app.app_context():
        app.config["MYSQL_DB"] = None
        server = mysql.connect
        server.cursor().execute(f"DROP DATABASE IF EXISTS `{database}`")
        server.cursor().execute(f"CREATE DATABASE `{database}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        server.close()
        app.config["MYSQL_DB"] = database
        create_schema()
        counts = generate(sizes)
    return counts, time.monotonic() - started


if __name__ == "__main__":
    counts, seconds = build(SCALES[sys.argv[1]], *sys.argv[2:])
    print(f"built {counts} in {seconds:.1f} s")
