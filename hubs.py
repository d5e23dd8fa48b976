"""The co-op's shared pick-ups (hubs): a place with weekly collection times, a cutoff, a capacity in baskets and
a fee per basket, run by the operator. A producer who joins a hub gets a collection option there (hub_id set),
whose place, cutoff and weekly times follow the hub's; leaving archives it, so past orders keep theirs.

Request-free: the acting account comes in as an argument.
"""
import datetime
from collections import OrderedDict

import fulfilment

import measures
import orders
from db import execute, query, transactional
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
                          f" WHERE hub_id IN ({', '.join(['%s'] * len(hub_ids))}) ORDER BY weekday, start_time",
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
    return execute(f"INSERT INTO hub ({', '.join(HUB_FIELDS)}) VALUES ({', '.join(['%s'] * len(HUB_FIELDS))})",
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


def is_hub_option(producer_id, option_id):
    """Whether one of the producer's options is their place at a hub (its place and times are the hub's)."""
    return query("SELECT 1 AS found FROM fulfilment_option WHERE option_id = %s AND producer_id = %s"
                 " AND hub_id IS NOT NULL", (option_id, producer_id), one=True) is not None


def next_days(found, today=None, days=14):
    """The dates of the hub's weekly times in the next two weeks, soonest first."""
    today = today or fulfilment.local_today()
    weekdays = {slot["weekday"] for slot in found["slots"]}
    return [today + datetime.timedelta(days=n) for n in range(days)
            if (today + datetime.timedelta(days=n)).weekday() in weekdays]


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
                          f" WHERE oi.order_id IN ({', '.join(['%s'] * len(ids))}) ORDER BY p.name", ids):
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


BAG_CSV_HEADER = ["customer", "email", "order", "producer", "product", "quantity", "status"]


def bag_csv_rows(bags):
    """The bag list as spreadsheet rows: one per line of each order of each customer."""
    for bag in bags:
        for order in bag["orders"]:
            for line in order["lines"]:
                yield [bag["first_name"], bag["email"], order["order_id"], order["business_name"], line["name"],
                       measures.quantity_text(line, line["quantity"]), order["status"]]
