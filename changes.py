"""Changing a placed order: a customer's edits until ordering closes, and a producer's shortages. Each change is
exact (stock, the minimum order and the fee rechecked and applied in one transaction, as at checkout), kept in
the order's history, and told to the other party by one email that gathers the changes of the next minute.

Request-free: the acting account comes in as (role, account_id); an order that is not theirs is OrderNotFound.
"""
from decimal import Decimal

import catalogue
import checkout
import fulfilment
import invoices
import ledger
import mail
import measures
import orders
import webhooks
from db import execute, query, transactional
from measures import LINE_COLUMNS


class ChangeRefused(Exception):
    """The change breaks a rule and nothing was changed: problem says why, in a sentence for the person."""

    def __init__(self, problem, closed=False):
        super().__init__(problem)
        self.problem, self.closed = problem, closed


# A customer may change an order while its producer has not started handing it over.
CUSTOMER_EDITABLE = {"pending", "confirmed"}
# A producer records a shortage on any order not yet handed over or cancelled.
PRODUCER_EDITABLE = {"pending", "confirmed", "ready", "out_for_delivery"}
TELL_AFTER_SECONDS = 60  # changes within this long of the first are told in one email
OTHER_PARTY = {"customer": "producer", "producer": "customer"}


def lock_order(role, account_id, order_id):
    """One of this customer's or producer's orders, locked for the change, with its cutoff; or OrderNotFound."""
    order = orders.lock_own_order(role, account_id, order_id)
    order.update(query("SELECT business_name, phone AS producer_phone, public_email AS producer_email"
                       " FROM producer WHERE producer_id = %s", (order["producer_id"],), one=True))
    order["cutoff"] = orders.order_cutoff(order)
    return order


def customer_edit_problem(order, now=None):
    """Why the customer can no longer change this order, or None while they can."""
    if order["status"] not in CUSTOMER_EDITABLE:
        return (f"Order #{order['order_id']} is {orders.status_label(order['status'], order['order_type']).lower()},"
                " so it can no longer be changed here.")
    if order["cutoff"] is not None and (now or fulfilment.utc_now()) >= order["cutoff"]:
        contact = " or ".join(filter(None, [order["producer_phone"], order["producer_email"]]))
        return (f"Ordering for {orders.order_when(order)} closed at {fulfilment.format_instant(order['cutoff'])}, "
                f"so order #{order['order_id']} can no longer be changed here. Please contact "
                f"{order['business_name']}{': ' + contact if contact else ''}.")
    return None


def still_open(order, now=None):
    """Whether the customer may still change the order: not yet ready, and ordering for it not closed."""
    return order["status"] in CUSTOMER_EDITABLE and (order["cutoff"] is None or (now or fulfilment.utc_now()) <
                                                     order["cutoff"])


def order_option(order):
    """The collection or delivery option the order was placed for (its rules now), or None for an old order."""
    if order["option_id"] is None:
        return None
    return query(f"SELECT {catalogue.OPTION_COLUMNS} FROM fulfilment_option o WHERE o.option_id = %s",
                 (order["option_id"],), one=True)


def order_line(order_id, product_id):
    """A line of the order, with how it was sold and the product's own steps now; None when there is none."""
    line = query(f"SELECT oi.product_id, oi.quantity, oi.unit_price, {LINE_COLUMNS}, p.name, p.unit, p.step,"
                 " p.min_quantity, p.max_quantity FROM order_item oi JOIN product p ON p.product_id = oi.product_id"
                 " WHERE oi.order_id = %s AND oi.product_id = %s", (order_id, product_id), one=True)
    return line


