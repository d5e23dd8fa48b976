"""The co-op's bank statements: a CSV export or an ISO 20022 camt.053 file read into lines, each line kept
once however often its file (or an overlapping one) is imported, and matched by payment reference to an
order or a customer's credit. A line that matches nothing is listed for the operator, never guessed.

Request-free: the operator's id comes in as an argument.
"""
import csv
import datetime
import hashlib
import io
from decimal import Decimal, InvalidOperation

from pycamt.parser import Camt053Parser

import ledger
from db import execute, query, transactional
from measures import round_money

MAX_LINES = 5000
# The CSV columns read, by the names banks give them (lower case); the first found of each is used.
CSV_COLUMNS = {
    "date": ("date", "booking date", "booked", "transaction date", "value date"),
    "amount": ("amount", "value", "paid in", "credit"),
    "paid_out": ("paid out", "debit"),
    "details": ("reference", "description", "details", "memo", "narrative", "payment reference"),
    "counterparty": ("name", "counterparty", "payee", "payer", "from", "other party"),
}
DATE_FORMATS = ("%Y-%m-%d", "%d/%m/%Y", "%d.%m.%Y", "%d-%m-%Y")


class BankFileRefused(Exception):
    """The file cannot be read as a bank statement; problem says why. Nothing was imported."""

    def __init__(self, problem):
        super().__init__(problem)
        self.problem = problem


class AlreadyImported(Exception):
    """This very file was imported before; nothing was added. imported is that import's row."""

    def __init__(self, imported):
        super().__init__(imported["import_id"])
        self.imported = imported


class LineSettled(Exception):
    """The line was matched or set aside already (perhaps by another operator just now)."""


def parse_amount(text):
    """A bank's amount ('1,234.50', '-5', '£12.00') as an exact Decimal; None when it is not one."""
    cleaned = (text or "").strip().replace(",", "").replace("£", "").replace("€", "").replace(" ", "")
    try:
        amount = Decimal(cleaned)
    except InvalidOperation:
        return None
    if not amount.is_finite() or abs(amount) >= Decimal("1e10") or amount != round_money(amount):
        return None
    return amount


def parse_date(text):
    """A bank's date in one of DATE_FORMATS (a camt date-time keeps its date); None when it is not one."""
    text = (text or "").strip()[:10]
    for form in DATE_FORMATS:
        try:
            return datetime.datetime.strptime(text, form).date()
        except ValueError:
            continue
    return None


def csv_lines(data):
    """The lines of a CSV export: [{'booked_on', 'amount', 'counterparty', 'details', 'bank_id'}]."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BankFileRefused("The file is not UTF-8 text: export it from your bank as CSV.") from None
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        raise BankFileRefused("The file is empty.")
    header = [name.strip().lower() for name in rows[0]]
    columns = {key: next((header.index(name) for name in names if name in header), None)
               for key, names in CSV_COLUMNS.items()}
    if columns["date"] is None or columns["amount"] is None or columns["details"] is None:
        raise BankFileRefused("The first row must name the columns, with at least a date, an amount and a "
                              "reference (or description) column.")
    lines = []
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        cell = lambda key: row[columns[key]].strip() if columns[key] is not None and columns[key] < len(row) else ""
        amount = parse_amount(cell("amount")) if cell("amount") else None
        if amount is None and cell("paid_out"):
            out = parse_amount(cell("paid_out"))
            amount = -out if out is not None else None
        booked_on = parse_date(cell("date"))
        if amount is None or booked_on is None:
            raise BankFileRefused(f"Row {number} has no readable date or amount; nothing was imported.")
        lines.append({"booked_on": booked_on, "amount": amount, "counterparty": cell("counterparty")[:200],
                      "details": cell("details")[:500], "bank_id": None})
    return lines


def camt_lines(data):
    """The lines of an ISO 20022 camt.053 statement, read by pycamt: credits positive, debits negative."""
    try:
        transactions = Camt053Parser(data).get_transactions()
    except Exception:  # lxml's and pycamt's errors alike: the file is not a statement they can read
        raise BankFileRefused("The file is not a camt.053 statement that can be read.") from None
    lines = []
    for transaction in transactions:
        amount, booked_on = parse_amount(transaction.get("Amount")), parse_date(transaction.get("BookingDate"))
        if amount is None or booked_on is None:
            raise BankFileRefused("An entry in the statement has no readable amount or booking date; "
                                  "nothing was imported.")
        if transaction.get("CreditDebitIndicator") == "DBIT":
            amount = -amount
        details = " ".join(filter(None, [transaction.get("RemittanceInformationFull"),
                                         transaction.get("AdditionalRemittanceInformation"),
                                         transaction.get("AdditionalEntryInformation")]))
        counterparty = transaction.get("DebtorName") if amount > 0 else transaction.get("CreditorName")
        bank_id = transaction.get("TransactionID")
        if bank_id and transaction.get("EndToEndId"):
            bank_id += "/" + transaction["EndToEndId"]
        lines.append({"booked_on": booked_on, "amount": amount, "counterparty": (counterparty or "")[:200],
                      "details": details[:500], "bank_id": bank_id})
    return lines


def read_file(name, data):
    """(format, lines) of an uploaded statement, by its content: XML is camt.053, anything else CSV."""
    if data.lstrip()[:1] == b"<":
        form, lines = "camt053", camt_lines(data)
    else:
        form, lines = "csv", csv_lines(data)
    if not lines:
        raise BankFileRefused("The file has no transactions in it.")
    if len(lines) > MAX_LINES:
        raise BankFileRefused(f"The file has {len(lines)} transactions; import at most {MAX_LINES} at a time.")
    return form, lines


def fingerprints(lines):
    """Each line's identity across files: the bank's own id when it gives one, else its date, amount, party and
    text with how many identical lines came before it in the file (two equal payments on one day stay two)."""
    seen = {}
    for line in lines:
        if line["bank_id"]:
            key = "id|" + line["bank_id"]
        else:
            key = "|".join(str(line[part]) for part in ("booked_on", "amount", "counterparty", "details"))
            seen[key] = seen.get(key, 0) + 1
            key = f"line|{key}|{seen[key]}"
        yield hashlib.sha256(key.encode()).hexdigest()


@transactional
def import_file(name, data, operator_id):
    """Import a statement: new lines are kept and matched, lines already imported are skipped; the import's
    row with how many lines were read, new and matched. AlreadyImported or BankFileRefused add nothing."""
    digest = hashlib.sha256(data).hexdigest()
    imported = query("SELECT * FROM bank_import WHERE file_sha256 = %s", (digest,), one=True)
    if imported:
        raise AlreadyImported(imported)
    form, lines = read_file(name, data)
    import_id = execute("INSERT INTO bank_import (file_name, file_sha256, file_format, lines_read, imported_by)"
                        " VALUES (%s, %s, %s, %s, %s)", (name[:255], digest, form, len(lines), operator_id)).lastrowid
    new, matched = 0, 0
    for line, fingerprint in zip(lines, fingerprints(lines)):
        line_id = execute("INSERT IGNORE INTO bank_line (import_id, fingerprint, booked_on, amount, counterparty,"
                          " details) VALUES (%s, %s, %s, %s, %s, %s)",
                          (import_id, fingerprint, line["booked_on"], line["amount"], line["counterparty"],
                           line["details"])).lastrowid
        if line_id:
            new += 1
            matched += bool(match_line(line_id))
    execute("UPDATE bank_import SET lines_new = %s WHERE import_id = %s", (new, import_id))
    return dict(query("SELECT * FROM bank_import WHERE import_id = %s", (import_id,), one=True), matched=matched)


def match_line(line_id):
    """Settle a new line by the one reference in its text that names an existing order or customer; a line
    with none, or with several, stays unmatched for the operator. Whether it matched."""
    line = query("SELECT * FROM bank_line WHERE line_id = %s", (line_id,), one=True)
    if line["amount"] <= 0:
        return False
    found = [(kind, number) for kind, number in ledger.references_in(line["details"]) if exists(kind, number)]
    if len(found) != 1:
        return False
    kind, number = found[0]
    settle(line, order_id=number if kind == "order" else None, customer_id=number if kind == "credit" else None)
    return True


def exists(kind, number):
    """Whether a reference's order or customer is there."""
    table, column = {"order": ("orders", "order_id"), "credit": ("customer", "customer_id")}[kind]
    return query(f"SELECT 1 AS found FROM {table} WHERE {column} = %s", (number,), one=True) is not None


