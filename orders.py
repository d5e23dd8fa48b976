"""Orders: their statuses and the one transition table, loading and listing a customer's or a producer's own
orders, changing their status and recording payment (each with its history row and its email, in one
transaction), and the packing lists of a day. It knows nothing of requests: the acting account comes in
as (role, account_id), and an order that is not theirs is None or OrderNotFound."""
import datetime
from decimal import Decimal

import db
import fulfilment
import invoices
import ledger
import mail
import measures
import shapes
import webhooks
from db import execute, placeholders, query, transactional
from measures import LINE_COLUMNS


class OrderNotFound(Exception):
    """No such order among the acting account's own."""


ORDER_STATUSES = ["awaiting_payment", "pending", "confirmed", "ready", "out_for_delivery", "completed", "cancelled"]
# The one transition table: from each status, the statuses it may move to and who may move it.
ORDER_TRANSITIONS = {
    "pending": {"confirmed": {"producer"}, "cancelled": {"producer", "customer"}},
    "confirmed": {"ready": {"producer"}, "out_for_delivery": {"producer"}, "cancelled": {"producer", "customer"}},
    "ready": {"completed": {"producer"}},
    "out_for_delivery": {"completed": {"producer"}},
}
FULFILMENT_STEP = {"collection": "ready", "delivery": "out_for_delivery"}
STATUS_LABELS = {
    "awaiting_payment": "Awaiting payment",
    "pending": "Pending",
    "confirmed": "Confirmed",
    "ready": "Ready to collect",
    "out_for_delivery": "Out for delivery",
    "completed": "Completed",
    "cancelled": "Cancelled",
}
COMPLETED_LABELS = {"collection": "Collected", "delivery": "Delivered"}


def status_label(status, order_type=None):
    """The words customers and producers see for a status; a completed order says how it ended when its type is known."""
    if status == "completed" and order_type:
        return COMPLETED_LABELS[order_type]
    return STATUS_LABELS[status]


def order_cutoff(order):
    """When ordering closed for the occurrence the order is for; None for an order with no dated slot."""
    if order["fulfilment_date"] is None or order["cutoff_hours"] is None:
        return None
    return fulfilment.cutoff_instant(order["fulfilment_date"], order["slot_start"], order["cutoff_hours"])


def next_statuses(order, role):
    """The statuses role may move an order to next, from the one transition table.

    A customer's cancel also closes with the slot's ordering: after the cutoff the producer is packing it.
    """
    other_steps = {step for kind, step in FULFILMENT_STEP.items() if kind != order["order_type"]}
    moves = [to for to, roles in ORDER_TRANSITIONS.get(order["status"], {}).items()
             if role in roles and to not in other_steps]
    cutoff = order_cutoff(order)
    if role == "customer" and cutoff is not None and fulfilment.utc_now() >= cutoff:
        moves = [to for to in moves if to != "cancelled"]
    if order["fulfilment_date"] is not None and fulfilment.local_today() < order["fulfilment_date"]:
        moves = [to for to in moves if to != "completed"]  # nothing is collected or delivered before its day
    return moves


def order_when(order):
    """When the customer gets the order, as promised at checkout: a dated window with its zone, by
    arrangement, or None for an order from before fulfilment options existed."""
    if order["fulfilment_date"] is not None:
        return fulfilment.format_window(order["fulfilment_date"], order["slot_start"], order["slot_end"])
    return "By arrangement" if order["option_id"] is not None else None


ORDER_OWNER_COLUMN = {"customer": "o.customer_id", "producer": "o.producer_id"}
ORDERS_PER_PAGE = 20
# What every order list and page shows of an order: its item count and total are kept by triggers
# from its lines, and the total always includes the fee.
ORDER_COLUMNS = ("o.order_id, o.status, o.order_type, o.placed_at, o.item_count, o.goods_total, o.fee,"
                 " o.goods_total + o.fee AS total, o.payment_status, o.payment_method, o.coop_fee_percent, o.option_id,"
                 " o.fulfilment_name, o.fulfilment_date, o.slot_start, o.slot_end, o.cutoff_hours, o.basket_id,"
                 " o.hub_fee")