def take_stock(product, quantity):
    """Take quantity more of a product from stock (give it back when negative), never below 0."""
    if quantity > 0:
        if execute("UPDATE stock SET quantity_available = quantity_available - %s"
                   " WHERE product_id = %s AND quantity_available >= %s",
                   (quantity, product["product_id"], quantity)).rowcount != 1:
            left = query("SELECT quantity_available FROM stock WHERE product_id = %s", (product["product_id"],),
                         one=True)
            left = left["quantity_available"] if left else 0
            raise ChangeRefused(f"Only {measures.how_much(product, left)} more of {product['name']} "
                                f"{'is' if left == 1 else 'are'} in stock.")
        webhooks.stock_taken(product["product_id"], quantity)
    elif quantity < 0:
        execute("UPDATE stock SET quantity_available = quantity_available + %s WHERE product_id = %s",
                (-quantity, product["product_id"]))


def set_line(order_id, line, quantity):
    """Write a line's new quantity (0 removes it), repriced; a weighed line's weight goes with its old count."""
    if quantity == 0:
        execute("DELETE FROM order_item WHERE order_id = %s AND product_id = %s", (order_id, line["product_id"]))
        return
    changed = dict(line, quantity=quantity, weight=None)
    execute("UPDATE order_item SET quantity = %s, weight = NULL, line_total = %s"
            " WHERE order_id = %s AND product_id = %s",
            (quantity, measures.line_total(changed), order_id, line["product_id"]))


def insert_line(order_id, product, quantity):
    """A new line of product in the order, at today's price and selling rules."""
    line = dict(product, quantity=quantity)
    execute("INSERT INTO order_item (order_id, product_id, quantity, unit_price, sold_by, measure, estimated_weight,"
            " tolerance_percent, line_total) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (order_id, product["product_id"], quantity, product["price"], *checkout.order_line_selling(product),
             measures.line_total(line)))
    invoices.keep_vat_rates(order_id, product["product_id"])


def quantity_refused(product, quantity):
    """ChangeRefused when quantity of product is off its steps, minimum or maximum."""
    problem = measures.quantity_problem(product, quantity)
    if problem:
        raise ChangeRefused(problem)


def settle(order, role):
    """After a line changed: refuse an empty order, and a customer's order under its option's minimum; set the
    fee by the option's rule (a producer's shortage never raises it). Returns the order's new goods total."""
    goods = query("SELECT goods_total, item_count FROM orders WHERE order_id = %s", (order["order_id"],), one=True)
    if goods["item_count"] == 0:
        raise ChangeRefused("That would leave nothing in the order: cancel the order instead.")
    option = order_option(order)
    if option is None:
        return goods["goods_total"]
    short = fulfilment.shortfall(option, goods["goods_total"])
    if role == "customer" and short:
        raise ChangeRefused(f"{option['name']} needs an order of at least {fulfilment.format_money(option['minimum_order'])}:"
                            f" this change would leave it {fulfilment.format_money(short)} short.")
    fee = fulfilment.fee_for(option, goods["goods_total"])
    if role == "producer":
        fee = min(fee, order["fee"] - order["hub_fee"])
    execute("UPDATE orders SET fee = %s + hub_fee WHERE order_id = %s", (fee, order["order_id"]))
    return goods["goods_total"]


LEDGER_NOTES = {"line": "Changed by the customer", "shortage": "Short", "weight": "Weighed", "when": "Moved",
                "refund": "Refunded"}


def record(order, role, account_id, kind, product_id, before, after, note=None, tell_them=True):
    """Keep the change in the order's history, post any change in its value to the ledger, and tell the other
    party; return the history row's id."""
    history_id = execute(
        "INSERT INTO order_status_history (order_id, kind, from_status, to_status, changed_by_role, changed_by_id,"
        " product_id, quantity_before, quantity_after, note) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (order["order_id"], kind, order["status"], order["status"], role, account_id, product_id, before, after,
         note)).lastrowid
    try:
        ledger.sync_order(order["order_id"], LEDGER_NOTES[kind] + (f": {note}" if note and kind != "when" else ""),
                          (role, account_id), strict=role == "customer")
    except ledger.CreditShort as short:
        raise ChangeRefused(f"Your credit of {fulfilment.format_money(short.available)} does not cover the "
                            f"{fulfilment.format_money(short.needed)} more this change costs: top up first.") from None
    if tell_them:
        tell(order["order_id"], OTHER_PARTY[role], history_id)
    orders.order_event("order.changed", order["order_id"], history_id)
    return history_id


