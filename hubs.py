"""The co-op's shared pick-ups (hubs): a place with weekly collection times, a cutoff, a capacity in baskets and
a fee per basket, run by the operator. A producer who joins a hub gets a collection option there (hub_id set),
whose place, cutoff and weekly times follow the hub's; leaving archives it, so past orders keep theirs.

Request-free: the acting account comes in as an argument.
"""
import datetime
from collections import OrderedDict
from decimal import Decimal

import catalogue
import changes
import checkout
import fulfilment
import measures
import orders
from db import execute, placeholders, query, transactional
from measures import LINE_COLUMNS

HUB_FIELDS = ("name", "address", "instructions", "contact", "cutoff_hours", "capacity", "fee", "is_active")
HUB_COLUMNS = "h.hub_id, " + ", ".join(f"h.{field}" for field in HUB_FIELDS)


class HubNameTaken(Exception):
    """Another hub has this name."""


def all_hubs():
    """Every hub with its weekly times and how many producers deliver to it, by name."""
    hubs = query(f"SELECT {HUB_COLUMNS}, (SELECT COUNT(*) FROM fulfilment_option o WHERE o.hub_id = h.hub_id"
                 " AND o.is_archived = 0) AS members FROM hub h ORDER BY h.name")
    slots = slots_of([hub["hub_id"] for hub in hubs])
    for hub in hubs:
        hub["slots"] = slots.get(hub["hub_id"], [])
    return hubs


def slots_of(hub_ids):
    """{hub_id: [its weekly times]}."""
    found = {}
    if hub_ids:
        for slot in query("SELECT hub_slot_id, hub_id, weekday, start_time, end_time FROM hub_slot"
                          f" WHERE hub_id IN ({placeholders(hub_ids)}) ORDER BY weekday, start_time",
                          list(hub_ids)):
            found.setdefault(slot["hub_id"], []).append(slot)
    return found


def hub(hub_id):
    """One hub with its weekly times and the producers who deliver to it; None when there is none."""
    found = query(f"SELECT {HUB_COLUMNS} FROM hub h WHERE h.hub_id = %s", (hub_id,), one=True)
    if found:
        found["slots"] = slots_of([hub_id]).get(hub_id, [])
        found["members"] = query("SELECT o.option_id, o.producer_id, o.drop_off, o.payment_method, p.business_name"
                                 " FROM fulfilment_option o JOIN producer p ON p.producer_id = o.producer_id"
                                 " WHERE o.hub_id = %s AND o.is_archived = 0 ORDER BY p.business_name", (hub_id,))
    return found


@transactional
def create_hub(values):
    """A new hub from values (a dict of HUB_FIELDS); its id. HubNameTaken when the name is in use."""
    if query("SELECT 1 AS found FROM hub WHERE name = %s", (values["name"],), one=True):
        raise HubNameTaken(values["name"])
    return execute(f"INSERT INTO hub ({', '.join(HUB_FIELDS)}) VALUES ({placeholders(HUB_FIELDS)})",
                   [values[field] for field in HUB_FIELDS]).lastrowid


@transactional
def save_hub(hub_id, values):
    """Save a hub and carry its place, instructions, cutoff and state to its producers' options there; orders
    placed already keep what they were promised. HubNameTaken when another hub has the name."""
    if query("SELECT 1 AS found FROM hub WHERE name = %s AND hub_id <> %s", (values["name"], hub_id), one=True):
        raise HubNameTaken(values["name"])
    execute(f"UPDATE hub SET {', '.join(f'{field} = %s' for field in HUB_FIELDS)} WHERE hub_id = %s",
            [values[field] for field in HUB_FIELDS] + [hub_id])
    execute("UPDATE fulfilment_option SET name = %s, address = %s, instructions = %s, cutoff_hours = %s,"
            " is_active = %s WHERE hub_id = %s AND is_archived = 0",
            (values["name"], values["address"], values["instructions"], values["cutoff_hours"], values["is_active"],
             hub_id))