def own_orders_condition(role, account_id, status=None, day=None):
    """The WHERE clause (on alias o) and its arguments for a customer's or a producer's own orders, narrowed to
    a status and to the day they are collected or delivered when given."""
    where, args = f"{ORDER_OWNER_COLUMN[role]} = %s", [account_id]
    if role == "producer":  # a card-paid order reaches its producer once it is paid
        where += " AND o.status <> 'awaiting_payment'"
    if status:
        where, args = where + " AND o.status = %s", args + [status]
    if day:
        where, args = where + " AND o.fulfilment_date = %s", args + [day]
    return where, args


def load_order(order_id, where="TRUE", args=()):
    """An order with both parties' details, its lines, history and cutoff; None unless it meets where (on alias o)."""
    found = load_orders([order_id], where, args)
    return found[0] if found else None


# An order's lines, read beside it: (table alias, column) of each, named line_<column> in the statement.
LINE_SOURCES = ([("oi", "product_id"), ("p", "name"), ("p", "unit"), ("oi", "quantity"), ("oi", "unit_price")]
                + [tuple(column.strip().split(".")) for column in LINE_COLUMNS.split(",")]
                + [("p", "step"), ("p", "min_quantity"), ("p", "max_quantity")])


def load_orders(order_ids, where="TRUE", args=(), history=True):
    """The orders of order_ids that meet where, each as load_order gives it (without its history unless
    history), in order_ids' order: the orders with their lines in one statement, their history in another."""
    if not order_ids:
        return []
    found = {}
    for row in query(
            f"SELECT {ORDER_COLUMNS}, o.customer_id, o.producer_id, o.delivery_address, o.postcode, o.phone,"
            " o.fulfilment_address, o.fulfilment_instructions, o.paid_at, c.first_name, c.email,"
            " pr.business_name, pr.email AS producer_account_email, pr.phone AS producer_phone,"
            " pr.public_email AS producer_email, pr.payment_info, "
            + ", ".join(f"{table}.{column} AS line_{column}" for table, column in LINE_SOURCES)
            + " FROM orders o JOIN customer c ON c.customer_id = o.customer_id"
            " JOIN producer pr ON pr.producer_id = o.producer_id"
            " LEFT JOIN order_item oi ON oi.order_id = o.order_id LEFT JOIN product p ON p.product_id = oi.product_id"
            f" WHERE o.order_id IN ({placeholders(order_ids)}) AND {where} ORDER BY o.order_id, p.name",
            [*order_ids, *args]):
        line = {column: row.pop(f"line_{column}") for _, column in LINE_SOURCES}
        order = found.setdefault(row["order_id"], dict(row, lines=[], **({"history": []} if history else {})))
        if line["product_id"] is not None:
            order["lines"].append(line)
    if not found:
        return []
    for change in () if not history else query(
            "SELECT h.order_id, h.kind, h.from_status, h.to_status, h.changed_by_role, h.changed_at,"
            " h.quantity_before, h.quantity_after, h.note, p.name, p.unit, p.sold_by, p.measure"
            " FROM order_status_history h LEFT JOIN product p ON p.product_id = h.product_id"
            f" WHERE h.order_id IN ({placeholders(found)}) ORDER BY h.history_id", list(found)):
        found[change.pop("order_id")]["history"].append(change)
    for order in found.values():
        order["cutoff"] = order_cutoff(order)
        order["documents"] = invoices.for_order(order["order_id"]) if order["status"] == "completed" else []
    return [found[order_id] for order_id in order_ids if order_id in found]


def load_own_order(role, account_id, order_id):
    """One of this customer's or producer's orders, as load_order gives it; None when it is not theirs."""
    return load_order(order_id, *own_orders_condition(role, account_id))


def newest_orders(role, account_id, page, per_page, status=None, day=None):
    """A customer's or producer's orders, newest first, page by page, each with its item count and total."""
    where, args = own_orders_condition(role, account_id, status, day)
    return query(
        f"SELECT {ORDER_COLUMNS}, o.customer_id, o.producer_id, c.first_name, pr.business_name"
        f" FROM (SELECT o.* FROM orders o WHERE {where}"
        "       ORDER BY o.placed_at DESC, o.order_id DESC LIMIT %s OFFSET %s) o"
        " JOIN customer c ON c.customer_id = o.customer_id"
        " JOIN producer pr ON pr.producer_id = o.producer_id"
        " ORDER BY o.placed_at DESC, o.order_id DESC",
        args + [per_page, (page - 1) * per_page])