@transactional
def change_line(customer_id, order_id, product_id, quantity, now=None):
    """As the customer, set a line of their order to quantity (0 removes it) before ordering closes; return the
    order as it was and the line as it was. ChangeRefused, changing nothing, when a rule forbids it."""
    order = lock_order("customer", customer_id, order_id)
    problem = customer_edit_problem(order, now)
    if problem:
        raise ChangeRefused(problem, closed=True)
    line = order_line(order_id, product_id)
    if line is None:
        raise orders.OrderNotFound(order_id)
    if quantity == line["quantity"]:
        return order, line
    if quantity:
        quantity_refused(line, quantity)
    take_stock(line, quantity - line["quantity"])
    set_line(order_id, line, quantity)
    settle(order, "customer")
    record(order, "customer", customer_id, "line", product_id, line["quantity"], quantity)
    return order, line


@transactional
def add_line(customer_id, order_id, product_id, quantity, now=None):
    """As the customer, add quantity of one of the order's producer's listed products to their order (to its
    line, when it has one) before ordering closes; return the product. ChangeRefused changes nothing."""
    order = lock_order("customer", customer_id, order_id)
    problem = customer_edit_problem(order, now)
    if problem:
        raise ChangeRefused(problem, closed=True)
    product = catalogue.listed_product(product_id)
    if product is None or product["producer_id"] != order["producer_id"]:
        raise ChangeRefused(f"That product is not on sale from {order['business_name']} now.")
    if query("SELECT 1 AS found FROM hub_product_exclusion WHERE option_id = %s AND product_id = %s",
             (order["option_id"], product_id), one=True):
        raise ChangeRefused(f"{order['business_name']} does not bring {product['name']} to {order['fulfilment_name']}.")
    line = order_line(order_id, product_id)
    before = line["quantity"] if line else 0
    quantity_refused(product, quantity)
    quantity_refused(product, before + quantity)
    take_stock(product, quantity)
    if line:
        set_line(order_id, line, before + quantity)
    else:
        insert_line(order_id, product, quantity)
    settle(order, "customer")
    record(order, "customer", customer_id, "line", product_id, before, before + quantity)
    return product


def line_to_lower(producer_id, order_id, product_id, quantity, statuses, not_now, what):
    """One of the producer's orders, locked, with its line of product, for a change to a lower quantity of it:
    ChangeRefused when the order is not in statuses (not_now(order) says why) or quantity is not lower (what
    says what the change does), OrderNotFound when there is no such line."""
    order = lock_order("producer", producer_id, order_id)
    if order["status"] not in statuses:
        raise ChangeRefused(not_now(order))
    line = order_line(order_id, product_id)
    if line is None:
        raise orders.OrderNotFound(order_id)
    if quantity >= line["quantity"]:
        raise ChangeRefused(f"{what}: fewer than {measures.how_much(line, line['quantity'])} of {line['name']}.")
    if measures.decimals(quantity) > measures.places(line):
        raise ChangeRefused(f"{line['name']} is counted to {measures.places(line)} decimals at most.")
    return order, line


@transactional
def record_shortage(producer_id, order_id, product_id, quantity, reason):
    """As the producer, supply only quantity of a line (down to 0, which removes it), for reason: the
    difference goes back to stock, and the total and fee follow. Returns the line as it was."""
    order, line = line_to_lower(
        producer_id, order_id, product_id, quantity, PRODUCER_EDITABLE,
        lambda order: f"Order #{order_id} is {orders.status_label(order['status'], order['order_type']).lower()},"
                      " so its lines can no longer change.", "A shortage supplies less than was ordered")
    take_stock(line, quantity - line["quantity"])
    set_line(order_id, line, quantity)
    settle(order, "producer")
    record(order, "producer", producer_id, "shortage", product_id, line["quantity"], quantity, reason)
    return line


