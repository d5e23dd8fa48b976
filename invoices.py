"""Invoices and credit notes: issued when an order is completed, numbered per producer per year without gaps
(PREFIX-2026-00042, the counter row locked until the issuing transaction ends, so a rolled-back issue takes
its number with it), with each line's VAT rate and totals per rate. An issued document is frozen (its content
is kept as issued, and the table refuses updates); a refund after issue makes a credit note in the same
sequence. The VAT summary per producer per period reads them. Request-free.
"""
import json
import os
import re
from urllib.parse import urlsplit
from decimal import Decimal

import fulfilment
import measures
from db import execute, query, transactional
from measures import round_money

KINDS = {"invoice": "Invoice", "credit_note": "Credit note"}


def vat_rates():
    """The VAT rates in the one settings table: [{'code', 'name', 'percent'}], lowest first."""
    return query("SELECT code, name, percent FROM vat_rate ORDER BY percent, code")


def vat_choices():
    return [(rate["code"], f"{rate['name']} ({rate['percent'].normalize():f}%)") for rate in vat_rates()]


def keep_vat_rates(order_id, product_id=None):
    """Write the current VAT rate of each of an order's new lines (or of one product's line) into them."""
    execute("UPDATE order_item oi JOIN product p ON p.product_id = oi.product_id"
            " JOIN vat_rate v ON v.code = p.vat_rate SET oi.vat_percent = v.percent"
            " WHERE oi.order_id = %s AND (%s IS NULL OR oi.product_id = %s)", (order_id, product_id, product_id))


def prefix_of(producer):
    """The producer's number prefix: their own, else the first word of their business name in capitals."""
    own = producer["invoice_prefix"] or re.sub(r"[^A-Z0-9]", "", producer["business_name"].upper().split(" ")[0])
    return own[:12] or f"P{producer['producer_id']}"


def next_number(producer, year):
    """The next number in the producer's sequence for year: the counter's row stays locked until the caller's
    transaction ends, so concurrent issues queue and a rolled-back one leaves no gap."""
    execute("INSERT INTO invoice_sequence (producer_id, year, last_number) VALUES (%s, %s, 1)"
            " ON DUPLICATE KEY UPDATE last_number = last_number + 1", (producer["producer_id"], year))
    seq = query("SELECT last_number FROM invoice_sequence WHERE producer_id = %s AND year = %s",
                (producer["producer_id"], year), one=True)["last_number"]
    return seq, f"{prefix_of(producer)}-{year}-{seq:05d}"


def vat_totals(lines):
    """Totals per VAT rate of lines whose amounts include VAT: [{'percent', 'gross', 'net', 'vat'}], the
    VAT rounded once per rate."""
    rates = {}
    for line in lines:
        percent = Decimal(line["vat_percent"])
        rates[percent] = rates.get(percent, Decimal("0.00")) + Decimal(line["amount"])
    totals = []
    for percent, gross in sorted(rates.items()):
        net = round_money(gross * 100 / (100 + percent))
        totals.append({"percent": str(percent), "gross": str(gross), "net": str(net), "vat": str(gross - net)})
    return totals


def quantity_text(line):
    """A line's quantity as the invoice shows it: '2 × jar', '0.75 kg', '2 × whole chicken, 3.71 kg'."""
    text = measures.quantity_text(line, line["quantity"])
    if line["sold_by"] == "weighed":
        weight = line["weight"] if line["weight"] is not None else measures.estimated_weight(line)
        text += f", {measures.plain(weight)} kg" + ("" if line["weight"] is not None else " estimated")
    return text