def order_page(role, account_id, page, per_page=ORDERS_PER_PAGE, status=None, day=None):
    """One page of a customer's or producer's orders (of a status, for a day), newest first, with totals; and
    how many orders there are."""
    where, args = own_orders_condition(role, account_id, status, day)
    if role == "producer" and day is None:
        total = query("SELECT CAST(COALESCE(SUM(n), 0) AS SIGNED) AS n FROM order_count o WHERE " + where,
                      args, one=True)["n"]
    else:
        total = query(f"SELECT COUNT(*) AS n FROM orders o WHERE {where}", args, one=True)["n"]
    return newest_orders(role, account_id, page, per_page, status, day), total


def lock_own_order(role, account_id, order_id):
    """One of this customer's or producer's orders, its row locked for a change, with its slot, postcode and
    both parties' ids; OrderNotFound when it is not theirs."""
    where, args = own_orders_condition(role, account_id)
    order = query(f"SELECT {ORDER_COLUMNS}, o.slot_id, o.postcode, o.customer_id, o.producer_id FROM orders o"
                  f" WHERE o.order_id = %s AND {where} FOR UPDATE", [order_id] + args, one=True)
    if order is None:
        raise OrderNotFound(order_id)
    return order


@transactional
def change_order_status(role, account_id, order_id, new_status):
    """Move one of this customer's or producer's orders to new_status if the transition table lets them.

    Returns the order as it was and whether it moved; OrderNotFound when it is not theirs. The row lock
    makes the check and the change one step, so two racing cancels restock only once.
    """
    order = lock_own_order(role, account_id, order_id)
    if new_status not in next_statuses(order, role):
        return order, False
    execute("UPDATE orders SET status = %s WHERE order_id = %s", (new_status, order_id))
    if new_status == "cancelled":
        execute("UPDATE stock s JOIN order_item oi ON oi.product_id = s.product_id"
                " SET s.quantity_available = s.quantity_available + oi.quantity WHERE oi.order_id = %s",
                (order_id,))
        if order["slot_id"] is not None:
            execute("UPDATE slot_booking SET booked = booked - 1 WHERE slot_id = %s AND slot_date = %s AND booked > 0",
                    (order["slot_id"], order["fulfilment_date"]))
        leave_basket(order, (role, account_id))
    execute("INSERT INTO order_status_history (order_id, from_status, to_status, changed_by_role, changed_by_id)"
            " VALUES (%s, %s, %s, %s, %s)", (order_id, order["status"], new_status, role, account_id))
    ledger.sync_order(order_id, f"Order {STATUS_LABELS[new_status].lower()}", (role, account_id))
    if new_status == "completed":
        invoices.issue_for_completed(order_id)
    announce_status(order_id, new_status, role)
    return order, True


def release_order(order):
    """A card-paid order whose payment never came: cancelled, its stock and its slot's place given back, in the
    caller's transaction. It was never posted to the ledger, so nothing is."""
    execute("UPDATE orders SET status = 'cancelled' WHERE order_id = %s", (order["order_id"],))
    execute("UPDATE stock s JOIN order_item oi ON oi.product_id = s.product_id"
            " SET s.quantity_available = s.quantity_available + oi.quantity WHERE oi.order_id = %s",
            (order["order_id"],))
    if order["slot_id"] is not None:
        execute("UPDATE slot_booking SET booked = booked - 1 WHERE slot_id = %s AND slot_date = %s AND booked > 0",
                (order["slot_id"], order["fulfilment_date"]))
    leave_basket(query("SELECT order_id, basket_id, hub_fee FROM orders WHERE order_id = %s", (order["order_id"],),
                       one=True), ("customer", None))
    execute("INSERT INTO order_status_history (order_id, from_status, to_status, changed_by_role, changed_by_id,"
            " note) SELECT order_id, 'awaiting_payment', 'cancelled', 'customer', customer_id, 'Not paid in time'"
            " FROM orders WHERE order_id = %s", (order["order_id"],))


