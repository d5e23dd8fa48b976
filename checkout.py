"""The cart and checkout: cart lines and what stops one being ordered, the cart's groups per producer with the
chosen time and place, and placing the cart as one order per producer with its stock, capacity and emails.

Request-free: the acting customer comes in as customer_id.
"""
import itertools
import re
import secrets
from collections import namedtuple
from decimal import Decimal

import catalogue
import db
import fulfilment
import ledger
import measures
import orders
import payments
import webhooks
from db import case_when, execute, placeholders, query, transactional
from measures import SELLING_COLUMNS


class CheckoutRefused(Exception):
    """Checkout cannot go ahead: problems lists, in sentences, what the customer must fix."""

    def __init__(self, problems):
        super().__init__(problems)
        self.problems = list(problems)


LineProblem = namedtuple("LineProblem", "kind note message")


def line_problem(line):
    """What stops a cart line from being ordered as it stands, or None: the cart's note and checkout's sentence."""
    name, left = line["name"], measures.how_much(line, line["quantity_available"])
    if not line["is_available"]:
        return LineProblem("unavailable", "No longer available: remove it to check out.",
                           f"{name} is no longer available; remove it to check out.")
    if line["quantity_available"] <= 0:
        return LineProblem("sold_out", "Out of stock: remove it to check out.",
                           f"{name} is out of stock; remove it to check out.")
    if line["quantity"] > line["quantity_available"]:
        asked = measures.how_much(line, line["quantity"])
        return LineProblem("short", f"Only {left} left.", f"Only {left} of {name} left; you asked for {asked}.")
    problem = measures.quantity_problem(line, line["quantity"])
    if problem:
        return LineProblem("quantity", f"{problem} Change the quantity to check out.", problem)
    return None


def cart_lines(customer_id, product_id=None):
    """The customer's cart lines (or just product_id's) at today's prices, grouped by producer, each with its problem,
    and what an order of it keeps: its producer's fee rate (fee_percent) and its VAT rate (vat_percent); and the
    version its producers' offers are kept under (offers_version)."""
    sql, args = ("SELECT ci.product_id, ci.quantity, ci.price_when_added, p.name, p.unit, p.price,"
                 f" {SELLING_COLUMNS}, p.is_listed AS is_available,"
                 " pr.producer_id, pr.business_name, pr.payment_info, pr.fee_percent, s.quantity_available,"
                 f" COALESCE(v.percent, 0) AS vat_percent, {catalogue.OFFERS_VERSION} AS offers_version"
                 " FROM cart_item ci JOIN product p ON p.product_id = ci.product_id"
                 " JOIN producer pr ON pr.producer_id = p.producer_id"
                 " JOIN stock s ON s.product_id = p.product_id"
                 " LEFT JOIN vat_rate v ON v.code = p.vat_rate"
                 " WHERE ci.customer_id = %s"), [customer_id]
    if product_id is not None:
        sql, args = sql + " AND ci.product_id = %s", args + [product_id]
    # Sorted here: a cart is a few lines, and ORDER BY across the join costs the database a temporary table.
    return priced(sorted(query(sql, args), key=lambda line: (
        line["business_name"].casefold(), line["producer_id"], line["name"].casefold(), line["product_id"])))


def priced(lines):
    """Cart lines with their totals (estimates for weighed items) and problems."""
    for line in lines:
        line["line_total"] = measures.line_total(line)
        line["problem"] = line_problem(line)
    return lines


BASKET_LINES = 50  # a guest's basket lives in their signed session cookie, so it is kept small