# A producer refunds part of an order after handing it over (returned, spoilt): its customer's credit gets it back.
REFUNDABLE = {"completed"}
WEIGHT_PLACES = Decimal("0.001")


@transactional
def refund_line(producer_id, order_id, product_id, quantity, reason):
    """As the producer, after handing an order over, charge only quantity of a line (0 refunds all of it) for
    reason: nothing goes back to stock, the difference goes to the customer's credit, and an invoiced order gets
    a credit note. Returns the line as it was."""
    order, line = line_to_lower(producer_id, order_id, product_id, quantity, REFUNDABLE,
                                lambda order: f"Order #{order_id} is not handed over yet: record a shortage instead.",
                                "A refund charges for less than was handed over")
    if quantity == 0:
        set_line(order_id, line, 0)
    else:
        kept = dict(line, quantity=quantity, weight=None if line["weight"] is None else
                    (line["weight"] * quantity / line["quantity"]).quantize(WEIGHT_PLACES))
        execute("UPDATE order_item SET quantity = %s, weight = %s, line_total = %s WHERE order_id = %s AND product_id = %s",
                (quantity, kept["weight"], measures.line_total(kept), order_id, product_id))
    record(order, "producer", producer_id, "refund", product_id, line["quantity"], quantity, reason)
    invoices.credit_after_refund(order_id)
    return line


# A weight can be entered, and corrected, until the order is handed over or cancelled.
WEIGHABLE = PRODUCER_EDITABLE


class WeightsRefused(Exception):
    """Some weights cannot stand as entered, and none was recorded: problems is {(order_id, product_id):
    WeightCheck}; those that only need confirming have needs_confirming set."""

    def __init__(self, problems):
        super().__init__(problems)
        self.problems = problems


@transactional
def record_weights(producer_id, weights, confirmed=frozenset()):
    """As the producer, record the actual weights of weighed lines, {(order_id, product_id): kg}, all or none:
    each line is repriced (never above its estimate plus tolerance), the weight, who and when go into the
    order's history, and once all of an order's weighed lines have weights its customer is emailed the final
    lines and total, once. A weight over the tolerance stands only when its key is in confirmed. Returns the
    lines whose weight changed, as (order_id, line as it was, weight)."""
    problems, changed, orders_done = {}, [], {}
    for order_id, product_id in sorted(weights):
        if order_id not in orders_done:
            orders_done[order_id] = lock_order("producer", producer_id, order_id)
        order, weight = orders_done[order_id], weights[order_id, product_id]
        if order["status"] not in WEIGHABLE:
            raise ChangeRefused(f"Order #{order_id} is "
                                f"{orders.status_label(order['status'], order['order_type']).lower()}, "
                                "so its weights can no longer change.")
        line = order_line(order_id, product_id)
        if line is None or line["sold_by"] != "weighed":
            raise orders.OrderNotFound(order_id)
        check = measures.weight_problem(line, weight, (order_id, product_id) in confirmed)
        if check.problem:
            problems[order_id, product_id] = check
        elif weight != line["weight"]:
            changed.append((order_id, line, weight))
    if problems:
        raise WeightsRefused(problems)
    told = {order_id: weighed_email_sent(order_id) for order_id in {order_id for order_id, _, _ in changed}}
    for order_id, line, weight in changed:
        order = orders_done[order_id]
        execute("UPDATE order_item SET weight = %s, line_total = %s WHERE order_id = %s AND product_id = %s",
                (weight, measures.line_total(dict(line, weight=weight)), order_id, line["product_id"]))
        settle(order, "producer")
        record(order, "producer", producer_id, "weight", line["product_id"], line["weight"], weight,
               f"estimated {measures.plain(measures.estimated_weight(line))} kg", tell_them=told[order_id])
    for order_id in sorted({order_id for order_id, _, _ in changed}):
        tell_weighed(order_id)
    return changed