def leave_basket(order, actor):
    """A cancelled order leaves its hub basket, in the caller's transaction: the basket's last order frees its
    place at the hub; an order that carried the hub's fee passes it to the basket's next order not paid by
    card (a card was charged for what it was then), or the fee is waived."""
    if order["basket_id"] is None:
        return
    basket = query("SELECT hub_slot_id, basket_date FROM hub_basket WHERE basket_id = %s FOR UPDATE",
                   (order["basket_id"],), one=True)
    rest = query("SELECT order_id, payment_method, status FROM orders WHERE basket_id = %s AND order_id <> %s"
                 " AND status <> 'cancelled' ORDER BY producer_id, order_id FOR UPDATE",
                 (order["basket_id"], order["order_id"]))
    if not rest:
        execute("UPDATE hub_basket SET is_released = 1 WHERE basket_id = %s", (order["basket_id"],))
        execute("UPDATE hub_booking SET booked = booked - 1 WHERE hub_slot_id = %s AND booking_date = %s"
                " AND booked > 0", (basket["hub_slot_id"], basket["basket_date"]))
        return
    if not order["hub_fee"]:
        return
    execute("UPDATE orders SET fee = fee - hub_fee, hub_fee = 0 WHERE order_id = %s", (order["order_id"],))
    heir = next((row for row in rest if row["payment_method"] != "card"), None)
    if heir:
        execute("UPDATE orders SET fee = fee + %s, hub_fee = hub_fee + %s WHERE order_id = %s",
                (order["hub_fee"], order["hub_fee"], heir["order_id"]))
        ledger.sync_order(heir["order_id"], f"Pick-up fee, from cancelled order #{order['order_id']}", actor)


# The co-op hands a basket over at its pick-up: its orders not yet handed over are collected.
COLLECTABLE_AT_HUB = {"pending", "confirmed", "ready"}


def collect_at_hub(order_id, operator_id):
    """The operator handed an order over at a co-op pick-up, in the caller's transaction with its row locked:
    completed, with its history, ledger and invoice, and its customer emailed their invoice."""
    execute("UPDATE orders SET status = 'completed' WHERE order_id = %s", (order_id,))
    execute("INSERT INTO order_status_history (order_id, from_status, to_status, changed_by_role, changed_by_id)"
            " SELECT order_id, 'ready', 'completed', 'operator', %s FROM orders WHERE order_id = %s",
            (operator_id, order_id))
    ledger.sync_order(order_id, "Order collected", ("operator", operator_id))
    invoices.issue_for_completed(order_id)
    announce_status(order_id, "completed", "operator")


def change_statuses(producer_id, order_ids, new_status):
    """Move several of the producer's orders to new_status, each in its own transaction, checked, recorded
    and emailed as if moved alone; return (moved ids, refused ids)."""
    moved, refused = [], []
    for order_id in sorted(set(order_ids)):
        (moved if change_order_status("producer", producer_id, order_id, new_status)[1] else refused).append(order_id)
    return moved, refused


@transactional
def record_payment(producer_id, order_id, paid):
    """Mark one of the producer's orders paid on collection or delivery (or not), with who did it, in its
    history and the ledger; return the order as it was and whether it changed, or OrderNotFound. A cancelled
    order is never paid, and one paid through the co-op (credit, transfer) is settled by the ledger, not by hand."""
    order = query("SELECT order_id, customer_id, status, payment_status, payment_method FROM orders"
                  " WHERE order_id = %s AND producer_id = %s FOR UPDATE", (order_id, producer_id), one=True)
    if order is None:
        raise OrderNotFound(order_id)
    new_status = "paid" if paid else "unpaid"
    if (order["status"] == "cancelled" or order["payment_method"] in ledger.PAID_THROUGH_COOP
            or order["payment_status"] == new_status):
        return order, False
    execute("UPDATE orders SET payment_status = %s, paid_at = IF(%s, UTC_TIMESTAMP(), NULL), paid_by_id = %s"
            " WHERE order_id = %s", (new_status, paid, producer_id if paid else None, order_id))
    execute("INSERT INTO order_status_history (order_id, kind, from_status, to_status, changed_by_role, changed_by_id)"
            " VALUES (%s, 'payment', %s, %s, 'producer', %s)", (order_id, order["payment_status"], new_status, producer_id))
    if paid:
        ledger.record_paid_at_collection(order_id, order["customer_id"], producer_id, ("producer", producer_id))
    else:
        ledger.reverse_payments(order_id, "Marked not paid by the producer", ("producer", producer_id))
    return order, True


