"""Producer statements and the co-op's accounts, read from the ledger: for a week or a month, what each
producer's orders came to (sales, refunds, the co-op's fee, net), what they took themselves, what the co-op
paid them, and what is still due either way; and the ledger itself by period.

Periods are local weeks (Monday to Sunday, '2026-W48') or months ('2026-11') in TIMEZONE. Request-free.
"""
import datetime
import re
from collections import namedtuple

import fulfilment
import ledger
from db import query
from ledger import ZERO

Period = namedtuple("Period", "key label first last start end")
PERIOD_PATTERN = re.compile(r"^(\d{4})-(?:(0[1-9]|1[0-2])|W(0[1-9]|[1-4]\d|5[0-3]))$")


class PeriodRefused(ValueError):
    """Not a week ('2026-W48') or a month ('2026-11') between 2000 and 2100."""


def period(key):
    """The Period a key names, with its first and last local days and the stored (naive UTC) instants it runs
    from and to; PeriodRefused for anything else."""
    match = PERIOD_PATTERN.match(key or "")
    if not match or not 2000 <= int(match.group(1)) < 2100:
        raise PeriodRefused(key)
    year = int(match.group(1))
    if match.group(2):
        first = datetime.date(year, int(match.group(2)), 1)
        following = datetime.date(year + (first.month == 12), first.month % 12 + 1, 1)
        label = f"{first:%B %Y}"
    else:
        try:
            first = datetime.date.fromisocalendar(year, int(match.group(3)), 1)
        except ValueError:
            raise PeriodRefused(key) from None
        following = first + datetime.timedelta(days=7)
        label = f"Week {int(match.group(3))} of {year} ({first:%-d %b}–{following - datetime.timedelta(days=1):%-d %b})"
    return Period(key, label, first, following - datetime.timedelta(days=1),
                  fulfilment.stored_day_start(first), fulfilment.stored_day_start(following))


def this_month(today=None):
    return f"{today or fulfilment.local_today():%Y-%m}"


def recent_periods(today=None, months=6, weeks=6):
    """Keys of the latest weeks and months, newest first, for a period picker."""
    today = today or fulfilment.local_today()
    week_keys = [f"{day.isocalendar()[0]}-W{day.isocalendar()[1]:02d}"
                 for day in (today - datetime.timedelta(weeks=n) for n in range(weeks))]
    month_keys, day = [], today.replace(day=1)
    for _ in range(months):
        month_keys.append(f"{day:%Y-%m}")
        day = (day - datetime.timedelta(days=1)).replace(day=1)
    return [period(key) for key in week_keys + month_keys]


def order_lines(producer_id, span):
    """Per order with a change in its value posted in the period: its sales (increases), refunds (decreases),
    the co-op's fee on the change and the producer's net, from the ledger's order entries (each has one leg per
    account, so a receivable leg is its entry's whole change)."""
    return query(
        "SELECT e.order_id, MIN(o.placed_at) AS placed_at, MIN(o.fulfilment_date) AS fulfilment_date,"
        " MIN(c.first_name) AS customer_name, MIN(o.status) AS status, MIN(o.payment_method) AS payment_method,"
        " SUM(IF(a.kind = 'receivable', GREATEST(-l.amount, 0), 0)) AS sales,"
        " SUM(IF(a.kind = 'receivable', GREATEST(l.amount, 0), 0)) AS refunds,"
        " SUM(IF(a.kind = 'fees', l.amount, 0)) AS fees, SUM(IF(a.kind = 'producer', l.amount, 0)) AS net"
        # From the producer's orders: left to itself, the planner would read the whole co-op's ledger.
        " FROM orders o STRAIGHT_JOIN ledger_entry e ON e.order_id = o.order_id"
        " STRAIGHT_JOIN customer c ON c.customer_id = o.customer_id"
        " STRAIGHT_JOIN ledger_leg l ON l.entry_id = e.entry_id STRAIGHT_JOIN ledger_account a ON a.account_id = l.account_id"
        " WHERE o.producer_id = %s AND e.kind = 'order' AND e.created_at >= %s AND e.created_at < %s"
        " GROUP BY e.order_id ORDER BY e.order_id", (producer_id, span.start, span.end))


def account_of(producer_id):
    row = query("SELECT account_id FROM ledger_account WHERE kind = 'producer' AND owner_id = %s",
                (producer_id,), one=True)
    return row["account_id"] if row else 0


