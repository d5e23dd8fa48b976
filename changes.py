"""Changing a placed order: a customer's edits until ordering closes, and a producer's shortages. Each change is
exact (stock, the minimum order and the fee rechecked and applied in one transaction, as at checkout), kept in
the order's history, and told to the other party by one email that gathers the changes of the next minute.

Request-free: the acting account comes in as (role, account_id); an order that is not theirs is OrderNotFound.
"""
import catalogue
import fulfilment
import mail
import orders
from db import execute, query, transactional


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
    where, args = orders.own_orders_condition(role, account_id)
    order = query(f"SELECT {orders.ORDER_COLUMNS}, o.customer_id, o.producer_id FROM orders o"
                  f" WHERE o.order_id = %s AND {where} FOR UPDATE", [order_id] + args, one=True)
    if order is None:
        raise orders.OrderNotFound(order_id)
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


def order_option(order):
    """The collection or delivery option the order was placed for (its rules now), or None for an old order."""
    if order["option_id"] is None:
        return None
    return query(f"SELECT {catalogue.OPTION_COLUMNS} FROM fulfilment_option o WHERE o.option_id = %s",
                 (order["option_id"],), one=True)


def order_line(order_id, product_id):
    return query("SELECT oi.product_id, oi.quantity, oi.unit_price, p.name, p.unit FROM order_item oi"
                 " JOIN product p ON p.product_id = oi.product_id WHERE oi.order_id = %s AND oi.product_id = %s",
                 (order_id, product_id), one=True)


def take_stock(product_id, name, quantity):
    """Take quantity more of a product from stock (give it back when negative), never below 0."""
    if quantity > 0:
        if execute("UPDATE stock SET quantity_available = quantity_available - %s"
                   " WHERE product_id = %s AND quantity_available >= %s",
                   (quantity, product_id, quantity)).rowcount != 1:
            left = query("SELECT quantity_available FROM stock WHERE product_id = %s", (product_id,), one=True)
            raise ChangeRefused(f"Only {left['quantity_available'] if left else 0} more of {name} "
                                f"{'is' if left and left['quantity_available'] == 1 else 'are'} in stock.")
    elif quantity < 0:
        execute("UPDATE stock SET quantity_available = quantity_available + %s WHERE product_id = %s",
                (-quantity, product_id))


def set_line(order_id, product_id, quantity, unit_price=None):
    """Write a line's new quantity: 0 removes it, and a new line takes unit_price."""
    if quantity == 0:
        execute("DELETE FROM order_item WHERE order_id = %s AND product_id = %s", (order_id, product_id))
    elif unit_price is not None:
        execute("INSERT INTO order_item (order_id, product_id, quantity, unit_price) VALUES (%s, %s, %s, %s)",
                (order_id, product_id, quantity, unit_price))
    else:
        execute("UPDATE order_item SET quantity = %s WHERE order_id = %s AND product_id = %s",
                (quantity, order_id, product_id))


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
        fee = min(fee, order["fee"])
    execute("UPDATE orders SET fee = %s WHERE order_id = %s", (fee, order["order_id"]))
    return goods["goods_total"]


def record(order, role, account_id, kind, product_id, before, after, note=None):
    """Keep the change in the order's history and tell the other party; return the history row's id."""
    history_id = execute(
        "INSERT INTO order_status_history (order_id, kind, from_status, to_status, changed_by_role, changed_by_id,"
        " product_id, quantity_before, quantity_after, note) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (order["order_id"], kind, order["status"], order["status"], role, account_id, product_id, before, after,
         note)).lastrowid
    tell(order["order_id"], OTHER_PARTY[role], history_id)
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
    take_stock(product_id, line["name"], quantity - line["quantity"])
    set_line(order_id, product_id, quantity)
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
    line = order_line(order_id, product_id)
    before = line["quantity"] if line else 0
    take_stock(product_id, product["name"], quantity)
    set_line(order_id, product_id, before + quantity, None if line else product["price"])
    settle(order, "customer")
    record(order, "customer", customer_id, "line", product_id, before, before + quantity)
    return product


@transactional
def record_shortage(producer_id, order_id, product_id, quantity, reason):
    """As the producer, supply only quantity of a line (down to 0, which removes it), for reason: the
    difference goes back to stock, and the total and fee follow. Returns the line as it was."""
    order = lock_order("producer", producer_id, order_id)
    if order["status"] not in PRODUCER_EDITABLE:
        raise ChangeRefused(f"Order #{order_id} is {orders.status_label(order['status'], order['order_type']).lower()},"
                            " so its lines can no longer change.")
    line = order_line(order_id, product_id)
    if line is None:
        raise orders.OrderNotFound(order_id)
    if quantity >= line["quantity"]:
        raise ChangeRefused(f"A shortage supplies less than was ordered: fewer than {line['quantity']} "
                            f"of {line['name']}.")
    take_stock(product_id, line["name"], quantity - line["quantity"])
    set_line(order_id, product_id, quantity)
    settle(order, "producer")
    record(order, "producer", producer_id, "shortage", product_id, line["quantity"], quantity, reason)
    return line


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
                    " h.to_status, p.name, p.unit FROM order_status_history h"
                    " LEFT JOIN product p ON p.product_id = h.product_id"
                    " WHERE h.order_id = %s AND h.history_id >= %s AND h.kind IN ('line', 'shortage')"
                    " ORDER BY h.history_id", (order_id, first))
    to = order["email"] if to_role == "customer" else order["producer_account_email"]
    by = order["business_name"] if to_role == "customer" else order["first_name"]
    subject = f"Order #{order_id} was changed by {by}: the total is now {fulfilment.format_money(order['total'])}"
    text = mail.render("order_changed", order=order, changes=changes, to_role=to_role)
    if waiting:
        execute("UPDATE email_outbox SET subject = %s, body_text = %s WHERE email_id = %s",
                (subject[:255], text, waiting["email_id"]))
    else:
        mail.enqueue(f"{prefix}{first}", to, subject, text, delay_seconds=TELL_AFTER_SECONDS)


def change_sentence(change):
    """One change as the email and the history tell it: 'Eggs: 2 → 3 dozen (no eggs this week)'."""
    after = "removed" if change["quantity_after"] == 0 else f"{change['quantity_after']} {change['unit'] or ''}".strip()
    note = " ".join(change["note"].split()) if change["note"] else ""
    return f"{change['name']}: {change['quantity_before']} → {after}" + (f" ({note})" if note else "")
