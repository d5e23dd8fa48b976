"""The co-op's money in one ledger: entries of two or more legs that sum to zero, over accounts that keep their
balances in the same transaction. Nothing is updated or deleted; a correction is a reversing entry.

Each leg's amount is credit-positive: an account's balance is the sum of its legs. So a customer's credit and
what the co-op owes a producer are positive; what a customer owes for their orders is negative.

Request-free: the acting account comes in as (role, id).
"""
import re
from collections import namedtuple
from decimal import Decimal

from flask import current_app

from db import IntegrityError, case_when, database_tables, execute, placeholders, query, transactional
from measures import round_money

# kind: (what it is, whose it is). owner_id is the customer's or producer's id, or 0 for the co-op's own.
ACCOUNTS = {
    "credit": "a customer's credit with the co-op",
    "receivable": "what a customer owes for their orders",
    "producer": "what the co-op owes a producer for their orders",
    "fees": "the co-op's fees",
    "bank": "the co-op's bank account",
    "card": "card payments held at the card processor",
}
ENTRY_KINDS = {
    "order": "An order's value: placed, changed, cancelled",
    "payment": "A payment of an order",
    "refund": "What an order paid through the co-op no longer costs, back to credit",
    "topup": "Money received for a customer's credit",
    "payout": "Money the co-op paid a producer, or fees a producer paid the co-op",
    "reversal": "A correction, reversing an earlier entry",
}
ZERO = Decimal("0.00")
# How each way of paying reads in a list.
PAYMENT_WORDS = {"collection": "At collection", "transfer": "Bank transfer", "credit": "Credit", "card": "Card"}
# Orders the co-op collects the money of (so the ledger, not the producer, says when they are paid).
PAID_THROUGH_COOP = {"transfer", "credit", "card"}
# How an order is paid, chosen per collection or delivery option by its producer.
PAYMENT_METHODS = {
    "collection": "On collection or delivery (cash or card, recorded by you)",
    "transfer": "By bank transfer to the co-op, with the order's own reference",
    "card": "By card, at checkout (when the co-op takes cards)",
    "credit": "Out of the customer's credit with the co-op, at checkout",
}


class CreditShort(Exception):
    """The customer's credit (with the co-op's overdraft limit) does not cover an amount: nothing was paid."""

    def __init__(self, needed, available):
        super().__init__(needed, available)
        self.needed, self.available = needed, available


class Unbalanced(ValueError):
    """An entry whose legs do not sum to zero: a bug, never posted."""


Leg = namedtuple("Leg", "kind owner_id amount")


def account_id(kind, owner_id=0):
    """The id of an account, made on first use; its row is locked for this transaction."""
    if kind not in ACCOUNTS:
        raise ValueError(kind)
    return execute("INSERT INTO ledger_account (kind, owner_id) VALUES (%s, %s)"
                   " ON DUPLICATE KEY UPDATE account_id = LAST_INSERT_ID(account_id)", (kind, owner_id)).lastrowid


def account_ids(keys):
    """{(kind, owner_id): account_id} for each key, in one statement when every account is made already (each
    missing one is made as account_id makes it)."""
    keys = sorted(set(keys))
    if any(kind not in ACCOUNTS for kind, _ in keys):
        raise ValueError(keys)
    found = {(row["kind"], row["owner_id"]): row["account_id"] for row in query(
        "SELECT account_id, kind, owner_id FROM ledger_account WHERE "
        + " OR ".join(["(kind = %s AND owner_id = %s)"] * len(keys)), [value for key in keys for value in key])}
    for key in keys:
        if key not in found:
            found[key] = account_id(*key)
    return found


class Postings:
    """Entries' legs kept to be written at the end of a transaction (write), each naming its account by (kind,
    owner_id): a checkout posts each order's entry as it goes, and finds (or makes, for a first-time buyer) and
    holds its accounts' rows, its producers' busy ones among them, only as it commits. A row made earlier would be
    held while the checkout waits for stock, which another checkout holds as it updates the accounts beside it."""

    def __init__(self):
        self.legs = []

    def write(self):
        write_keyed_legs(self.legs)
        self.legs = []