def order_lines(order_id):
    """The order's lines as an invoice lists them, and its producer's fee as a line of its own."""
    rows = query(f"SELECT oi.product_id, p.name, p.unit, oi.quantity, oi.vat_percent, {measures.LINE_COLUMNS}"
                 " FROM order_item oi JOIN product p ON p.product_id = oi.product_id"
                 " WHERE oi.order_id = %s ORDER BY p.name, oi.product_id", (order_id,))
    lines = [{"product_id": row["product_id"], "description": row["name"],
              "quantity": quantity_text(row), "vat_percent": str(row["vat_percent"]),
              "amount": str(row["line_total"])} for row in rows]
    # A hub's fee is the co-op's, for its pick-up, not the producer's to invoice.
    fee = query("SELECT fee - hub_fee AS fee FROM orders WHERE order_id = %s", (order_id,), one=True)["fee"]
    if fee:
        lines.append({"product_id": None, "description": "Delivery", "quantity": "", "vat_percent": "0.00",
                      "amount": str(fee)})
    return lines


def parties(order_id):
    """The seller and buyer as the document names them, and the order's row."""
    order = query("SELECT o.order_id, o.customer_id, o.producer_id, o.order_type, o.delivery_address,"
                  " o.fulfilment_date, o.placed_at, p.business_name, p.legal_name, p.address, p.vat_number,"
                  " p.invoice_prefix, p.town, c.first_name, c.email"
                  " FROM orders o JOIN producer p ON p.producer_id = o.producer_id"
                  " JOIN customer c ON c.customer_id = o.customer_id WHERE o.order_id = %s", (order_id,), one=True)
    seller = {"name": order["legal_name"] or order["business_name"], "trading_as": order["business_name"],
              "address": order["address"] or order["town"], "vat_number": order["vat_number"]}
    buyer = {"name": order["first_name"], "email": order["email"], "address": order["delivery_address"] or ""}
    return order, seller, buyer


def issue(order, kind, lines, credits=None):
    """Write one document for the order, numbered next in its producer's sequence; its id."""
    order_row, seller, buyer = parties(order)
    year = fulfilment.local_today().year
    seq, number = next_number(order_row, year)
    total = sum((Decimal(line["amount"]) for line in lines), Decimal("0.00"))
    content = {"kind": kind, "number": number, "seller": seller, "buyer": buyer, "order_id": order_row["order_id"],
               "order_date": f"{order_row['placed_at']:%Y-%m-%d}", "lines": lines, "vat": vat_totals(lines),
               "total": str(total), "credits": credits}
    return execute("INSERT INTO invoice (producer_id, year, seq, number, kind, order_id, customer_id,"
                   " credits_invoice_id, total, content) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                   (order_row["producer_id"], year, seq, number, kind, order_row["order_id"],
                    order_row["customer_id"], credits["invoice_id"] if credits else None, total,
                    json.dumps(content))).lastrowid


def issue_for_completed(order_id):
    """The invoice of an order just completed, in its transaction; None when it has one already."""
    if query("SELECT 1 AS found FROM invoice WHERE order_id = %s AND kind = 'invoice'", (order_id,), one=True):
        return None
    return issue(order_id, "invoice", order_lines(order_id))


@transactional
def issue_demo_invoices():
    """The demo data's completed orders get their invoices, as completing them here would have issued them."""
    for row in query("SELECT o.order_id FROM orders o WHERE o.status = 'completed' AND NOT EXISTS"
                     " (SELECT 1 FROM invoice i WHERE i.order_id = o.order_id) ORDER BY o.order_id"):
        issue_for_completed(row["order_id"])


def invoiced_amounts(documents):
    """What an order's documents so far charge per line (product id, or None for delivery): the invoice less
    its credit notes."""
    amounts = {}
    for document in documents:
        for line in document["lines"]:
            key = line["product_id"]
            amounts[key] = amounts.get(key, Decimal("0.00")) + Decimal(line["amount"])
    return amounts