@transactional
def add_slot(hub_id, weekday, start, end):
    """A weekly time at the hub, and the same time at each producer's option there."""
    slot_id = execute("INSERT INTO hub_slot (hub_id, weekday, start_time, end_time) VALUES (%s, %s, %s, %s)",
                      (hub_id, weekday, start, end)).lastrowid
    execute("INSERT INTO fulfilment_slot (option_id, weekday, start_time, end_time, hub_slot_id)"
            " SELECT option_id, %s, %s, %s, %s FROM fulfilment_option WHERE hub_id = %s AND is_archived = 0",
            (weekday, start, end, slot_id, hub_id))
    return slot_id


def delete_slot(hub_id, hub_slot_id):
    """Remove a weekly time from the hub and from its producers' options (orders keep their times); False when
    the hub has no such time."""
    return execute("DELETE FROM hub_slot WHERE hub_slot_id = %s AND hub_id = %s", (hub_slot_id, hub_id)).rowcount == 1


# --- Closed days -------------------------------------------------------------------

class BasketsBooked(Exception):
    """Baskets are booked on days the operator wants to close: count says how many."""

    def __init__(self, count):
        super().__init__(count)
        self.count = count


def closures(hub_id, today=None):
    """The hub's closed days from today on, soonest first."""
    return query("SELECT closure_id, start_date, end_date, note FROM hub_closure WHERE hub_id = %s"
                 " AND end_date >= %s ORDER BY start_date", (hub_id, today or fulfilment.local_today()))


@transactional
def close_days(hub_id, start, end, note):
    """Close the hub from start to end: its times are not offered then. BasketsBooked (nothing changed) when
    baskets are booked on those days; their customers move them, or producers cancel them, first. The hub's
    row lock keeps a checkout from booking one meanwhile (checkout.book_hub_place reads it shared)."""
    query("SELECT hub_id FROM hub WHERE hub_id = %s FOR UPDATE", (hub_id,))
    booked = query("SELECT COUNT(*) AS n FROM hub_basket b WHERE b.hub_id = %s AND b.is_released = 0"
                   " AND b.basket_date BETWEEN %s AND %s AND EXISTS (SELECT 1 FROM orders o"
                   " WHERE o.basket_id = b.basket_id AND o.status NOT IN ('cancelled', 'completed'))",
                   (hub_id, start, end), one=True)["n"]
    if booked:
        raise BasketsBooked(booked)
    return execute("INSERT INTO hub_closure (hub_id, start_date, end_date, note) VALUES (%s, %s, %s, %s)",
                   (hub_id, start, end, note or "")).lastrowid


def open_days(hub_id, closure_id):
    """Open closed days again; False when the hub has no such closure."""
    return execute("DELETE FROM hub_closure WHERE closure_id = %s AND hub_id = %s", (closure_id, hub_id)).rowcount == 1


# --- Producers at hubs --------------------------------------------------------

def producer_hubs(producer_id):
    """The active hubs with their times, each with the producer's option there (None when they have not joined)."""
    hubs = [found for found in all_hubs() if found["is_active"]]
    mine = {row["hub_id"]: row for row in query(
        "SELECT option_id, hub_id, drop_off, payment_method FROM fulfilment_option"
        " WHERE producer_id = %s AND hub_id IS NOT NULL AND is_archived = 0", (producer_id,))}
    for found in hubs:
        found["mine"] = mine.get(found["hub_id"])
    return hubs