def write_keyed_legs(legs):
    """write_legs for legs [(entry_id, (kind, owner_id), amount)], their accounts found or made first."""
    if not legs:
        return
    accounts = account_ids([key for _, key, _ in legs])
    write_legs([(entry_id, accounts[key], amount) for entry_id, key, amount in legs])


def post(kind, legs, order_id=None, note="", actor=(None, None), reverses=None, reference=None, at=None,
         postings=None):
    """Write one entry of legs [Leg(kind, owner_id, amount)], in the caller's transaction, and keep each
    account's balance; legs of 0 are left out. Returns the entry's id, or None when nothing moved. With
    postings (Postings), the entry's legs wait there for postings.write()."""
    if kind not in ENTRY_KINDS:
        raise ValueError(kind)
    amounts = {}
    for leg in legs:
        key = (leg.kind, leg.owner_id)
        amounts[key] = amounts.get(key, ZERO) + Decimal(leg.amount)
    if sum(amounts.values(), ZERO) != 0:
        raise Unbalanced(f"{kind} entry legs sum to {sum(amounts.values(), ZERO)}")
    moving = {key: amount for key, amount in amounts.items() if amount != 0}
    if not moving:
        return None
    entry_id = execute("INSERT INTO ledger_entry (kind, order_id, note, reference, actor_role, actor_id,"
                       " reverses_entry_id, created_at)"
                       " VALUES (%s, %s, %s, %s, %s, %s, %s, COALESCE(%s, UTC_TIMESTAMP(6)))",
                       (kind, order_id, note[:500], reference, *actor, reverses, at)).lastrowid
    legs = [(entry_id, key, amount) for key, amount in moving.items()]
    if postings is None:
        write_keyed_legs(legs)
    else:
        postings.legs.extend(legs)
    return entry_id


def write_legs(legs):
    """Write legs [(entry_id, account_id, amount)] and add them to their accounts' balances, in two statements.
    The balances go first, in one statement that updates (and locks) the accounts in id order: so concurrent
    entries queue on them and never deadlock, as they would if the legs' foreign keys share-locked them first."""
    if not legs:
        return
    balances = {}
    for _, account, amount in legs:
        balances[account] = balances.get(account, ZERO) + amount
    change, change_args = case_when("account_id", sorted(balances.items()))
    execute(f"UPDATE ledger_account SET balance = balance + {change} WHERE account_id IN ({placeholders(balances)})",
            change_args + sorted(balances))
    execute("INSERT INTO ledger_leg (entry_id, account_id, amount) VALUES " + placeholders(legs, "(%s, %s, %s)"),
            [value for leg in sorted(legs) for value in leg])


def reverse(entry_id, note, actor=(None, None)):
    """Post the reversal of an entry: the same legs, negated, with the reason; its id."""
    legs = query("SELECT a.kind, a.owner_id, l.amount FROM ledger_leg l JOIN ledger_account a"
                 " ON a.account_id = l.account_id WHERE l.entry_id = %s", (entry_id,))
    entry = query("SELECT order_id FROM ledger_entry WHERE entry_id = %s", (entry_id,), one=True)
    return post("reversal", [Leg(leg["kind"], leg["owner_id"], -leg["amount"]) for leg in legs],
                entry["order_id"], note, actor, reverses=entry_id)


# --- Orders ----------------------------------------------------------------------

def order_value(order_id, row=None):
    """An order's row, what it is worth to its customer now (its goods and fee) and the co-op's fee on it (its
    rate of the goods, rounded once, half up, and a hub's fee the order carries); both nothing once it is
    cancelled. row: the order's row (these columns) when the caller has it."""
    row = row or query("SELECT customer_id, producer_id, status, payment_method, payment_status, goods_total, hub_fee,"
                       " goods_total + fee AS total, coop_fee_percent FROM orders WHERE order_id = %s", (order_id,),
                       one=True)
    if row["status"] == "cancelled":
        return row, ZERO, ZERO
    return row, row["total"], coop_fee(row["goods_total"], row["coop_fee_percent"]) + row["hub_fee"]