def weighed_key(order_id):
    return f"order-weighed:{order_id}"


def weighed_email_sent(order_id):
    """Whether the customer has been sent (or is about to be sent) the order's final weights."""
    return query("SELECT 1 AS sent FROM email_outbox WHERE dedupe_key = %s", (weighed_key(order_id),),
                 one=True) is not None


def tell_weighed(order_id):
    """Once every weighed line of the order has its weight, email the customer the final lines and total, once
    (the dedupe key names the order, so a repeat writes nothing)."""
    if query("SELECT 1 AS open FROM order_item WHERE order_id = %s AND sold_by = 'weighed' AND weight IS NULL"
             " LIMIT 1", (order_id,), one=True):
        return
    order = orders.load_order(order_id)
    mail.send("order_weighed", weighed_key(order_id), order["email"],
              f"Order #{order_id} from {order['business_name']} is weighed: the total is "
              f"{fulfilment.format_money(order['total'])}", order=order)


@transactional
def move(customer_id, order_id, key, now=None):
    """As the customer, move their order to another open time (key, as checkout writes it) of the same option
    or another of its producer's of the same kind, before ordering closes: the old place is freed, the new one
    booked within its capacity, and the minimum and fee follow the new option. Returns the new Occurrence."""
    order = lock_order("customer", customer_id, order_id)
    problem = customer_edit_problem(order, now)
    if problem:
        raise ChangeRefused(problem, closed=True)
    if order["basket_id"] is not None:
        raise ChangeRefused(f"Order #{order_id} is part of a basket collected at {order['fulfilment_name']}: "
                            "move the whole basket from its page.")
    offers, _ = catalogue.load_offers([order["producer_id"]], now)
    occurrence = offers[order["producer_id"]].find(key)
    if occurrence is None:
        raise ChangeRefused("That time is no longer open: choose another.")
    short = fulfilment.shortfall(occurrence.option, order["goods_total"])
    if short:
        raise ChangeRefused(f"{occurrence.option['name']} needs an order of at least "
                            f"{fulfilment.format_money(occurrence.option['minimum_order'])}: add "
                            f"{fulfilment.format_money(short)} more first.")
    move_to(order, "customer", customer_id, occurrence)
    return occurrence


def move_to(order, role, account_id, occurrence, note=None, with_basket=False):
    """Move a locked order to occurrence (of its producer, of the same kind): free its old place, book the new
    one within its capacity, set the fee by the new option's rule (a producer's move never raises it), and
    record and tell the move. An order in a hub basket moves only with its basket (with_basket)."""
    option = occurrence.option
    if order["basket_id"] is not None and not with_basket:
        raise ChangeRefused(f"Order #{order['order_id']} is in a customer's basket at {order['fulfilment_name']}, "
                            "the co-op's pick-up: cancel it, or ask the co-op to move the basket.")
    if option["kind"] != order["order_type"]:
        raise ChangeRefused(f"Order #{order['order_id']} is for {order['order_type']}: to switch to "
                            f"{option['kind']}, cancel it and order again.")
    if occurrence.key == current_key(order, order["slot_id"]):
        return
    if option["kind"] == "delivery" and not fulfilment.postcode_served(order["postcode"], option["postcode_list"]):
        raise ChangeRefused(f"{option['name']} does not deliver to {order['postcode'] or 'the order’s postcode'}.")
    before = orders.order_when(order) or "no time"
    if order["slot_id"] is not None and order["fulfilment_date"] is not None:
        execute("UPDATE slot_booking SET booked = booked - 1 WHERE slot_id = %s AND slot_date = %s AND booked > 0",
                (order["slot_id"], order["fulfilment_date"]))
    try:
        checkout.book_occurrence(occurrence)
    except checkout.CheckoutRefused as refusal:
        raise ChangeRefused(refusal.problems[0]) from None
    fee = fulfilment.fee_for(option, order["goods_total"])
    execute("UPDATE orders SET option_id = %s, slot_id = %s, fulfilment_name = %s, fulfilment_address = %s,"
            " fulfilment_instructions = %s, fulfilment_date = %s, slot_start = %s, slot_end = %s, cutoff_hours = %s,"
            " fee = %s WHERE order_id = %s",
            (option["option_id"], occurrence.slot["slot_id"] if occurrence.slot else None, option["name"],
             option["address"], option["instructions"], occurrence.day, occurrence.start, occurrence.end,
             option["cutoff_hours"] if occurrence.slot else None,
             (min(fee, order["fee"] - order["hub_fee"]) if role == "producer" else fee) + order["hub_fee"],
             order["order_id"]))
    record(order, role, account_id, "when", None, None, None,
           f"{before} → {option['name']}, {occurrence.when}" + (f" ({note})" if note else ""))