def how_to_pay(order):
    """How the customer pays an order, in a sentence: from their credit, by transfer, or as its producer says."""
    if order["payment_method"] == "card":
        return ("Paid by card." if order["payment_status"] == "paid" else
                "Held on your card: you are charged what it weighs, at most the estimate plus the tolerance, "
                "once it is packed." if order["status"] not in ("awaiting_payment", "cancelled") else
                "By card, when you check out.")
    if order["payment_method"] == "transfer":
        return ("Paid by bank transfer." if order["payment_status"] == "paid" else
                f"By bank transfer to the co-op, with the reference {ledger.payment_reference(order['order_id'])}.")
    if order["payment_method"] == "credit":
        return ("Paid from your credit with the co-op." if order["payment_status"] == "paid" else
                "From your credit with the co-op: top it up to pay what is still owed.")
    return order["payment_info"] or f"Pay {order['business_name']} when you collect or receive your order."


def open_orders_with(customer_id, producer_id, limit=5):
    """The customer's orders from a producer that are not yet ready, newest first, each with its cutoff: those
    they may still add to (changes.py decides which, by the cutoff)."""
    rows = query(f"SELECT {ORDER_COLUMNS} FROM orders o WHERE o.customer_id = %s AND o.producer_id = %s"
                 " AND o.status IN ('pending', 'confirmed') ORDER BY o.order_id DESC LIMIT %s",
                 (customer_id, producer_id, limit))
    for row in rows:
        row["cutoff"] = order_cutoff(row)
    return rows


def checkout_order_ids(customer_id, key):
    """The orders one checkout of the customer's placed, by its one-time key."""
    return [row["order_id"] for row in query(
        "SELECT order_id FROM orders WHERE customer_id = %s AND checkout_key = %s ORDER BY order_id",
        (customer_id, key))]


def checkout_orders(customer_id, key):
    """The customer's orders of one checkout, each whole, as its confirmation page shows them."""
    return load_orders(checkout_order_ids(customer_id, key))


def announce_checkout(order_ids):
    """One confirmation for the customer's whole checkout and a new-order email to each producer, promised here
    and written as they are sent (checkout_confirmation, new_order_email); and order.placed to the webhooks that
    want it, from the orders as placed."""
    mail.promise_all([("order_confirmation", f"checkout:{order_ids[0]}", order_ids)]
                     + [("new_order", f"order-new:{order_id}", [order_id]) for order_id in order_ids])
    wanted = webhooks.wanting_orders("order.placed", order_ids)
    wanting = [order_id for order_id in order_ids if wanted[order_id]]
    for order in load_orders(wanting, history=False):
        emit_order_event("order.placed", order["order_id"], wanted[order["order_id"]], order)


@mail.writes("order_confirmation")
def checkout_confirmation(order_ids):
    """The customer's confirmation of a checkout's orders: (recipient, subject, context), or None."""
    orders = load_orders(order_ids, history=False)
    if not orders:
        return None
    numbers = ", ".join(f"#{order['order_id']}" for order in orders)
    return orders[0]["email"], f"Your noeari order{'s' if len(orders) > 1 else ''} {numbers}", {"orders": orders}


@mail.writes("new_order")
def new_order_email(order_ids):
    """A producer's email about a new order: (recipient, subject, context), or None."""
    orders = load_orders(order_ids, history=False)
    if not orders:
        return None
    order = orders[0]
    return (order["producer_account_email"],
            f"New order #{order['order_id']} from {order['first_name']}: {order_when(order) or 'to arrange'}",
            {"order": order})