def coop_fee(goods, percent):
    """The co-op's fee on an order's goods: one rounding, half up, per order."""
    return round_money(goods * percent / 100)


def posted_value(order_id):
    """What the ledger holds the order to be worth, and the fee it holds on it: (value, fee)."""
    row = query("SELECT COALESCE(-SUM(IF(a.kind = 'receivable', l.amount, 0)), 0) AS value,"
                " COALESCE(SUM(IF(a.kind = 'fees', l.amount, 0)), 0) AS fee FROM ledger_entry e"
                " JOIN ledger_leg l ON l.entry_id = e.entry_id JOIN ledger_account a ON a.account_id = l.account_id"
                " WHERE e.order_id = %s AND e.kind = 'order'", (order_id,), one=True)
    return row["value"], row["fee"]


def sync_order(order_id, note, actor=(None, None), strict=False, at=None, new=None, postings=None):
    """Post the change in an order's value since the ledger last saw it (placed, changed, weighed, moved,
    cancelled): the customer owes the difference, and the co-op owes it to the producer. A credit-paid order is
    then settled from credit (pay_from_credit; strict for what the customer does). Called in the transaction
    of the change, after it, with the order's row locked; returns the entry's id, or None when nothing moved.
    new: the order's row (order_value's columns) as it was inserted in this transaction, so the ledger holds
    nothing of it yet. postings: as post's, for an order not paid from credit (whose payment reads balances)."""
    row, value, fee = order_value(order_id, new)
    posted, posted_fee = (ZERO, ZERO) if new else posted_value(order_id)
    change, fee_change = value - posted, fee - posted_fee
    entry = post("order", [Leg("receivable", row["customer_id"], -change),
                           Leg("producer", row["producer_id"], change - fee_change), Leg("fees", 0, fee_change)],
                 order_id, note, actor, at=at, postings=None if row["payment_method"] == "credit" else postings)
    if row["payment_method"] == "credit":
        owed = pay_from_credit(order_id, row["customer_id"], overdraft_limit(), strict and change > 0)
    elif new:
        owed = value  # nothing is paid of an order yet to be committed
    else:
        owed = refund_overpaid(order_id, row["customer_id"], to_card=row["payment_method"] == "card")
    if row["payment_method"] in PAID_THROUGH_COOP:
        paid = "paid" if owed == 0 and value > 0 else row["payment_status"] if value == 0 else "unpaid"
        if paid != row["payment_status"]:
            execute("UPDATE orders SET payment_status = %s, paid_at = IF(%s = 'paid', UTC_TIMESTAMP(), NULL)"
                    " WHERE order_id = %s", (paid, paid, order_id))
    return entry


def fee_rate(own):
    """The co-op's fee rate on a producer's new orders from their own setting (None: COOP_FEE_PERCENT)."""
    return Decimal(str(current_app.config["COOP_FEE_PERCENT"])) if own is None else own


def order_fee(order):
    """The co-op's fee on an order as it stands (for its pages): (rate, amount)."""
    rate = order["coop_fee_percent"]
    return rate, ZERO if order["status"] == "cancelled" else coop_fee(order["goods_total"], rate)


def overdraft_limit():
    """How far below zero a customer's credit may go, a co-op setting (CREDIT_OVERDRAFT_LIMIT, default 0)."""
    return Decimal(str(current_app.config["CREDIT_OVERDRAFT_LIMIT"]))


def order_due(order_id, customer_id):
    """What the customer still owes for an order (negative when they paid more than it is now worth)."""
    return -query("SELECT COALESCE(SUM(l.amount), 0) AS owed FROM ledger_entry e JOIN ledger_leg l"
                  " ON l.entry_id = e.entry_id JOIN ledger_account a ON a.account_id = l.account_id"
                  " WHERE e.order_id = %s AND a.kind = 'receivable' AND a.owner_id = %s",
                  (order_id, customer_id), one=True)["owed"]