def basket_lines(basket):
    """A guest's basket ({"<product_id>": quantity}, from their session) as cart lines, in cart_lines' shape:
    today's prices, grouped by producer, each with its problem. Products gone from the shop are left out."""
    ids = [int(product_id) for product_id in basket]
    if not ids:
        return []
    lines = query(f"SELECT p.product_id, p.name, p.unit, p.price, p.price AS price_when_added, {SELLING_COLUMNS},"
                  " p.is_listed AS is_available, pr.producer_id, pr.business_name, pr.payment_info,"
                  " s.quantity_available FROM product p JOIN producer pr ON pr.producer_id = p.producer_id"
                  f" JOIN stock s ON s.product_id = p.product_id WHERE p.product_id IN ({placeholders(ids)})"
                  " ORDER BY pr.business_name, pr.producer_id, p.name", ids)
    for line in lines:
        line["quantity"] = Decimal(str(basket[str(line["product_id"])]))
    return priced(lines)


def add_to_basket(basket, product, quantity):
    """A guest's basket with quantity more of product, as much as the stock and the product's steps allow:
    (new basket, before, now). A full basket takes no new product."""
    key = str(product["product_id"])
    before = Decimal(str(basket.get(key, 0)))
    if key not in basket and len(basket) >= BASKET_LINES:
        return basket, before, before
    now = measures.fit(product, before + quantity, product["quantity_available"])
    if now <= before:
        return basket, before, before
    return dict(basket, **{key: basket_value(now)}), before, now


def set_basket_quantity(basket, product_id, wanted):
    """A guest's basket with a line set to wanted, capped at the stock (0, or a product gone, removes it):
    (new basket, the line as it was, quantity now); None when the basket has no such line."""
    key = str(product_id)
    lines = basket_lines({key: wanted}) if key in basket else []
    if not lines:
        return None
    line = lines[0]
    now = measures.fit(line, wanted, line["quantity_available"]) if line["is_available"] else 0
    changed = {k: v for k, v in basket.items() if k != key}
    return (dict(changed, **{key: basket_value(now)}) if now else changed), line, now


def basket_value(quantity):
    """A quantity as the session keeps it: a whole number as a number, a fraction as exact text."""
    return int(quantity) if quantity == quantity.to_integral_value() else str(quantity)


@transactional
def merge_basket(customer_id, basket):
    """Add a guest's basket to the account's cart, now they have logged in: quantities add, capped at what is
    in stock. Returns the lines that did not all fit, as (name, asked for, now in the cart)."""
    capped = []
    for line in basket_lines(basket):
        if not line["is_available"]:
            capped.append((line["name"], line["quantity"], 0))
            continue
        before, now = add_to_cart(customer_id, line, line["quantity"])
        if now - before < line["quantity"]:
            capped.append((line["name"], line["quantity"], now))
    return capped


def cart_line(customer_id, product_id):
    """One line of the customer's cart, or None when the cart does not hold that product."""
    lines = cart_lines(customer_id, product_id)
    return lines[0] if lines else None


def offers_for(lines, known=None):
    """{producer_id: Offer} for the producers of the cart's lines: those known already, the others as kept at
    the catalogue's current version (catalogue.kept_offers)."""
    offers = dict(known or {})
    missing = {line["producer_id"] for line in lines} - set(offers)
    if missing:
        offers.update(catalogue.kept_offers(missing, at=lines[0].get("offers_version")))
    return offers


def cart_groups(lines, choices=None, customer_id=None, offers=None):
    """The cart's lines per producer, each group with its goods total, its producer's offer, and the chosen
    occurrence with its fee and total: the one chosen in choices ({producer_id: key}), else the only one. A hub
    time's fee is charged once per basket (add_hub_fees). offers: the producers' offers when read already."""
    offers = offers_for(lines, offers)
    groups = []
    for (producer_id, business_name), rows in itertools.groupby(
            lines, key=lambda line: (line["producer_id"], line["business_name"])):
        rows = list(rows)
        offer = offers[producer_id].for_products(line["product_id"] for line in rows)
        not_here = [(option["name"], [line["name"] for line in rows if line["product_id"] in option["excluded"]])
                    for option in offers[producer_id].options if option not in offer.options]
        goods = sum((line["line_total"] for line in rows if not line["problem"]), Decimal("0.00"))
        if choices is not None:
            choice = offer.find(choices.get(producer_id))
        else:
            choice = offer.occurrences[0] if len(offer.occurrences) == 1 else None
        fee = fulfilment.fee_for(choice.option, goods) if choice else None
        groups.append({"producer_id": producer_id, "business_name": business_name, "lines": rows, "goods": goods,
                       "payment_info": rows[0]["payment_info"], "offer": offer, "choice": choice, "fee": fee,
                       "total": goods + fee if choice else None, "hub_fee": Decimal("0.00"), "not_here": not_here})
    return add_hub_fees(customer_id, groups)