# --- Closed days with orders ------------------------------------------------------

CLOSURE_ACTIONS = ("move", "cancel")


def orders_on_days(producer_id, start, end):
    """The producer's orders still to hand over on the days from start to end: those a closure must settle."""
    return query(f"SELECT {orders.ORDER_COLUMNS}, c.first_name FROM orders o JOIN customer c ON c.customer_id = o.customer_id"
                 " WHERE o.producer_id = %s AND o.fulfilment_date BETWEEN %s AND %s"
                 " AND o.status NOT IN ('completed', 'cancelled', 'awaiting_payment')"
                 " ORDER BY o.fulfilment_date, o.slot_start, o.order_id",
                 (producer_id, start, end))


def open_times_outside(producer_id, start, end):
    """The producer's open times not on the days from start to end."""
    offers, _ = catalogue.load_offers([producer_id])
    return [occurrence for occurrence in offers[producer_id].occurrences
            if occurrence.day is None or not start <= occurrence.day <= end]


@transactional
def close_days(producer_id, start, end, note, action=None, keys=None):
    """Close the producer's days from start to end. Orders on those days are settled first, in the same
    transaction, as action says: each moved to keys[kind] (an open time outside the closure, as checkout
    writes it) or cancelled; each customer is emailed either way. Returns the orders settled; with orders and
    no action, ChangeRefused (nothing changed), so the producer is asked first."""
    affected = orders_on_days(producer_id, start, end)
    if affected and action not in CLOSURE_ACTIONS:
        raise ChangeRefused(f"{len(affected)} order{'s are' if len(affected) > 1 else ' is'} booked on those days: "
                            "choose whether to move or cancel them.")
    reason = f"closed {fulfilment.format_date(start, 'weekday')}" + (
        f" to {fulfilment.format_date(end, 'weekday')}" if end != start else "")
    # Read once: each move's booking still checks the capacity as it is then.
    open_times = {occurrence.key: occurrence for occurrence in open_times_outside(producer_id, start, end)}
    for row in affected:
        if action == "cancel":
            if not orders.change_order_status("producer", producer_id, row["order_id"], "cancelled")[1]:
                raise ChangeRefused(f"Order #{row['order_id']} is {orders.status_label(row['status'], row['order_type']).lower()}"
                                    " and can no longer be cancelled: move it instead.")
            continue
        occurrence = open_times.get((keys or {}).get(row["order_type"]))
        if occurrence is None or occurrence.option["kind"] != row["order_type"]:
            raise ChangeRefused(f"Choose an open {row['order_type']} time outside the closed days for order "
                                f"#{row['order_id']}.")
        move_to(lock_order("producer", producer_id, row["order_id"]), "producer", producer_id, occurrence, reason)
    execute("INSERT INTO producer_closure (producer_id, start_date, end_date, note) VALUES (%s, %s, %s, %s)",
            (producer_id, start, end, note or ""))
    return affected