def record_paid_at_collection(order_id, customer_id, producer_id, actor, at=None):
    """The producer took what is due for the order in cash or on their card reader: the customer owes it no
    more, and the co-op owes the producer that much less. Returns the entry's id, or None when nothing was due."""
    due = order_due(order_id, customer_id)
    if due <= 0:
        return None
    return post("payment", [Leg("receivable", customer_id, due), Leg("producer", producer_id, -due)], order_id,
                "Paid on collection or delivery", actor, at=at)


def reverse_payments(order_id, note, actor):
    """Reverse the order's payments that are not reversed yet (a payment recorded by mistake); their ids."""
    open_payments = query("SELECT e.entry_id FROM ledger_entry e WHERE e.order_id = %s AND e.kind = 'payment'"
                          " AND NOT EXISTS (SELECT 1 FROM ledger_entry r WHERE r.reverses_entry_id = e.entry_id)"
                          " ORDER BY e.entry_id", (order_id,))
    return [reverse(row["entry_id"], note, actor) for row in open_payments]


def refund_overpaid(order_id, customer_id, to_card=False):
    """Whatever the customer has paid beyond what the order is now worth goes back: to the card it was paid by
    (the refund owed is written for the worker to send to Stripe, once) or else to their credit. Returns what
    they still owe (0 when nothing)."""
    due = order_due(order_id, customer_id)
    if due >= 0:
        return due
    if to_card:
        entry = post("refund", [Leg("receivable", customer_id, due), Leg("card", 0, -due)], order_id,
                     "Refunded to your card")
        execute("INSERT INTO card_refund (payment_id, order_id, entry_id, amount)"
                " SELECT card_payment_id, order_id, %s, %s FROM orders WHERE order_id = %s", (entry, -due, order_id))
        return ZERO
    post("refund", [Leg("receivable", customer_id, due), Leg("credit", customer_id, -due)], order_id,
         "Refunded to credit")
    return ZERO


def pay_from_credit(order_id, customer_id, overdraft_limit, strict=True):
    """Settle a credit-paid order with its customer's credit after its value changed: an order now worth less
    is refunded to credit; one worth more is paid from credit while the balance, down to the overdraft limit,
    covers it. The credit account's row is locked first, so concurrent payments queue and none takes it past
    the limit. Uncovered, strict raises CreditShort (nothing paid); otherwise the amount stays owed. Returns
    what is still owed."""
    due = refund_overpaid(order_id, customer_id)
    if due == 0:
        return ZERO
    held = query("SELECT balance FROM ledger_account WHERE account_id = %s FOR UPDATE",
                 (account_id("credit", customer_id),), one=True)["balance"]
    if due > held + overdraft_limit:
        if strict:
            raise CreditShort(due, held)
        return due
    post("payment", [Leg("credit", customer_id, -due), Leg("receivable", customer_id, due)], order_id,
         "Paid from credit")
    return ZERO


class DuplicateReference(Exception):
    """A payment with this reference is in the ledger already: recording it again would count it twice."""


@transactional
def top_up(customer_id, amount, reference, operator_id):
    """The co-op received amount for a customer's credit (a transfer, cash at the shop), under the payment's
    reference: its entry's id. DuplicateReference, with nothing posted, when that reference is recorded."""
    if query("SELECT 1 AS found FROM ledger_entry WHERE kind = 'topup' AND reference = %s", (reference,), one=True):
        raise DuplicateReference(reference)
    try:
        return record_top_up(customer_id, amount, reference, f"Top-up received, reference {reference}",
                             ("operator", operator_id))
    except IntegrityError:
        raise DuplicateReference(reference) from None


def backfill_orders():
    """Post the value (and a recorded payment) of each order written without the ledger: orders from before it
    and the demo data. Each is posted once: an order with any entry is left alone."""
    if "ledger_entry" not in database_tables():
        return
    rows = query("SELECT o.order_id, o.customer_id, o.producer_id, o.payment_status, o.paid_by_id, o.placed_at,"
                 " o.paid_at FROM orders o"
                 " WHERE NOT EXISTS (SELECT 1 FROM ledger_entry e WHERE e.order_id = o.order_id) ORDER BY o.order_id")
    for row in rows:
        backfill_order(row)