# --- One pick-up for a whole basket ------------------------------------------------
# Orders from several producers for one time at a co-op hub make one basket: one place of the hub's capacity
# and the hub's fee once, carried by the basket's first order (by producer) as its hub_fee, the co-op's.

def hub_key(occurrence):
    """(hub_slot_id, date) for an occurrence at a hub time, else None."""
    if occurrence is None or occurrence.slot is None or occurrence.slot.get("hub_slot_id") is None:
        return None
    return occurrence.slot["hub_slot_id"], occurrence.day


def by_hub_time(groups):
    """{(hub_slot_id, date): the groups whose chosen time it is}, in key order."""
    found = {}
    for group in groups:
        key = hub_key(group["choice"])
        if key:
            found.setdefault(key, []).append(group)
    return dict(sorted(found.items()))


def open_basket(customer_id, hub_slot_id, day, lock=False):
    """The customer's basket at a hub time that still has an order in it, or None; with lock, its row locked.

    It is found by a plain read and then locked by its id: a locking read of a basket that does not exist
    would take a gap lock, and two customers' checkouts with gap locks deadlock at their inserts. The
    customer's row, which checkout and moving a basket lock first, keeps their own baskets from changing
    meanwhile; a basket released since (its last order cancelled) is None."""
    if customer_id is None:
        return None
    basket = query("SELECT b.basket_id, b.hub_id, b.fee FROM hub_basket b WHERE b.customer_id = %s"
                   " AND b.hub_slot_id = %s AND b.basket_date = %s AND b.is_released = 0"
                   " ORDER BY b.basket_id LIMIT 1", (customer_id, hub_slot_id, day), one=True)
    if basket is None or not lock:
        return basket
    return query("SELECT b.basket_id, b.hub_id, b.fee FROM hub_basket b WHERE b.basket_id = %s"
                 " AND b.is_released = 0 FOR UPDATE", (basket["basket_id"],), one=True)


def add_hub_fees(customer_id, groups):
    """Charge each chosen hub time's fee once, on its first group, unless the customer's basket there has it."""
    for (hub_slot_id, day), at_hub in by_hub_time(groups).items():
        if open_basket(customer_id, hub_slot_id, day):
            continue
        first = min(at_hub, key=lambda group: group["producer_id"])
        first["hub_fee"] = first["choice"].option["hub_fee"]
        first["fee"] += first["hub_fee"]
        first["total"] = first["goods"] + first["fee"]
    return groups


def hub_times(groups):
    """The hub times the customer can choose for the whole basket: each with the occurrence of every producer
    who delivers there then ({producer_id: key}), and the producers who are not at it; marks each group
    at_hub when it delivers to one of them."""
    found = {}
    for group in groups:
        for occurrence in group["offer"].occurrences:
            key = hub_key(occurrence)
            if key:
                time = found.setdefault(key, {"key": f"{key[0]}@{key[1].isoformat()}", "name": occurrence.option["name"],
                                              "when": occurrence.when, "fee": occurrence.option["hub_fee"],
                                              "keys": {}, "at": [], "not_at": []})
                time["keys"][group["producer_id"]] = occurrence.key
    for group in groups:
        group["at_hub"] = any(group["producer_id"] in time["keys"] for time in found.values())
        for time in found.values():
            if group["offer"].occurrences:
                (time["at"] if group["producer_id"] in time["keys"] else time["not_at"]).append(group["business_name"])
    return [found[key] for key in sorted(found, key=lambda key: (key[1], key[0]))]