def current_key(order, slot_id):
    """The order's time as checkout writes it: <slot_id>@<YYYY-MM-DD>, or <option_id>@arranged."""
    if slot_id is not None and order["fulfilment_date"] is not None:
        return f"{slot_id}@{order['fulfilment_date'].isoformat()}"
    return f"{order['option_id']}@{fulfilment.ARRANGED}" if order["option_id"] else None


def move_choices(order):
    """The open times the customer may move their order to: its producer's occurrences of the same kind."""
    offers, _ = catalogue.load_offers([order["producer_id"]])
    return [occurrence for occurrence in offers[order["producer_id"]].occurrences
            if occurrence.option["kind"] == order["order_type"]]


# --- Telling the other party --------------------------------------------------

def tell(order_id, to_role, history_id):
    """Email the other party the order as it now stands, with the changes made since their last email.

    Changes made within TELL_AFTER_SECONDS of the first share one email: while it waits unsent, each later
    change rewrites it. Its dedupe key names the order, the recipient's role and the first change's history
    id, so a retried transaction writes the same email and never a second one."""
    prefix = f"order-changed:{order_id}:{to_role}:"
    waiting = query("SELECT email_id, dedupe_key FROM email_outbox WHERE dedupe_key LIKE %s AND sent_at IS NULL"
                    " AND claimed_by IS NULL AND send_after > UTC_TIMESTAMP(6) ORDER BY email_id DESC LIMIT 1 FOR UPDATE",
                    (prefix + "%",), one=True)
    first = int(waiting["dedupe_key"].rsplit(":", 1)[1]) if waiting else history_id
    order = orders.load_order(order_id)
    changes = query("SELECT h.kind, h.changed_by_role, h.product_id, h.quantity_before, h.quantity_after, h.note,"
                    " h.to_status, p.name, p.unit, p.sold_by, p.measure FROM order_status_history h"
                    " LEFT JOIN product p ON p.product_id = h.product_id"
                    " WHERE h.order_id = %s AND h.history_id >= %s AND h.kind IN ('line', 'shortage', 'when', 'weight', 'refund')"
                    " ORDER BY h.history_id", (order_id, first))
    to = order["email"] if to_role == "customer" else order["producer_account_email"]
    by = order["business_name"] if to_role == "customer" else order["first_name"]
    subject = f"Order #{order_id} was changed by {by}: the total is now {fulfilment.format_money(order['total'])}"
    text = mail.render("order_changed", order=order, changes=changes, to_role=to_role,
                       due=ledger.order_due(order_id, order["customer_id"]))
    if waiting:
        execute("UPDATE email_outbox SET subject = %s, body_text = %s WHERE email_id = %s",
                (subject[:255], text, waiting["email_id"]))
    else:
        mail.enqueue(f"{prefix}{first}", to, subject, text, delay_seconds=TELL_AFTER_SECONDS)


def change_sentence(change):
    """One change as the email and the history tell it: 'Eggs: 2 → 3 × dozen (hens off lay)', or for a
    move 'Moved: Sat 5 Dec … → Farm gate, Sat 12 Dec …'."""
    if change["kind"] == "when":
        return f"Moved: {change['note']}"
    note = " ".join(change["note"].split()) if change["note"] else ""
    if change["kind"] == "weight":
        weighed = f"weighed {measures.plain(change['quantity_after'])} kg"
        if change["quantity_before"] is not None:
            weighed = f"weight corrected from {measures.plain(change['quantity_before'])} kg to " \
                      f"{measures.plain(change['quantity_after'])} kg"
        return f"{change['name']}: {weighed}" + (f" ({note})" if note else "")
    after = "removed" if change["quantity_after"] == 0 else measures.quantity_text(change, change["quantity_after"])
    before = measures.how_much(change, change["quantity_before"])
    refunded = "refunded, " if change["kind"] == "refund" else ""
    return f"{change['name']}: {refunded}{before} → {after}" + (f" ({note})" if note else "")