@transactional
def backfill_order(row):
    """One order's value, and its payment if one was recorded, as of when they happened."""
    sync_order(row["order_id"], "Order placed", at=row["placed_at"])
    if row["payment_status"] == "paid":
        record_paid_at_collection(row["order_id"], row["customer_id"], row["producer_id"],
                                  ("producer", row["paid_by_id"] or row["producer_id"]), at=row["paid_at"])


# --- Bank transfers and payouts ------------------------------------------------

def check_digits(number):
    """Two check digits (ISO 7064 mod 97-10, as in IBANs) so a mistyped reference matches nothing."""
    return f"{98 - (number * 100) % 97:02d}"


def payment_reference(order_id):
    """The reference a customer gives when paying an order by bank transfer."""
    return f"NOE-{order_id}-{check_digits(order_id)}"


def credit_reference(customer_id):
    """The reference a customer gives when topping up their credit by bank transfer."""
    return f"CR-{customer_id}-{check_digits(customer_id)}"


REFERENCE_PATTERN = re.compile(r"(?<![A-Z0-9])(NOE|CR)[ -]?([0-9]{1,9})[ -]?([0-9]{2})(?![0-9])", re.IGNORECASE)
REFERENCE_KINDS = {"NOE": "order", "CR": "credit"}


def references_in(text):
    """The well-formed references in a payment's text, in order and once each: [(kind, id)], kind 'order' or
    'credit'. One whose check digits are wrong is not a reference."""
    found = []
    for prefix, number, check in REFERENCE_PATTERN.findall(text or ""):
        reference = (REFERENCE_KINDS[prefix.upper()], int(number))
        if check == check_digits(int(number)) and reference not in found:
            found.append(reference)
    return found


def record_transfer(order_id, amount, reference, actor=(None, None)):
    """Money received by bank transfer for an order: what it still owes is paid and anything beyond goes to
    its customer's credit; the order reads paid once nothing is owed. Its entry's id."""
    row = query("SELECT customer_id, status, payment_status FROM orders WHERE order_id = %s FOR UPDATE",
                (order_id,), one=True)
    customer_id = row["customer_id"]
    paid = min(amount, max(order_due(order_id, customer_id), ZERO))
    entry = post("payment", [Leg("bank", 0, -amount), Leg("receivable", customer_id, paid),
                             Leg("credit", customer_id, amount - paid)],
                 order_id, f"Paid by bank transfer ({reference})", actor, reference=reference)
    if row["status"] != "cancelled" and row["payment_status"] != "paid" and order_due(order_id, customer_id) <= 0:
        execute("UPDATE orders SET payment_status = 'paid', paid_at = UTC_TIMESTAMP() WHERE order_id = %s",
                (order_id,))
    return entry


def record_top_up(customer_id, amount, reference, note, actor):
    """Money received for a customer's credit, in the caller's transaction; its entry's id."""
    return post("topup", [Leg("bank", 0, -amount), Leg("credit", customer_id, amount)], None, note, actor,
                reference=reference)


class PayoutRefused(Exception):
    """A payout larger than what the co-op owes the producer (or fees larger than they owe): nothing posted."""


def to_collect(producer_id):
    """What customers still owe for the producer's orders paid on collection: the producer takes it at the
    gate, so it is in their balance but not the co-op's to pay out."""
    # From the producer's orders: left to itself, the planner would read the whole co-op's receivable legs.
    return query("SELECT COALESCE(-SUM(l.amount), 0) AS owed FROM orders o"
                 " STRAIGHT_JOIN ledger_entry e ON e.order_id = o.order_id STRAIGHT_JOIN ledger_leg l ON l.entry_id = e.entry_id"
                 " STRAIGHT_JOIN ledger_account a ON a.account_id = l.account_id AND a.kind = 'receivable'"
                 " WHERE o.producer_id = %s AND o.payment_method = 'collection'", (producer_id,), one=True)["owed"]