def settle(line, order_id=None, customer_id=None, operator_id=None):
    """Post a received line to the ledger: as payment of an order, or as a top-up of a customer's credit."""
    reference = f"bank line {line['line_id']}"
    what = f"{line['counterparty']}: {line['details']}".strip(": ")
    actor = ("operator", operator_id) if operator_id else (None, None)
    if order_id is not None:
        entry = ledger.record_transfer(order_id, line["amount"], reference, actor)
        customer_id = None
    else:
        entry = ledger.record_top_up(customer_id, line["amount"], reference,
                                     f"Bank transfer received ({what})"[:500], actor)
    execute("UPDATE bank_line SET status = 'matched', order_id = %s, customer_id = %s, entry_id = %s,"
            " settled_by_id = %s, settled_at = UTC_TIMESTAMP() WHERE line_id = %s",
            (order_id, customer_id, entry, operator_id, line["line_id"]))


@transactional
def assign(line_id, operator_id, order_id=None, customer_id=None, note=""):
    """As the operator, settle an unmatched line: to an order, to a customer's credit, or (neither) set aside
    with a note, for a line that is not a customer's payment. None when there is no such order or customer;
    LineSettled when the line is settled already."""
    line = query("SELECT * FROM bank_line WHERE line_id = %s FOR UPDATE", (line_id,), one=True)
    if line is None or line["status"] != "unmatched":
        raise LineSettled(line_id)
    if order_id is None and customer_id is None:
        execute("UPDATE bank_line SET status = 'ignored', note = %s, settled_by_id = %s, settled_at = UTC_TIMESTAMP()"
                " WHERE line_id = %s", (note[:200], operator_id, line_id))
        return line
    if line["amount"] <= 0 or not exists("order" if order_id else "credit", order_id or customer_id):
        return None
    settle(line, order_id, customer_id, operator_id)
    return line


def lines(status, limit=200):
    """The lines in a status, newest first, with the customer or order each was matched to."""
    return query("SELECT b.*, COALESCE(c.first_name, oc.first_name) AS customer_name FROM bank_line b"
                 " LEFT JOIN customer c ON c.customer_id = b.customer_id"
                 " LEFT JOIN orders o ON o.order_id = b.order_id LEFT JOIN customer oc ON oc.customer_id = o.customer_id"
                 " WHERE b.status = %s ORDER BY b.line_id DESC LIMIT %s", (status, limit))


def imports(limit=20):
    """The newest imports."""
    return query("SELECT * FROM bank_import ORDER BY import_id DESC LIMIT %s", (limit,))