def find_hub_time(groups, key):
    """The hub time of hub_times(groups) with this key (<hub_slot_id>@<date>), or None when it is not on offer."""
    return next((time for time in hub_times(groups) if time["key"] == key), None)


def book_baskets(customer_id, ordering):
    """Put each hub time's groups in one basket, the customer's open one there or a new one, which takes a
    place of the hub's capacity; sets each group's basket_id."""
    for (hub_slot_id, day), at_hub in by_hub_time(ordering).items():
        basket = open_basket(customer_id, hub_slot_id, day, lock=True)
        if basket is None:
            occurrence = at_hub[0]["choice"]
            book_hub_place(hub_slot_id, day, occurrence.option["capacity"], occurrence)
            basket = {"basket_id": execute(
                "INSERT INTO hub_basket (customer_id, hub_id, hub_slot_id, basket_date, slot_start, slot_end, fee)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (customer_id, occurrence.option["hub_id"], hub_slot_id, day, occurrence.start, occurrence.end,
                 sum((group["hub_fee"] for group in at_hub), Decimal("0.00")))).lastrowid}
        for group in at_hub:
            group["basket_id"] = basket["basket_id"]


def book_hub_place(hub_slot_id, day, capacity, occurrence):
    """Count one more basket at a hub time, refusing once the hub's capacity is reached (as book_occurrence),
    or when the hub has just been closed that day (hubs.close_days holds the hub's row while it closes)."""
    if query("SELECT EXISTS (SELECT 1 FROM hub_closure c WHERE c.hub_id = h.hub_id AND %s BETWEEN c.start_date"
             " AND c.end_date) AS closed FROM hub h WHERE h.hub_id = %s LOCK IN SHARE MODE",
             (day, occurrence.option["hub_id"]), one=True)["closed"]:
        raise CheckoutRefused([f"{occurrence.option['name']} is closed on {occurrence.when}; choose another time."])
    execute("INSERT INTO hub_booking (hub_slot_id, booking_date, booked) VALUES (%s, %s, 1)"
            " ON DUPLICATE KEY UPDATE booked = booked + 1", (hub_slot_id, day))
    booked = query("SELECT booked FROM hub_booking WHERE hub_slot_id = %s AND booking_date = %s",
                   (hub_slot_id, day), one=True)
    if capacity is not None and booked["booked"] > capacity:
        raise CheckoutRefused([f"{occurrence.option['name']} on {occurrence.when} has just filled up; "
                               "choose another time."])


def cart_summary(groups):
    """(grand total, whether some fee is still unknown) over the groups that can be ordered now."""
    orderable = [group for group in groups if group["offer"].occurrences]
    grand_total = sum((group["total"] if group["total"] is not None else group["goods"] for group in orderable),
                      Decimal("0.00"))
    return grand_total, any(group["total"] is None for group in orderable)


def choice_problem(group, postcode):
    """What stops a group from being ordered for its chosen occurrence: a minimum not reached, or a postcode the
    delivery does not serve; None when nothing does."""
    option, name = group["choice"].option, group["business_name"]
    short = fulfilment.shortfall(option, group["goods"])
    if short:
        return f"Add {fulfilment.format_money(short)} more from {name} for {option['name']}."
    if option["kind"] == "delivery" and not fulfilment.postcode_served(postcode, option["postcode_list"]):
        return (f"{name} delivers to {option['areas']} only, and {postcode or 'your postcode'} is outside those areas. "
                "Choose collection, or another option.")
    return None


def delivery_problems(groups, postcode):
    """For the delivery groups, what stops their chosen delivery reaching postcode, their minimums set aside
    (checkout says those once the cart is placed)."""
    return [problem for group in groups
            if group["choice"] and group["choice"].option["kind"] == "delivery"
            for problem in [choice_problem(dict(group, goods=max(group["goods"], group["choice"].option["minimum_order"])),
                                           postcode)] if problem]