def order_json(order):
    """The order as the API answers it and webhooks send it (with its lines when it was loaded whole)."""
    when = order_when(order)
    shape = {"id": order["order_id"], "status": order["status"], "type": order["order_type"],
             "placed_at": shapes.utc(order["placed_at"]),
             "producer": {"id": order["producer_id"], "name": order["business_name"]},
             "customer": {"id": order["customer_id"], "name": order["first_name"]},
             "place": order["fulfilment_name"], "when": when,
             "date": order["fulfilment_date"].isoformat() if order["fulfilment_date"] else None,
             "ordering_closes_at": shapes.instant(order_cutoff(order)),
             "goods": shapes.money(order["goods_total"]), "fee": shapes.money(order["fee"]), "total": shapes.money(order["total"]),
             "payment": {"method": order["payment_method"], "status": order["payment_status"]},
             "basket_id": order["basket_id"]}
    if "lines" in order:
        shape["lines"] = [{"product_id": line["product_id"], "name": line["name"],
                           "quantity": measures.plain(line["quantity"]), "unit_price": shapes.money(line["unit_price"]),
                           "line_total": shapes.money(line["line_total"]),
                           "weight": measures.plain(line["weight"]) if line.get("weight") is not None else None}
                          for line in order["lines"]]
    return shape


def order_event(event_type, order_id, key, amount=None):
    """A webhook event about an order, in the current transaction: the order as order_json gives it, or for
    a payment event the order and the amount paid or refunded. key names the change, so it is sent once."""
    wanted = webhooks.wanting_order(event_type, order_id)
    return emit_order_event(event_type, key, wanted, load_order(order_id), amount) if wanted else None


def emit_order_event(event_type, key, wanted, order, amount=None):
    """order_event for an order loaded already, to the endpoints of wanted."""
    data = order_json(order) if amount is None else {"amount": shapes.money(amount), "order": order_json(order)}
    return webhooks.emit(event_type, f"{event_type}:{key}", wanted, data)


STATUS_SUBJECTS = {
    "confirmed": "Order #{0} is confirmed",
    "ready": "Order #{0} is ready to collect",
    "out_for_delivery": "Order #{0} is out for delivery",
    "cancelled": "Order #{0} was cancelled by {1}",
    "completed": "Your invoice for order #{0} from {1}",
}


def announce_status(order_id, new_status, role):
    """Tell the customer when the producer confirms, readies, sends out or cancels their order; tell the
    producer when the customer cancels; and the webhooks that want it."""
    order_event("order.cancelled" if new_status == "cancelled" else "order.status_changed", order_id,
                         f"{order_id}:{new_status}")
    if role == "customer" and new_status == "cancelled":
        order = load_order(order_id)
        mail.send("order_cancelled", f"order-cancelled:{order_id}", order["producer_account_email"],
                  f"Order #{order_id} was cancelled by {order['first_name']}: do not pack it", order=order)
        return
    if new_status not in STATUS_SUBJECTS or role not in ("producer", "operator"):
        return
    order = load_order(order_id)
    mail.send("order_status", f"order-status:{order_id}:{new_status}", order["email"],
         STATUS_SUBJECTS[new_status].format(order_id, order["business_name"]), order=order, status=new_status,
         documents=invoices.for_order(order_id))


def packing_list(producer_id, day, option_id=None, slot_start=None):
    """The producer's orders for day (or one occurrence of it) that are not cancelled, each with its lines, the
    quantity of each product across them, and how many were cancelled; None when there is no order."""
    where, args = ("o.producer_id = %s AND o.fulfilment_date = %s AND o.status <> 'awaiting_payment'",
                   [producer_id, day])
    if option_id is not None:
        where, args = where + " AND o.option_id = %s AND o.slot_start = %s", args + [option_id, slot_start]
    orders = query(
        f"SELECT {ORDER_COLUMNS}, o.customer_id, o.delivery_address, o.postcode, o.phone, c.first_name, c.email"
        f" FROM orders o JOIN customer c ON c.customer_id = o.customer_id WHERE {where}"
        " ORDER BY o.slot_start, o.fulfilment_name, o.order_id", args)
    if not orders:
        return None
    lines = query(
        f"SELECT oi.order_id, p.product_id, p.name, p.unit, oi.quantity, oi.unit_price, {LINE_COLUMNS}"
        " FROM orders o JOIN order_item oi ON oi.order_id = o.order_id"
        f" JOIN product p ON p.product_id = oi.product_id WHERE {where} AND o.status <> 'cancelled'"
        " ORDER BY oi.order_id, p.name", args)
    live = [order for order in orders if order["status"] != "cancelled"]
    by_order = {order["order_id"]: dict(order, lines=[]) for order in live}
    picks = {}
    for line in lines:
        by_order[line["order_id"]]["lines"].append(line)
        pick = picks.setdefault(line["product_id"], dict(line, quantity=0, estimate=0, weight=0, unweighed=0))
        pick["quantity"] += line["quantity"]
        if line["sold_by"] == "weighed":
            pick["estimate"] += measures.estimated_weight(line)
            pick["weight"] += line["weight"] or 0
            pick["unweighed"] += line["weight"] is None
    for pick in picks.values():
        pick["weight"] = None if pick["unweighed"] else pick["weight"]
    return (list(by_order.values()), sorted(picks.values(), key=lambda pick: pick["name"].lower()),
            len(orders) - len(live))