def account_movements(account, span):
    """The producer account's balance at the period's start, its end and now, and in the period what the
    producer took themselves (payments at collection, less their reversals) and what was paid out."""
    row = query("SELECT COALESCE(SUM(IF(e.created_at < %s, l.amount, 0)), 0) AS opening,"
                " COALESCE(SUM(IF(e.created_at < %s, l.amount, 0)), 0) AS closing, COALESCE(SUM(l.amount), 0) AS due_now,"
                " COALESCE(-SUM(IF(e.kind IN ('payment', 'reversal') AND e.created_at >= %s AND e.created_at < %s,"
                "   l.amount, 0)), 0) AS collected,"
                " COALESCE(-SUM(IF(e.kind = 'payout' AND e.created_at >= %s AND e.created_at < %s, l.amount, 0)), 0)"
                "   AS paid_out"
                " FROM ledger_leg l JOIN ledger_entry e ON e.entry_id = l.entry_id WHERE l.account_id = %s",
                (span.start, span.end, span.start, span.end, span.start, span.end, account), one=True)
    return {name: ledger.ZERO + row[name] for name in ("opening", "closing", "due_now", "collected", "paid_out")}


def statement(producer_id, key):
    """A producer's statement for a period: its orders, their totals (net = sales − refunds − fees), what they
    took themselves, what was paid out, the balance at its start and end and now, what they are still to
    collect at the gate, and so where they stand with the co-op now (position: positive, the co-op owes them;
    negative, they owe it fees). PeriodRefused."""
    span = period(key)
    lines = order_lines(producer_id, span)
    totals = {name: sum((line[name] for line in lines), ZERO) for name in ("sales", "refunds", "fees", "net")}
    account = account_of(producer_id)
    movements = account_movements(account, span)
    collect = ledger.to_collect(producer_id)
    return {"period": span, "orders": lines, "totals": totals, **movements, "to_collect": collect,
            "position": movements["due_now"] - collect,
            "payouts": query("SELECT e.entry_id, e.created_at, e.reference, e.note, -l.amount AS amount"
                             " FROM ledger_leg l JOIN ledger_entry e ON e.entry_id = l.entry_id"
                             " WHERE l.account_id = %s AND e.kind = 'payout' ORDER BY e.entry_id DESC LIMIT 20",
                             (account,))}


STATEMENT_CSV_HEADER = ["order", "placed", "for", "customer", "paid by", "sales", "refunds", "co-op fee", "net"]


def statement_csv_rows(found, local_zone):
    """A statement as spreadsheet rows: a header, one row per order, and the totals."""
    yield STATEMENT_CSV_HEADER
    for line in found["orders"]:
        yield [line["order_id"], fulfilment.stored_local(line["placed_at"], local_zone),
               line["fulfilment_date"] or "", line["customer_name"], line["payment_method"],
               line["sales"], line["refunds"], line["fees"], line["net"]]
    totals = found["totals"]
    yield ["total", "", "", "", "", totals["sales"], totals["refunds"], totals["fees"], totals["net"]]


def statement_producers(key):
    """Every producer with their balance now and their net for the period, for the operator's list."""
    span = period(key)
    return query(
        "SELECT p.producer_id, p.business_name, COALESCE(a.balance, 0) AS due_now,"
        " (SELECT COALESCE(SUM(l.amount), 0) FROM ledger_leg l JOIN ledger_entry e ON e.entry_id = l.entry_id"
        "  WHERE l.account_id = a.account_id AND e.kind = 'order' AND e.created_at >= %s AND e.created_at < %s) AS net"
        " FROM producer p LEFT JOIN ledger_account a ON a.kind = 'producer' AND a.owner_id = p.producer_id"
        " WHERE p.status <> 'pending' ORDER BY p.business_name", (span.start, span.end))


LEDGER_CSV_HEADER = ["entry", "when (UTC)", "kind", "order", "reference", "note", "account", "owner", "amount"]


def ledger_csv_rows(key):
    """Every leg of every entry posted in the period, oldest first, for the co-op's accountant."""
    span = period(key)
    yield LEDGER_CSV_HEADER
    for row in query("SELECT e.entry_id, e.created_at, e.kind, e.order_id, e.reference, e.note, a.kind AS account,"
                     " a.owner_id, l.amount FROM ledger_entry e JOIN ledger_leg l ON l.entry_id = e.entry_id"
                     " JOIN ledger_account a ON a.account_id = l.account_id"
                     " WHERE e.created_at >= %s AND e.created_at < %s ORDER BY e.entry_id, l.leg_id",
                     (span.start, span.end)):
        yield [row["entry_id"], f"{row['created_at']:%Y-%m-%d %H:%M:%S}", row["kind"], row["order_id"] or "",
               row["reference"] or "", row["note"], row["account"], row["owner_id"], row["amount"]]