@transactional
def join(producer_id, hub_id, drop_off, payment_method):
    """The producer delivers to the hub from now: a collection option there with the hub's place, cutoff and
    times, and their drop-off time and way of payment. Its id (the existing one when they are in already);
    None when there is no such active hub."""
    found = query("SELECT * FROM hub WHERE hub_id = %s AND is_active = 1 FOR UPDATE", (hub_id,), one=True)
    if found is None:
        return None
    existing = query("SELECT option_id FROM fulfilment_option WHERE producer_id = %s AND hub_id = %s"
                     " AND is_archived = 0", (producer_id, hub_id), one=True)
    if existing:
        return existing["option_id"]
    option_id = execute(
        "INSERT INTO fulfilment_option (producer_id, hub_id, kind, name, address, instructions, drop_off, fee,"
        " minimum_order, cutoff_hours, payment_method) VALUES (%s, %s, 'collection', %s, %s, %s, %s, 0, 0, %s, %s)",
        (producer_id, hub_id, found["name"], found["address"], found["instructions"], drop_off,
         found["cutoff_hours"], payment_method)).lastrowid
    execute("INSERT INTO fulfilment_slot (option_id, weekday, start_time, end_time, hub_slot_id)"
            " SELECT %s, weekday, start_time, end_time, hub_slot_id FROM hub_slot WHERE hub_id = %s",
            (option_id, hub_id))
    return option_id


def leave(producer_id, hub_id):
    """The producer stops delivering to the hub: their option there is archived, so orders placed keep it and
    their lists; whether they were in."""
    return execute("UPDATE fulfilment_option SET is_archived = 1, is_active = 0 WHERE producer_id = %s"
                   " AND hub_id = %s AND is_archived = 0", (producer_id, hub_id)).rowcount == 1


def hub_products(producer_id, hub_id):
    """The producer's place at a hub and their products (not archived), each marked offered there or not, by
    name; None when they do not deliver to the hub."""
    option = query("SELECT o.option_id, o.name, o.drop_off FROM fulfilment_option o WHERE o.producer_id = %s"
                   " AND o.hub_id = %s AND o.is_archived = 0", (producer_id, hub_id), one=True)
    if option is None:
        return None
    option["products"] = query(
        "SELECT p.product_id, p.name, p.unit, p.is_listed, e.product_id IS NULL AS offered FROM product p"
        " LEFT JOIN hub_product_exclusion e ON e.product_id = p.product_id AND e.option_id = %s"
        " WHERE p.producer_id = %s AND p.is_archived = 0 ORDER BY p.name, p.product_id",
        (option["option_id"], producer_id))
    return option


@transactional
def offer_products(producer_id, hub_id, offered):
    """Offer these of the producer's products at the hub and none of their others (ids not theirs are not
    offered anyway); returns how many are offered, or None when they do not deliver to the hub."""
    found = hub_products(producer_id, hub_id)
    if found is None:
        return None
    execute("DELETE FROM hub_product_exclusion WHERE option_id = %s", (found["option_id"],))
    left_out = [(found["option_id"], product["product_id"]) for product in found["products"]
                if product["product_id"] not in set(offered)]
    if left_out:
        execute("INSERT INTO hub_product_exclusion (option_id, product_id) VALUES (%s, %s)", left_out, many=True)
    return len(found["products"]) - len(left_out)


def is_hub_option(producer_id, option_id):
    """Whether one of the producer's options is their place at a hub (its place and times are the hub's)."""
    return query("SELECT 1 AS found FROM fulfilment_option WHERE option_id = %s AND producer_id = %s"
                 " AND hub_id IS NOT NULL", (option_id, producer_id), one=True) is not None


def next_days(found, closed, today=None, days=14):
    """The dates of the hub's weekly times in the next two weeks, soonest first, each with the closure (of
    closed, its closures) that closes it, None when open: [(date, closure)]."""
    today = today or fulfilment.local_today()
    weekdays = {slot["weekday"] for slot in found["slots"]}
    dates = [today + datetime.timedelta(days=n) for n in range(days)
             if (today + datetime.timedelta(days=n)).weekday() in weekdays]
    return [(day, next((c for c in closed if c["start_date"] <= day <= c["end_date"]), None)) for day in dates]


# --- The hub's day: what each customer collects and what each producer brings ---------------