def tidy_postcode(postcode):
    """A postcode as it is stored: single spaces, capitals; None when empty."""
    return re.sub(r"\s+", " ", postcode or "").upper() or None


Placed = namedtuple("Placed", "order_ids key repeated held paying", defaults=(False,))
CHECKOUT_KEY = re.compile(r"[A-Za-z0-9_-]{16,43}\Z")


def new_checkout_key():
    """The one-time key a checkout form carries, so a second submit of it places nothing."""
    return secrets.token_urlsafe(16)


@transactional
def place_orders(customer_id, choices, details, key=None, offers=None):
    """Turn the cart into one pending order per producer for the chosen occurrences, all in one transaction,
    under the checkout's one-time key; return Placed(order_ids, key, repeated). Groups of producers not taking
    orders stay in the cart. offers: the producers' offers as the checkout form was read with (else
    as kept now).

    A key submitted before (a double tap, a resubmit, a retried request) places nothing: its first checkout's
    orders come back, with repeated set. The second submit waits on the first's key row until that commits.
    details holds the delivery_address, postcode and phone. The customer's row is locked first, so their cart
    cannot change under the checkout. Rows that every checkout of a popular product or time shares (its stock,
    the slot's bookings, the producer's ledger balance) are changed last, just before the commit, so concurrent
    checkouts queue on them only that long (a line that sells its product out takes its stock first). Stock is
    decremented only while enough is left, and when a line's stock sold since the cart was read, the whole
    checkout runs again on what is left (db.ReadAgain), so it holds back that producer's order as a checkout read
    after the sale would. A slot's bookings count only up to its capacity. So nothing is ever oversold or
    overbooked.
    """
    key = key or new_checkout_key()
    if not claim_checkout_key(customer_id, key):
        waiting = payments.checkout_payment(customer_id, key)
        return Placed(orders.checkout_order_ids(customer_id, key), key, True, [],
                      bool(waiting and waiting["status"] == "awaiting"))
    lock_cart(customer_id)
    lines = cart_lines(customer_id)
    if not lines:
        raise CheckoutRefused(["Your cart is empty."])
    ordering, held = orderable_groups(cart_groups(lines, choices, customer_id, offers), choices, details["postcode"])
    book_baskets(customer_id, ordering)
    # A line that sells its product out takes its stock first: selling out marks the product row, which the other
    # checkouts' order lines share-lock as they go, so taking it last would deadlock with each of them.
    ordered_lines = [line for group in ordering for line in group["lines"]]
    selling_out = [line for line in ordered_lines if sells_out(line)]
    take_stock(selling_out)
    by_card = [group for group in ordering if group["choice"].option["payment_method"] == "card"]
    if by_card and not payments.enabled():
        raise CheckoutRefused([f"{by_card[0]['business_name']} takes cards, and card payments are not available "
                               "right now: choose another way to get your order."])
    weighed = any(line["sold_by"] == "weighed" for group in by_card for line in group["lines"])
    payment_id = payments.open_payment(customer_id, key, sum((group_most(group) for group in by_card), Decimal("0.00")),
                                       "manual" if weighed else "automatic") if by_card else None
    in_order = sorted(ordering, key=lambda group: group["producer_id"])
    postings = ledger.Postings()
    order_ids = insert_orders(customer_id, in_order, details, key, by_card, payment_id, postings)
    execute("INSERT INTO order_status_history (order_id, from_status, to_status, changed_by_role, changed_by_id)"
            " VALUES " + placeholders(order_ids, "(%s, NULL, %s, 'customer', %s)"),
            [value for order_id, group in zip(order_ids, in_order)
             for value in (order_id, "awaiting_payment" if group in by_card else "pending", customer_id)])
    # A card-paid group's lines stay in the cart until its payment goes through.
    ordered = [line["product_id"] for group in ordering if group not in by_card for line in group["lines"]]
    if ordered:
        execute(f"DELETE FROM cart_item WHERE customer_id = %s AND product_id IN ({placeholders(ordered)})",
                [customer_id] + ordered)
    placed = [order_id for order_id in order_ids if order_id not in payments.waiting_orders(payment_id)]
    if placed:
        orders.announce_checkout(placed)
    take_stock([line for line in ordered_lines if line not in selling_out])
    for group in sorted(ordering, key=lambda group: group["choice"].key):
        book_occurrence(group["choice"])
    postings.write()
    return Placed(order_ids, key, False, held, bool(by_card))