# --- Lists and spreadsheets across orders, and the operator's figures --------

def order_filter(where, args, status=None, placed_from=None, placed_to=None, producer_id=None, day=None):
    """where (SQL conditions on alias o) and args, narrowed to a status, to orders placed from one local day
    to another (both included), to one producer, and to the day orders are collected or delivered; each only
    when given."""
    narrowing = [("o.status = %s", status), ("o.fulfilment_date = %s", day),
                 ("o.placed_at >= %s", placed_from and fulfilment.stored_day_start(placed_from)),
                 ("o.placed_at < %s", placed_to and fulfilment.stored_day_start(placed_to + datetime.timedelta(days=1))),
                 ("o.producer_id = %s", producer_id)]
    for condition, value in narrowing:
        if value is not None:
            where, args = where + [condition], args + [value]
    return where, args


PRODUCER_CSV_COLUMNS = ["order id", "placed at", "customer first name", "product", "quantity", "unit", "unit price",
                        "estimated weight (kg)", "final weight (kg)", "line total", "order type", "status", "fee",
                        "order total", "fulfilment date", "window", "paid"]


def producer_csv_rows(producer_id, **filters):
    """One row per line of the producer's orders (narrowed as order_filter does), oldest first: the query runs
    now, and its rows are read as they are sent."""
    where, args = order_filter(["o.producer_id = %s"], [producer_id], **filters)
    lines = db.stream(
        "SELECT o.order_id, o.placed_at, c.first_name, p.name, oi.quantity, p.unit, oi.unit_price, oi.sold_by,"
        " oi.measure, oi.estimated_weight, oi.weight, oi.line_total, o.order_type, o.status, o.fee,"
        " o.goods_total + o.fee,"
        " o.fulfilment_date, o.slot_start, o.slot_end, o.payment_status"
        " FROM orders o JOIN customer c ON c.customer_id = o.customer_id"
        " JOIN order_item oi ON oi.order_id = o.order_id"
        " JOIN product p ON p.product_id = oi.product_id"
        f" WHERE {' AND '.join(where)} ORDER BY o.placed_at, o.order_id, p.name", args)
    return producer_csv_lines(lines, fulfilment.zone())


def producer_csv_lines(lines, local_zone):
    for (order_id, placed_at, first_name, product, quantity, unit, unit_price, sold_by, measure, estimate, weight,
         line_total, order_type, state, fee, total, day, start, end, payment) in lines:
        window = f"{fulfilment.as_time(start):%H:%M}-{fulfilment.as_time(end):%H:%M}" if day else ""
        line = {"sold_by": sold_by, "measure": measure, "unit": unit, "quantity": quantity,
                "estimated_weight": estimate, "weight": weight}
        yield [order_id, fulfilment.stored_local(placed_at, local_zone), first_name, product,
               *measures.csv_quantities(line), unit_price, *measures.csv_weights(line), line_total, order_type, state,
               fee, total, day.isoformat() if day else "", window, payment]


