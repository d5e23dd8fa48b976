"""A producer's own shop: the dashboard's figures, products and their stock and photos, the public profile,
collection points and delivery zones with their weekly slots, closed days, and the week's schedule.

Request-free: the acting producer comes in as producer_id, and every statement is narrowed to their rows.
"""
import json

import catalogue
import fulfilment
import images
import orders
import measures
import search
import webhooks
from db import execute, placeholders, query, transactional
from measures import SELLING_COLUMNS


# --- Dashboard and products -------------------------------------------------

def own_product(producer_id, product_id):
    """One of the producer's products (not archived) with its stock, or None."""
    return query(
        "SELECT p.product_id, p.name, p.description, p.category, p.price, p.unit, p.image_url,"
        f" p.thumbnail_url, p.is_available, {SELLING_COLUMNS}, p.vat_rate, s.quantity_available, s.reorder_threshold"
        " FROM product p JOIN stock s ON s.product_id = p.product_id"
        " WHERE p.product_id = %s AND p.producer_id = %s AND p.is_archived = 0",
        (product_id, producer_id), one=True)


@transactional
def as_of_version(producer_id, load):
    """The producer's version and load()'s values, read in one snapshot: the version those values are of."""
    version = query(f"SELECT {catalogue.PRODUCER_VERSION.format(producer='%s')} AS version", (producer_id,),
                    one=True)["version"]
    return version, load()


DASHBOARD_PRODUCT_COLUMNS = ("p.product_id, p.name, p.category, p.price, p.unit, p.is_available, p.thumbnail_url,"
                             f" {SELLING_COLUMNS}, s.quantity_available, s.reorder_threshold")


def overview(producer_id, page, per_page):
    """The dashboard: order counts by status, figures, the newest pending orders, products to restock, and a
    page of the producer's products."""
    figures = query(
        "SELECT (SELECT COUNT(*) FROM product WHERE producer_id = %s AND is_archived = 0) AS products,"
        " EXISTS (SELECT 1 FROM fulfilment_option WHERE producer_id = %s AND is_active = 1 AND is_archived = 0)"
        " AS taking_orders, COUNT(*) AS unpaid_orders, COALESCE(SUM(goods_total + fee), 0) AS unpaid_amount,"
        " (SELECT JSON_OBJECTAGG(status, n) FROM (SELECT status, CAST(SUM(n) AS SIGNED) AS n FROM order_count"
        "  WHERE producer_id = %s GROUP BY status) c) AS counts"
        " FROM orders WHERE producer_id = %s AND status = 'completed' AND payment_status = 'unpaid'",
        (producer_id,) * 4, one=True)
    counts = json.loads(figures.pop("counts") or "{}")
    pending = orders.newest_orders("producer", producer_id, 1, per_page=5, status="pending")
    # The products to restock and the page of products, in one statement: the restock list first.
    rows = query(
        f"(SELECT 1 AS restock, {DASHBOARD_PRODUCT_COLUMNS}"
        f"  FROM {catalogue.RESTOCK_ROWS.format(producer='%s')})"
        f" UNION ALL (SELECT 0 AS restock, {DASHBOARD_PRODUCT_COLUMNS}"
        "  FROM product p JOIN stock s ON s.product_id = p.product_id"
        "  WHERE p.producer_id = %s AND p.is_archived = 0 ORDER BY p.name, p.product_id LIMIT %s OFFSET %s)"
        " ORDER BY restock DESC, IF(restock, quantity_available, 0), name, product_id",
        (producer_id, producer_id, per_page, (page - 1) * per_page))
    restock, products = [], []
    for row in rows:
        (restock if row.pop("restock") else products).append(row)
    return {"counts": counts, "figures": figures, "pending": pending, "restock": restock, "products": products}


def product_values(producer_name, product):
    """The product's columns from a dict of its fields, with how it is sold and the stems search.py keeps of its
    text."""
    stems = search.product_columns(product["name"], product["description"], product["category"], producer_name)
    rules = measures.selling_values(product)
    return (product["name"], product["description"] or "", product["category"], product["price"],
            product["unit"], int(product["is_available"]), *(rules[name] for name in SELLING_FIELDS),
            product.get("vat_rate") or "zero", *stems)