def day_orders(hub_id, day, customer_id=None, lock=False):
    """The hub's orders on day that are neither cancelled nor waiting for a card payment, by customer."""
    where, args = "f.hub_id = %s AND o.fulfilment_date = %s", [hub_id, day]
    if customer_id is not None:
        where, args = where + " AND o.customer_id = %s", args + [customer_id]
    return query("SELECT o.order_id, o.status, o.customer_id, o.producer_id, o.slot_start, o.slot_end,"
                 " o.goods_total + o.fee AS total, o.payment_status, o.payment_method, c.first_name, c.email,"
                 " p.business_name, p.payment_info FROM orders o JOIN fulfilment_option f ON f.option_id = o.option_id"
                 " JOIN customer c ON c.customer_id = o.customer_id JOIN producer p ON p.producer_id = o.producer_id"
                 f" WHERE {where} AND o.status NOT IN ('cancelled', 'awaiting_payment')"
                 " ORDER BY c.first_name, o.customer_id, p.business_name, o.order_id" + (" FOR UPDATE" if lock else ""),
                 args)


def hub_day(hub_id, day):
    """A hub's day: the bag list (per customer, their orders from each producer with their lines) and the drop
    list (per producer, how much of each product they bring, and for whom)."""
    found = day_orders(hub_id, day)
    lines = {}
    if found:
        ids = [order["order_id"] for order in found]
        for line in query(f"SELECT oi.order_id, p.product_id, p.name, p.unit, oi.quantity, {LINE_COLUMNS}"
                          " FROM order_item oi JOIN product p ON p.product_id = oi.product_id"
                          f" WHERE oi.order_id IN ({placeholders(ids)}) ORDER BY p.name", ids):
            lines.setdefault(line["order_id"], []).append(line)
    bags, drops = OrderedDict(), OrderedDict()
    for order in found:
        order = dict(order, lines=lines.get(order["order_id"], []))
        bag = bags.setdefault(order["customer_id"], {"customer_id": order["customer_id"], "first_name":
                                                     order["first_name"], "email": order["email"], "orders": []})
        bag["orders"].append(order)
        drop = drops.setdefault(order["producer_id"], {"producer_id": order["producer_id"],
                                                       "business_name": order["business_name"], "picks": {},
                                                       "orders": []})
        drop["orders"].append(order)
        for line in order["lines"]:
            pick = drop["picks"].setdefault(line["product_id"], dict(line, quantity=0))
            pick["quantity"] += line["quantity"]
    for bag in bags.values():
        bag["collected"] = all(order["status"] == "completed" for order in bag["orders"])
        bag["total"] = sum(order["total"] for order in bag["orders"])
    drop_list = sorted(drops.values(), key=lambda drop: drop["business_name"].lower())
    for drop in drop_list:
        drop["picks"] = sorted(drop["picks"].values(), key=lambda pick: pick["name"].lower())
    return list(bags.values()), drop_list


@transactional
def check_in(hub_id, day, customer_id, operator_id):
    """The customer collected their basket at the hub: each of their orders there that day not yet handed over
    is completed (invoiced and emailed), in one transaction. The ids completed; empty when there was nothing
    left to hand over."""
    done = []
    for order in day_orders(hub_id, day, customer_id, lock=True):
        if order["status"] in orders.COLLECTABLE_AT_HUB:
            orders.collect_at_hub(order["order_id"], operator_id)
            done.append(order["order_id"])
    return done


# --- A customer's basket: one pick-up for orders from several producers -----------------

class BasketRefused(Exception):
    """The basket cannot be moved: problem says why; nothing changed."""

    def __init__(self, problem):
        super().__init__(problem)
        self.problem = problem


BASKET_COLUMNS = ("b.basket_id, b.customer_id, b.hub_id, b.hub_slot_id, b.basket_date, b.slot_start, b.slot_end,"
                  " b.fee, b.is_released, h.name, h.address, h.instructions, h.contact")