def sells_out(line):
    """Whether a cart line, as it was read, takes the last of its product's stock."""
    return line["quantity"] >= line["quantity_available"]


def take_stock(lines):
    """Take lines from stock, in one statement that locks their rows in product order; db.ReadAgain when one has
    sold since it was read.

    Selling a product out marks its product row, which the other checkouts of it share-lock as they write their
    order lines, before they wait for its stock row. So a line read as selling its product out locks the product
    row first (then the others wait there, holding nothing it needs) and may take the last of the stock; any other
    line is taken only while more is left than it needs, since selling out unexpectedly, holding the stock row,
    would wait on those share locks while their holders wait on it. Its run again reads it as selling out."""
    taken, selling_out = {}, set()
    for line in lines:
        taken[line["product_id"]] = taken.get(line["product_id"], 0) + line["quantity"]
        if sells_out(line):
            selling_out.add(line["product_id"])
    if not taken:
        return
    if selling_out:
        query(f"SELECT product_id FROM product WHERE product_id IN ({placeholders(selling_out)}) FOR UPDATE",
              sorted(selling_out))
    amount, amount_args = case_when("product_id", sorted(taken.items()))
    last, last_args = ((f" OR product_id IN ({placeholders(selling_out)})", sorted(selling_out)) if selling_out
                       else ("", []))
    if execute(f"UPDATE stock SET quantity_available = quantity_available - {amount}"
               f" WHERE product_id IN ({placeholders(taken)}) AND quantity_available >= {amount}"
               f" AND (quantity_available > {amount}{last})",
               amount_args + sorted(taken) + amount_args + amount_args + last_args).rowcount != len(taken):
        raise db.ReadAgain("a line has sold since the cart was read")
    webhooks.stocks_taken(taken)


def group_most(group):
    """The most a group's order can cost: its lines' totals (a weighed line at its estimate plus tolerance) and
    its fee; what a card is authorized for."""
    return sum((measures.most_charged(dict(line, unit_price=line["price"])) for line in group["lines"]),
               Decimal("0.00")) + group["fee"]


def claim_checkout_key(customer_id, key):
    """Take the checkout key for this checkout; False when a checkout of it was placed already."""
    try:
        execute("INSERT INTO checkout_key (customer_id, checkout_key) VALUES (%s, %s)", (customer_id, key))
    except db.IntegrityError:
        return False
    return True


def checkout_problems(groups, choices, postcode):
    """Everything that would stop or hold back the chosen groups, without placing anything: so that a refused
    checkout form says it all at once."""
    try:
        return orderable_groups(groups, choices, postcode)[1]
    except CheckoutRefused as refusal:
        return refusal.problems


def orderable_groups(groups, choices, postcode):
    """The groups a time was chosen for that can be ordered as they stand, and what holds back the others.

    A line that cannot be ordered as it stands (short, sold out, gone) holds back its producer's group, which
    stays in the cart, and never another producer's order. A choice that does not work (a time no longer
    open, a minimum not reached, a postcode not served) is the customer's to fix first: CheckoutRefused, with
    every problem, as when no group can be ordered at all."""
    refusals, held, ordering = [], [], []
    for group in groups:
        if group["producer_id"] not in choices:
            continue
        if group["choice"] is None:
            refusals.append(f"The time you chose for {group['business_name']} is no longer open; choose another.")
            continue
        lines = [line["problem"].message for line in group["lines"] if line["problem"]]
        choice = choice_problem(group, postcode) if not lines else None
        refusals += [choice] if choice else []
        held += lines
        if not lines and not choice:
            ordering.append(group)
    if refusals or not ordering:
        raise CheckoutRefused(refusals + held or
                              ["Nothing in your cart can be ordered yet: its producers are not taking orders."])
    return ordering, held