@transactional
def payout(producer_id, amount, reference, note, operator_id):
    """The co-op paid a producer amount (or, negative, received fees they owed it), under the transfer's
    reference: its entry's id. The producer's account is locked, so two payouts never pay more than the co-op
    holds for them (their balance less what they are still to collect themselves); PayoutRefused (with that
    position) or DuplicateReference post nothing."""
    held = query("SELECT balance FROM ledger_account WHERE account_id = %s FOR UPDATE",
                 (account_id("producer", producer_id),), one=True)["balance"]
    position = held - to_collect(producer_id)
    if amount == 0 or (amount > 0 and amount > position) or (amount < 0 and -amount > -position):
        raise PayoutRefused(position)
    if query("SELECT 1 AS found FROM ledger_entry WHERE kind = 'payout' AND reference = %s", (reference,), one=True):
        raise DuplicateReference(reference)
    return post("payout", [Leg("producer", producer_id, -amount), Leg("bank", 0, amount)], None, note,
                ("operator", operator_id), reference=reference)


# --- Reading it ---------------------------------------------------------------

def balance(kind, owner_id=0):
    """An account's kept balance (0 for one never used)."""
    row = query("SELECT balance FROM ledger_account WHERE kind = %s AND owner_id = %s", (kind, owner_id), one=True)
    return row["balance"] if row else ZERO


def customer_history(customer_id, limit=200):
    """The movements of a customer's credit and of what they owe, newest first: each entry with its order,
    note, when, and the amounts on each of the two accounts."""
    return query(
        "SELECT e.entry_id, e.kind, e.order_id, e.note, e.created_at,"
        " SUM(IF(a.kind = 'credit', l.amount, 0)) AS credit, SUM(IF(a.kind = 'receivable', l.amount, 0)) AS owed"
        " FROM ledger_leg l JOIN ledger_account a ON a.account_id = l.account_id"
        " JOIN ledger_entry e ON e.entry_id = l.entry_id"
        " WHERE a.kind IN ('credit', 'receivable') AND a.owner_id = %s"
        " GROUP BY e.entry_id ORDER BY e.created_at DESC, e.entry_id DESC LIMIT %s", (customer_id, limit))


def coop_balances():
    """Each kind of account's total, in ACCOUNTS' order: [{'kind', 'what', 'total', 'accounts'}]; they sum to 0."""
    found = {row["kind"]: row for row in query("SELECT kind, SUM(balance) AS total, COUNT(*) AS accounts"
                                               " FROM ledger_account GROUP BY kind")}
    return [{"kind": kind, "what": what, "total": found[kind]["total"] if kind in found else ZERO,
             "accounts": found[kind]["accounts"] if kind in found else 0} for kind, what in ACCOUNTS.items()]


def problems():
    """What is wrong with the ledger, in sentences: entries whose legs do not sum to zero, and kept balances
    that differ from the sum of their legs. Empty when it is sound."""
    unbalanced = query("SELECT entry_id, SUM(amount) AS total FROM ledger_leg GROUP BY entry_id HAVING SUM(amount) <> 0")
    drifted = query("SELECT a.account_id, a.kind, a.owner_id, a.balance, COALESCE(SUM(l.amount), 0) AS summed"
                    " FROM ledger_account a LEFT JOIN ledger_leg l ON l.account_id = a.account_id"
                    " GROUP BY a.account_id HAVING a.balance <> COALESCE(SUM(l.amount), 0)")
    legless = query("SELECT e.entry_id FROM ledger_entry e"
                    " WHERE (SELECT COUNT(*) FROM ledger_leg l WHERE l.entry_id = e.entry_id) < 2")
    return ([f"entry {row['entry_id']}'s legs sum to {row['total']}" for row in unbalanced]
            + [f"{row['kind']} account {row['owner_id']} keeps {row['balance']} but its legs sum to {row['summed']}"
               for row in drifted]
            + [f"entry {row['entry_id']} has fewer than two legs" for row in legless])