def customer_basket(customer_id, basket_id):
    """One of the customer's baskets with its hub and its orders (each with its lines and history); None when
    it is not theirs."""
    found = query(f"SELECT {BASKET_COLUMNS} FROM hub_basket b JOIN hub h ON h.hub_id = b.hub_id"
                  " WHERE b.basket_id = %s AND b.customer_id = %s", (basket_id, customer_id), one=True)
    if found is None:
        return None
    found["orders"] = basket_orders(basket_id)
    live = [order for order in found["orders"] if order["status"] != "cancelled"]
    found["total"] = sum((order["total"] for order in live), Decimal("0.00"))
    found["when"] = basket_when(found)
    cutoffs = [order["cutoff"] for order in live if order["cutoff"]]
    found["cutoff"] = min(cutoffs) if cutoffs else None
    found["collected"] = bool(live) and all(order["status"] == "completed" for order in live)
    return found


def basket_orders(basket_id):
    """A basket's orders (but those waiting for a card payment), each with its lines, history and cutoff, in
    three queries however many there are."""
    found = query(f"SELECT {orders.ORDER_COLUMNS}, o.customer_id, o.producer_id, pr.business_name,"
                  " pr.phone AS producer_phone, pr.public_email AS producer_email, pr.payment_info"
                  " FROM orders o JOIN producer pr ON pr.producer_id = o.producer_id WHERE o.basket_id = %s"
                  " AND o.status <> 'awaiting_payment' ORDER BY o.producer_id, o.order_id", (basket_id,))
    lines, history = {}, {}
    if found:
        ids = [order["order_id"] for order in found]
        among = placeholders(ids)
        for line in query(f"SELECT oi.order_id, oi.product_id, p.name, p.unit, oi.quantity, oi.unit_price,"
                          f" {LINE_COLUMNS} FROM order_item oi JOIN product p ON p.product_id = oi.product_id"
                          f" WHERE oi.order_id IN ({among}) ORDER BY p.name", ids):
            lines.setdefault(line["order_id"], []).append(line)
        for event in query("SELECT h.order_id, h.kind, h.from_status, h.to_status, h.changed_by_role, h.changed_at,"
                           " h.quantity_before, h.quantity_after, h.note, p.name, p.unit, p.sold_by, p.measure"
                           " FROM order_status_history h LEFT JOIN product p ON p.product_id = h.product_id"
                           f" WHERE h.order_id IN ({among}) ORDER BY h.history_id", ids):
            history.setdefault(event["order_id"], []).append(event)
    for order in found:
        order.update(lines=lines.get(order["order_id"], []), history=history.get(order["order_id"], []),
                     cutoff=orders.order_cutoff(order))
    return found


def upcoming_baskets(customer_id, today=None, limit=20):
    """The customer's baskets from today on with an order in them, soonest first, each with its when."""
    found = query(f"SELECT {BASKET_COLUMNS}, COUNT(o.order_id) AS order_count FROM hub_basket b"
                  " JOIN hub h ON h.hub_id = b.hub_id JOIN orders o ON o.basket_id = b.basket_id"
                  " AND o.status NOT IN ('cancelled', 'awaiting_payment') WHERE b.customer_id = %s"
                  " AND b.basket_date >= %s GROUP BY b.basket_id ORDER BY b.basket_date, b.slot_start, b.basket_id"
                  " LIMIT %s", (customer_id, today or fulfilment.local_today(), limit))
    for basket in found:
        basket["when"] = basket_when(basket)
    return found


def basket_when(basket):
    """'Sat 12 Dec, 10:00–13:00' for a basket."""
    return fulfilment.format_window(basket["basket_date"], fulfilment.as_time(basket["slot_start"]),
                                    fulfilment.as_time(basket["slot_end"]))


def basket_move_problem(basket, now=None):
    """Why the customer can no longer move their basket, or None while they can: each order in it must still be
    changeable (before its cutoff, not yet being handed over)."""
    live = [order for order in basket["orders"] if order["status"] != "cancelled"]
    if not live:
        return "This basket has no orders left in it."
    for order in live:
        problem = changes.customer_edit_problem(order, now)
        if problem:
            return problem
    return None