def book_occurrence(occurrence):
    """Count one more order for a dated occurrence, refusing once its capacity is reached.

    The upsert takes the booking row's lock at once, so concurrent checkouts for one slot queue on it
    and each sees the count the others left."""
    if occurrence.slot is None:
        return
    slot_id, day, capacity = occurrence.slot["slot_id"], occurrence.day, occurrence.option["capacity"]
    if hub_key(occurrence):
        capacity = None  # a hub's capacity counts baskets: book_hub_place
    execute("INSERT INTO slot_booking (slot_id, slot_date, booked) VALUES (%s, %s, 1)"
            " ON DUPLICATE KEY UPDATE booked = booked + 1", (slot_id, day))
    booked = query("SELECT booked FROM slot_booking WHERE slot_id = %s AND slot_date = %s", (slot_id, day), one=True)
    if capacity is not None and booked["booked"] > capacity:
        raise CheckoutRefused([f"{occurrence.option['name']} on {occurrence.when} has just filled up; "
                               "choose another time."])


def insert_orders(customer_id, groups, details, key, by_card, payment_id, postings):
    """One order for each group, with what the customer was promised as it is now and the VAT rate of each line;
    their ids. An order paid by card (its group in by_card) waits for payment_id: it is not posted to the ledger
    until then; the others' entries go to postings. Their first statuses are for the caller to write."""
    order_ids = [insert_order(customer_id, group, details, key, payment_id if group in by_card else None)
                 for group in groups]
    lines = [(order_id, line) for order_id, group in zip(order_ids, groups) for line in group["lines"]]
    execute("INSERT INTO order_item (order_id, product_id, quantity, unit_price, sold_by, measure, estimated_weight,"
            " tolerance_percent, line_total, vat_percent) VALUES "
            + placeholders(lines, "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"),
            [value for order_id, line in lines for value in (
                order_id, line["product_id"], line["quantity"], line["price"], *order_line_selling(line),
                line["line_total"], line["vat_percent"])])
    posting = [(order_id, group) for order_id, group in zip(order_ids, groups) if group not in by_card]
    for order_id, group in posting:
        post_placed(customer_id, order_id, group, postings)
    return order_ids


def insert_order(customer_id, group, details, key, payment_id=None):
    """A group's order row (its lines are insert_orders' to write); its id."""
    occurrence, option = group["choice"], group["choice"].option
    delivery = option["kind"] == "delivery"
    return execute(
        "INSERT INTO orders (customer_id, producer_id, order_type, delivery_address, postcode, phone, option_id,"
        " slot_id, fulfilment_name, fulfilment_address, fulfilment_instructions, fulfilment_date, slot_start,"
        " slot_end, cutoff_hours, fee, checkout_key, payment_method, coop_fee_percent, status, card_payment_id,"
        " basket_id, hub_fee) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,"
        " %s, %s, %s)",
        (customer_id, group["producer_id"], option["kind"], details["delivery_address"] if delivery else None,
         details["postcode"] if delivery else None, details["phone"] or None, option["option_id"],
         occurrence.slot["slot_id"] if occurrence.slot else None, option["name"], option["address"],
         option["instructions"], occurrence.day, occurrence.start, occurrence.end,
         option["cutoff_hours"] if occurrence.slot else None, group["fee"], key, option["payment_method"],
         ledger.fee_rate(group["lines"][0]["fee_percent"]), "awaiting_payment" if payment_id else "pending",
         payment_id, group.get("basket_id"), group["hub_fee"])).lastrowid