SELLING_FIELDS = ("sold_by", "measure", "step", "min_quantity", "max_quantity", "estimated_weight", "tolerance_percent")


@transactional
def with_photo(encoded, current, write):
    """In one transaction, store a new encoded photo, if any, call write(image_url, thumbnail_url) with it or
    with current's, and delete the photo it replaced."""
    new_urls = [images.url(name) for name in images.store(encoded)] if encoded else None
    image_url, thumbnail_url = new_urls or (current["image_url"], current["thumbnail_url"])
    result = write(image_url, thumbnail_url)
    if new_urls:
        images.remove_urls(current["image_url"], current["thumbnail_url"])
    return result


def add_product(producer, product, encoded_photo=None):
    """A new product of producer ({id, name}) from its fields, with its stock and an optional photo; its id."""
    def write(image_url, thumbnail_url):
        product_id = execute(
            "INSERT INTO product (producer_id, name, description, category, price, unit, is_available, sold_by,"
            " measure, step, min_quantity, max_quantity, estimated_weight, tolerance_percent, vat_rate,"
            " search_name, search_text, search_producer, image_url, thumbnail_url)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (producer["id"], *product_values(producer["name"], product), image_url, thumbnail_url)).lastrowid
        # The product's one stock row is made by a trigger as the product is inserted.
        execute("UPDATE stock SET quantity_available = %s, reorder_threshold = %s WHERE product_id = %s",
                (product["quantity_available"], product["reorder_threshold"], product_id))
        return product_id
    return with_photo(encoded_photo, {"image_url": None, "thumbnail_url": None}, write)


def save_product(producer, current, product, stock_seen, encoded_photo=None):
    """Save a product's fields over current (as own_product gave it). The stock figure is written only when
    it differs from stock_seen, the figure the form showed: sales since then must not be undone."""
    def write(image_url, thumbnail_url):
        product_id = current["product_id"]
        execute("UPDATE product SET name = %s, description = %s, category = %s, price = %s, unit = %s,"
                " is_available = %s, sold_by = %s, measure = %s, step = %s, min_quantity = %s, max_quantity = %s,"
                " estimated_weight = %s, tolerance_percent = %s, vat_rate = %s, search_name = %s, search_text = %s,"
                " search_producer = %s, image_url = %s, thumbnail_url = %s WHERE product_id = %s AND producer_id = %s",
                (*product_values(producer["name"], product), image_url, thumbnail_url, product_id, producer["id"]))
        execute("UPDATE stock SET reorder_threshold = %s WHERE product_id = %s",
                (product["reorder_threshold"], product_id))
        if measures.plain(product["quantity_available"]) != stock_seen:
            set_stock(product_id, product["quantity_available"])
    with_photo(encoded_photo, current, write)


def replace_photo(producer_id, current, encoded_photo):
    """Put a new photo on one of the producer's products (current, as own_product gave it)."""
    def write(image_url, thumbnail_url):
        execute("UPDATE product SET image_url = %s, thumbnail_url = %s WHERE product_id = %s AND producer_id = %s",
                (image_url, thumbnail_url, current["product_id"], producer_id))
    with_photo(encoded_photo, current, write)


# What an order refers to is never deleted: it is archived, so order history keeps it.
ARCHIVABLE = {
    "product": {
        "own": "SELECT product_id, name, image_url, thumbnail_url FROM product"
               " WHERE product_id = %s AND producer_id = %s AND is_archived = 0 FOR UPDATE",
        "used": "SELECT EXISTS (SELECT 1 FROM order_item WHERE product_id = %s) AS used",
        "archive": ["UPDATE product SET is_archived = 1, is_available = 0 WHERE product_id = %s",
                    "DELETE FROM cart_item WHERE product_id = %s"],
        "delete": ["DELETE FROM product WHERE product_id = %s"],
    },
    "option": {
        "own": "SELECT option_id, name FROM fulfilment_option"
               " WHERE option_id = %s AND producer_id = %s AND is_archived = 0 FOR UPDATE",
        "used": "SELECT EXISTS (SELECT 1 FROM orders WHERE option_id = %s) AS used",
        "archive": ["UPDATE fulfilment_option SET is_archived = 1, is_active = 0 WHERE option_id = %s"],
        "delete": ["DELETE FROM fulfilment_option WHERE option_id = %s"],
    },
}


@transactional
def delete_or_archive(producer_id, kind, row_id):
    """Delete one of the producer's products or options that no order used, or archive one that was used;
    return the row and whether it was archived, or None when the producer has no such row."""
    sql = ARCHIVABLE[kind]
    row = query(sql["own"], (row_id, producer_id), one=True)
    if row is None:
        return None
    used = query(sql["used"], (row_id,), one=True)["used"]
    for statement in sql["archive"] if used else sql["delete"]:
        execute(statement, (row_id,))
    if not used:
        images.remove_urls(row.get("image_url"), row.get("thumbnail_url"))
    return row, used


def toggle_availability(producer_id, product_id):
    execute("UPDATE product SET is_available = 1 - is_available WHERE product_id = %s AND producer_id = %s",
            (product_id, producer_id))


@transactional
def set_stock(product_id, quantity):
    """Set how many of a product are in stock, once own_product has shown it is the producer's. A plain
    UPDATE of stock alone, so the stock trigger may touch the product row."""
    before = query("SELECT quantity_available FROM stock WHERE product_id = %s FOR UPDATE", (product_id,), one=True)
    execute("UPDATE stock SET quantity_available = %s WHERE product_id = %s", (quantity, product_id))
    if before:
        webhooks.stock_taken(product_id, before["quantity_available"] - quantity)


class StockTooLow(Exception):
    """An adjustment would take the stock below 0: available is what there is."""

    def __init__(self, available):
        super().__init__(available)
        self.available = available


@transactional
def adjust_stock(producer_id, product_id, by):
    """Add by (negative to take away) to one of the producer's products' stock in one statement, so
    concurrent adjustments all count; the stock after it, None when the product is not theirs, StockTooLow
    (nothing changed) when it would go below 0."""
    product = own_product(producer_id, product_id)
    if product is None:
        return None
    if execute("UPDATE stock SET quantity_available = quantity_available + %s WHERE product_id = %s"
               " AND quantity_available + %s BETWEEN 0 AND %s",
               (by, product_id, by, measures.MAX_QUANTITY)).rowcount != 1:
        raise StockTooLow(query("SELECT quantity_available FROM stock WHERE product_id = %s", (product_id,),
                                one=True)["quantity_available"])
    webhooks.stock_taken(product_id, -by)
    return query("SELECT quantity_available FROM stock WHERE product_id = %s", (product_id,), one=True)[
        "quantity_available"]


# --- Profile ----------------------------------------------------------------

PROFILE_COLUMNS = ("description", "town", "phone", "public_email", "website", "payment_info", "legal_name",
                   "address", "vat_number", "invoice_prefix")


def profile(producer_id):
    return query(f"SELECT {', '.join(PROFILE_COLUMNS)}, image_url, thumbnail_url FROM producer"
                 " WHERE producer_id = %s", (producer_id,), one=True)


def save_profile(producer_id, current, values, encoded_photo=None):
    """Save the profile's columns from values (a dict), and a new photo if there is one."""
    with_photo(encoded_photo, current, lambda image_url, thumbnail_url: execute(
        f"UPDATE producer SET {', '.join(f'{column} = %s' for column in PROFILE_COLUMNS)},"
        " image_url = %s, thumbnail_url = %s WHERE producer_id = %s",
        [values[column] or "" for column in PROFILE_COLUMNS] + [image_url, thumbnail_url, producer_id]))


# --- Collection points, delivery zones, slots and closed days ---------------

OPTION_FIELDS = ("kind", "name", "address", "instructions", "postcodes", "fee", "minimum_order", "free_over",
                 "cutoff_hours", "capacity", "payment_method", "is_active")


def own_option(producer_id, option_id):
    """One of the producer's options (not archived) with its slots, or None."""
    option = query(f"SELECT {catalogue.OPTION_COLUMNS} FROM fulfilment_option o"
                   " WHERE o.option_id = %s AND o.producer_id = %s AND o.is_archived = 0",
                   (option_id, producer_id), one=True)
    if option is not None:
        option["slots"] = query("SELECT slot_id, option_id, weekday, start_time, end_time FROM fulfilment_slot"
                                " WHERE option_id = %s ORDER BY weekday, start_time, slot_id", (option_id,))
    return option


def add_option(producer_id, values):
    """A new option from values (a dict of OPTION_FIELDS); its id."""
    return execute(f"INSERT INTO fulfilment_option (producer_id, {', '.join(OPTION_FIELDS)})"
                   f" VALUES (%s, {placeholders(OPTION_FIELDS)})",
                   [producer_id] + [values[field] for field in OPTION_FIELDS]).lastrowid


def save_option(producer_id, option_id, values):
    """Save an option; orders placed already keep what they were promised."""
    execute(f"UPDATE fulfilment_option SET {', '.join(f'{field} = %s' for field in OPTION_FIELDS)}"
            " WHERE option_id = %s AND producer_id = %s",
            [values[field] for field in OPTION_FIELDS] + [option_id, producer_id])


def add_slot(option_id, weekday, start, end):
    execute("INSERT INTO fulfilment_slot (option_id, weekday, start_time, end_time) VALUES (%s, %s, %s, %s)",
            (option_id, weekday, start, end))


def delete_slot(option_id, slot_id):
    """Remove a weekly time from an option; False when the option has no such slot."""
    return execute("DELETE FROM fulfilment_slot WHERE slot_id = %s AND option_id = %s",
                   (slot_id, option_id)).rowcount == 1


def has_options(producer_id):
    return query("SELECT 1 FROM fulfilment_option WHERE producer_id = %s AND is_archived = 0 LIMIT 1",
                 (producer_id,), one=True) is not None


def closures_ahead(producer_id):
    """The producer's closed days that are not over yet, soonest first."""
    return query("SELECT closure_id, start_date, end_date, note FROM producer_closure"
                 " WHERE producer_id = %s AND end_date >= %s ORDER BY start_date, closure_id",
                 (producer_id, fulfilment.local_today()))


def delete_closure(producer_id, closure_id):
    """Open closed days again; False when the producer has no such closure."""
    return execute("DELETE FROM producer_closure WHERE closure_id = %s AND producer_id = %s",
                   (closure_id, producer_id)).rowcount == 1


# --- The week ---------------------------------------------------------------

def schedule(producer_id):
    """The days ahead with orders (each occurrence with its order count and goods, and at a co-op hub when to
    bring them), and orders by arrangement."""
    occurrences = query(
        "SELECT o.fulfilment_date, o.slot_start, o.slot_end, o.fulfilment_name, o.order_type, COUNT(*) AS orders,"
        " SUM(o.goods_total) AS goods, MAX(f.hub_id) AS hub_id, MAX(f.drop_off) AS drop_off FROM orders o"
        " LEFT JOIN fulfilment_option f ON f.option_id = o.option_id WHERE o.producer_id = %s"
        " AND o.fulfilment_date >= %s AND o.status NOT IN ('cancelled', 'awaiting_payment')"
        " GROUP BY o.fulfilment_date, o.slot_start, o.slot_end, o.fulfilment_name, o.order_type"
        " ORDER BY o.fulfilment_date, o.slot_start, o.fulfilment_name LIMIT 200", (producer_id, fulfilment.local_today()))
    arranged = query(
        f"SELECT {orders.ORDER_COLUMNS}, c.first_name FROM orders o JOIN customer c ON c.customer_id = o.customer_id"
        " WHERE o.producer_id = %s AND o.fulfilment_date IS NULL AND o.option_id IS NOT NULL"
        " AND o.status NOT IN ('completed', 'cancelled', 'awaiting_payment') ORDER BY o.placed_at, o.order_id LIMIT 100", (producer_id,))
    return occurrences, arranged