def all_orders_page(page, per_page, **filters):
    """A page of every producer's orders (narrowed as order_filter does), newest first, with the customer's
    first name and the producer's name; and how many there are in all."""
    where, args = order_filter([], [], **filters)
    where = " AND ".join(where) or "TRUE"
    total = query(f"SELECT COUNT(*) AS n FROM orders o WHERE {where}", args, one=True)["n"]
    rows = query(
        f"SELECT {ORDER_COLUMNS}, o.customer_id, o.producer_id, c.first_name, pr.business_name"
        f" FROM (SELECT o.* FROM orders o WHERE {where}"
        " ORDER BY o.placed_at DESC, o.order_id DESC LIMIT %s OFFSET %s) o"
        " JOIN customer c ON c.customer_id = o.customer_id JOIN producer pr ON pr.producer_id = o.producer_id"
        " ORDER BY o.placed_at DESC, o.order_id DESC", args + [per_page, (page - 1) * per_page])
    return rows, total


ALL_ORDERS_CSV_COLUMNS = ["order id", "placed at", "producer", "customer first name", "status", "type",
                          "fulfilment date", "items", "goods", "fee", "total", "paid"]


def all_orders_csv_rows(**filters):
    """One row per order of every producer (narrowed as order_filter does), oldest first: the query runs now,
    and its rows are read as they are sent."""
    where, args = order_filter([], [], **filters)
    rows = db.stream(
        "SELECT o.order_id, o.placed_at, pr.business_name, c.first_name, o.status, o.order_type, o.fulfilment_date,"
        " o.item_count, o.goods_total, o.fee, o.goods_total + o.fee, o.payment_status FROM orders o"
        " JOIN customer c ON c.customer_id = o.customer_id JOIN producer pr ON pr.producer_id = o.producer_id"
        f" WHERE {' AND '.join(where) or 'TRUE'} ORDER BY o.placed_at, o.order_id", args)
    local_zone = fulfilment.zone()
    return ([order_id, fulfilment.stored_local(placed, local_zone), producer, customer, status_label(status, kind),
             kind, *("" if value is None else value for value in rest)]
            for order_id, placed, producer, customer, status, kind, *rest in rows)


def weekly_figures(weeks=12, now=None):
    """Orders placed and their goods value (cancelled ones left out) per week, Monday to Sunday in TIMEZONE,
    over the last weeks, oldest first."""
    today = fulfilment.local_today(now)
    first = today - datetime.timedelta(days=today.weekday(), weeks=weeks - 1)
    rows = query("SELECT DATE(placed_at) AS day, HOUR(placed_at) AS hour, COUNT(*) AS orders, SUM(goods_total) AS goods"
                 " FROM orders WHERE placed_at >= %s AND status NOT IN ('cancelled', 'awaiting_payment')"
                 " GROUP BY DATE(placed_at), HOUR(placed_at)", (fulfilment.stored_day_start(first),))
    buckets = [{"week": first + datetime.timedelta(weeks=n), "orders": 0, "goods": Decimal("0.00")}
               for n in range(weeks)]
    for row in rows:
        placed = datetime.datetime.combine(row["day"], datetime.time(row["hour"]), fulfilment.UTC)
        index = (placed.astimezone(fulfilment.zone()).date() - first).days // 7
        if 0 <= index < weeks:
            buckets[index]["orders"] += row["orders"]
            buckets[index]["goods"] += row["goods"]
    return buckets


PACKING_CSV_COLUMNS = ["section", "date", "window", "option", "order id", "customer first name", "email", "phone",
                       "delivery address", "postcode", "product", "quantity", "unit", "estimated weight (kg)",
                       "final weight (kg)", "line total", "order total", "paid"]


def packing_csv_rows(day, rows, picks):
    """A day's packing list (as packing_list gives it) as spreadsheet rows: one per product to pick, then one
    per order line."""
    for pick in picks:
        yield ["pick list", day.isoformat(), "", "", "", "", "", "", "", "", pick["name"],
               *measures.csv_quantities(pick), *measures.csv_weights(pick), "", "", ""]
    for order in rows:
        window = f"{fulfilment.as_time(order['slot_start']):%H:%M}-{fulfilment.as_time(order['slot_end']):%H:%M}"
        for line in order["lines"]:
            yield ["order", day.isoformat(), window, order["fulfilment_name"], order["order_id"], order["first_name"],
                   order["email"], order["phone"] or "", order["delivery_address"] or "", order["postcode"] or "",
                   line["name"], *measures.csv_quantities(line), *measures.csv_weights(line), line["line_total"],
                   order["total"],
                   order["payment_status"]]