def post_placed(customer_id, order_id, group, postings):
    """Post a new order's value to the ledger (and pay it from credit when that is how it is paid), from the
    row as insert_order wrote it and its lines' totals."""
    row = {"customer_id": customer_id, "producer_id": group["producer_id"], "status": "pending",
           "payment_method": group["choice"].option["payment_method"], "payment_status": "unpaid",
           "goods_total": group["goods"], "hub_fee": group["hub_fee"], "total": group["goods"] + group["fee"],
           "coop_fee_percent": ledger.fee_rate(group["lines"][0]["fee_percent"])}
    try:
        ledger.sync_order(order_id, "Order placed", ("customer", customer_id), strict=True, new=row,
                          postings=postings)
    except ledger.CreditShort as short:
        raise CheckoutRefused([f"Your credit of {fulfilment.format_money(short.available)} does not cover the "
                               f"{fulfilment.format_money(short.needed)} from {group['business_name']}: top up your "
                               "credit, or choose a way to get your order that is paid on collection."]) from None


def order_line_selling(product):
    """How a product is sold, as an order line keeps it: sold_by, measure, estimated_weight, tolerance_percent."""
    weighed = product["sold_by"] == "weighed"
    return (product["sold_by"], product["measure"], product["estimated_weight"] if weighed else None,
            product["tolerance_percent"] if weighed else None)


def lock_cart(customer_id):
    """Make the customer's cart changes queue one behind another, on the customer's row.

    A locking read of a cart line that does not exist yet would take a gap lock, and two adds with
    gap locks deadlock at their inserts; this lock is on a row that always exists.
    """
    query("SELECT customer_id FROM customer WHERE customer_id = %s FOR UPDATE", (customer_id,))


@transactional
def add_to_cart(customer_id, product, quantity):
    """Add quantity of product to the cart, as much as the stock and the product's steps allow; return
    (quantity before, quantity now)."""
    lock_cart(customer_id)
    row = query("SELECT quantity FROM cart_item WHERE customer_id = %s AND product_id = %s",
                (customer_id, product["product_id"]), one=True)
    in_cart = row["quantity"] if row else Decimal(0)
    new_quantity = measures.fit(product, in_cart + quantity, product["quantity_available"])
    if new_quantity > in_cart:
        execute("INSERT INTO cart_item (customer_id, product_id, quantity, price_when_added) VALUES (%s, %s, %s, %s)"
                " ON DUPLICATE KEY UPDATE quantity = VALUES(quantity), price_when_added = VALUES(price_when_added)",
                (customer_id, product["product_id"], new_quantity, product["price"]))
    return in_cart, new_quantity


@transactional
def set_cart_quantity(customer_id, product_id, quantity):
    """Set a cart line's quantity; 0 removes it."""
    lock_cart(customer_id)
    if quantity == 0:
        execute("DELETE FROM cart_item WHERE customer_id = %s AND product_id = %s", (customer_id, product_id))
    else:
        execute("UPDATE cart_item SET quantity = %s WHERE customer_id = %s AND product_id = %s",
                (quantity, customer_id, product_id))


def cart_change_message(product, wanted, new_quantity):
    """What the customer is told after asking for wanted of product and getting new_quantity: (message, category)."""
    name, now = product["name"], measures.how_much(product, new_quantity)
    if wanted == 0:
        return f"Removed {name} from your cart.", "success"
    if new_quantity == 0:
        return f"{name} is out of stock, so it was removed from your cart.", "warning"
    if new_quantity < wanted:
        if measures.measure_of(product) and product["max_quantity"] is not None and wanted > product["max_quantity"]:
            return f"{name} is bought {measures.quantity_text(product, product['max_quantity'])} at most; " \
                   f"your cart now holds {now}.", "warning"
        return f"Only {now} of {name} are in stock; your cart now holds {now}.", "warning"
    return f"Your cart now holds {measures.amount_of(product, new_quantity)}.", "success"