def credit_after_refund(order_id):
    """After a refund on an invoiced order, a credit note for each line now worth less than invoiced; its id,
    or None when nothing is owed back (or there is no invoice yet)."""
    documents = [dict(row, **json.loads(row["content"])) for row in query(
        "SELECT invoice_id, kind, content FROM invoice WHERE order_id = %s ORDER BY invoice_id", (order_id,))]
    invoice = next((document for document in documents if document["kind"] == "invoice"), None)
    if invoice is None:
        return None
    invoiced = invoiced_amounts(documents)
    current = {line["product_id"]: line for line in order_lines(order_id)}
    original = {line["product_id"]: line for line in invoice["lines"]}
    credits = []
    for key, amount in invoiced.items():
        now = Decimal(current[key]["amount"]) if key in current else Decimal("0.00")
        if now < amount:
            credits.append({"product_id": key, "description": original[key]["description"],
                            "quantity": current[key]["quantity"] + " now" if key in current else "returned",
                            "vat_percent": original[key]["vat_percent"], "amount": str(now - amount)})
    if not credits:
        return None
    return issue(order_id, "credit_note", credits, {"invoice_id": invoice["invoice_id"], "number": invoice["number"]})


# --- Reading them ------------------------------------------------------------

def document(invoice_id, role, account_id):
    """One document with its content, if the account may see it (its customer, its producer, the operator);
    else None."""
    row = query("SELECT * FROM invoice WHERE invoice_id = %s", (invoice_id,), one=True)
    if row is None or (role == "customer" and row["customer_id"] != account_id) or (
            role == "producer" and row["producer_id"] != account_id) or role not in ("customer", "producer", "operator"):
        return None
    return dict(row, content=json.loads(row["content"]), title=KINDS[row["kind"]])


def for_order(order_id):
    """An order's documents, oldest first."""
    return query("SELECT invoice_id, number, kind, total, issued_at FROM invoice WHERE order_id = %s"
                 " ORDER BY invoice_id", (order_id,))


def producer_documents(producer_id, limit=100):
    return query("SELECT invoice_id, number, kind, order_id, total, issued_at FROM invoice WHERE producer_id = %s"
                 " ORDER BY invoice_id DESC LIMIT %s", (producer_id, limit))


def vat_summary(span):
    """Per producer and VAT rate, the documents issued in a period: gross, net and VAT (credit notes negative)."""
    rows = query("SELECT i.producer_id, p.business_name, i.content FROM invoice i"
                 " JOIN producer p ON p.producer_id = i.producer_id"
                 " WHERE i.issued_at >= %s AND i.issued_at < %s ORDER BY p.business_name, i.invoice_id",
                 (span.start, span.end))
    summary = {}
    for row in rows:
        for rate in json.loads(row["content"])["vat"]:
            key = (row["business_name"], row["producer_id"], Decimal(rate["percent"]))
            held = summary.setdefault(key, {"gross": Decimal("0.00"), "net": Decimal("0.00"), "vat": Decimal("0.00")})
            for part in held:
                held[part] += Decimal(rate[part])
    return [{"business_name": name, "producer_id": producer_id, "percent": percent, **amounts}
            for (name, producer_id, percent), amounts in sorted(summary.items())]


VAT_CSV_HEADER = ["producer", "VAT rate %", "gross", "net", "VAT"]


def vat_csv_rows(span):
    yield VAT_CSV_HEADER
    for row in vat_summary(span):
        yield [row["business_name"], row["percent"], row["gross"], row["net"], row["vat"]]


def pdf(html, base_url, static_folder):
    """A document's page as an A4 PDF, printed by WeasyPrint as a browser prints it (the print stylesheet sets
    the page). Of the page's links only the site's own stylesheets are read, from static_folder: nothing is
    fetched over the network."""
    import weasyprint  # loads pango on first use, not at every start

    class StaticFiles(weasyprint.urls.URLFetcher):
        def fetch(self, url, headers=None):
            path = urlsplit(url).path
            if not url.startswith(base_url) or not path.startswith("/static/") or not path.endswith(".css"):
                raise ValueError(f"{url} is not one of the site's stylesheets")
            name = os.path.basename(path)
            with open(os.path.join(static_folder, name), "rb") as stylesheet:
                return weasyprint.urls.URLFetcherResponse(url, stylesheet.read(), {"Content-Type": "text/css"})

    return weasyprint.HTML(string=html, base_url=base_url, url_fetcher=StaticFiles()).write_pdf()