def basket_times(basket, now=None):
    """The hub times the basket can move to: those where every producer in it delivers, open and not full."""
    live = [order for order in basket["orders"] if order["status"] != "cancelled"]
    offers, _ = catalogue.load_offers([order["producer_id"] for order in live], now)
    times = {}
    for order in live:
        for occurrence in offers[order["producer_id"]].occurrences:
            if occurrence.option["hub_id"] == basket["hub_id"] and checkout.hub_key(occurrence):
                times.setdefault(checkout.hub_key(occurrence), {})[order["producer_id"]] = occurrence
    return [{"key": f"{hub_slot_id}@{day.isoformat()}", "when": next(iter(found.values())).when, "occurrences": found,
             "current": (hub_slot_id, day) == (basket["hub_slot_id"], basket["basket_date"])}
            for (hub_slot_id, day), found in sorted(times.items(), key=lambda item: (item[0][1], item[0][0]))
            if len(found) == len({order["producer_id"] for order in live})]


@transactional
def move_basket(customer_id, basket_id, key, now=None):
    """As the customer, move their basket to another time at its hub (key, <hub_slot_id>@<date>), before
    ordering closes: every order in it moves, each producer is told, the basket's place at the hub moves
    within its capacity, all in one transaction. Returns the basket as it is now; None when it is not theirs.
    The customer's row is locked first, as checkout locks it, so a checkout of theirs never sees a basket half moved."""
    checkout.lock_cart(customer_id)
    if query("SELECT basket_id FROM hub_basket WHERE basket_id = %s AND customer_id = %s FOR UPDATE",
             (basket_id, customer_id), one=True) is None:
        return None
    for row in query("SELECT order_id FROM orders WHERE basket_id = %s AND status NOT IN ('cancelled',"
                     " 'awaiting_payment') ORDER BY order_id", (basket_id,)):
        changes.lock_order("customer", customer_id, row["order_id"])
    basket = customer_basket(customer_id, basket_id)
    problem = basket_move_problem(basket, now)
    if problem:
        raise BasketRefused(problem)
    time = next((time for time in basket_times(basket, now) if time["key"] == key), None)
    if time is None:
        raise BasketRefused("That pick-up time is no longer open for everything in your basket: choose another.")
    if time["current"]:
        return basket
    first = next(iter(time["occurrences"].values()))
    hub_slot_id, day = checkout.hub_key(first)
    execute("UPDATE hub_booking SET booked = booked - 1 WHERE hub_slot_id = %s AND booking_date = %s AND booked > 0",
            (basket["hub_slot_id"], basket["basket_date"]))
    try:
        checkout.book_hub_place(hub_slot_id, day, first.option["capacity"], first)
    except checkout.CheckoutRefused as refusal:
        raise BasketRefused(refusal.problems[0]) from None
    for order in basket["orders"]:
        if order["status"] != "cancelled":
            changes.move_to(changes.lock_order("customer", customer_id, order["order_id"]), "customer", customer_id,
                            time["occurrences"][order["producer_id"]], "with the basket", with_basket=True)
    execute("UPDATE hub_basket SET hub_slot_id = %s, basket_date = %s, slot_start = %s, slot_end = %s"
            " WHERE basket_id = %s", (hub_slot_id, day, first.start, first.end, basket_id))
    return customer_basket(customer_id, basket_id)


BAG_CSV_HEADER = ["customer", "email", "order", "producer", "product", "quantity", "status"]


def bag_csv_rows(bags):
    """The bag list as spreadsheet rows: one per line of each order of each customer."""
    for bag in bags:
        for order in bag["orders"]:
            for line in order["lines"]:
                yield [bag["first_name"], bag["email"], order["order_id"], order["business_name"], line["name"],
                       measures.quantity_text(line, line["quantity"]), order["status"]]
