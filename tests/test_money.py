"""Bank transfers and the bank statement import, producer statements and payouts, invoices and credit notes with
VAT, and the co-op's accounts. (conftest's db fixture checks the ledger after every test.)"""
import csv
import io
import json
import re
import threading
import zlib
from decimal import Decimal

import pytest

import ledger
import orders
from conftest import PASSWORD
from test_ledger import balances, checkout, entries, newest_order, top_up

CAMT = """<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02">
  <BkToCstmrStmt>
    <GrpHdr><MsgId>STMT-1</MsgId><CreDtTm>2026-12-04T18:00:00</CreDtTm></GrpHdr>
    <Stmt>
      <Id>S1</Id>
      <Acct><Id><IBAN>GB33BUKB20201555555555</IBAN></Id></Acct>
      {entries}
    </Stmt>
  </BkToCstmrStmt>
</Document>"""
CAMT_ENTRY = """<Ntry><Amt Ccy="GBP">{amount}</Amt><CdtDbtInd>{sign}</CdtDbtInd><Sts>BOOK</Sts>
        <BookgDt><Dt>2026-12-03</Dt></BookgDt><ValDt><Dt>2026-12-03</Dt></ValDt><AcctSvcrRef>{bank_id}</AcctSvcrRef>
        <NtryDtls><TxDtls><RltdPties><Dbtr><Nm>{name}</Nm></Dbtr></RltdPties>
          <RmtInf><Ustrd>{text}</Ustrd></RmtInf></TxDtls></NtryDtls></Ntry>"""


def camt(*lines):
    """A camt.053 statement of (amount, 'CRDT' or 'DBIT', bank id, payer, remittance text)."""
    return CAMT.format(entries="".join(CAMT_ENTRY.format(amount=amount, sign=sign, bank_id=bank_id, name=name, text=text)
                                       for amount, sign, bank_id, name, text in lines)).encode()


def bank_csv(*lines):
    """A bank's CSV export of (date, amount, name, reference)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["Date", "Amount", "Name", "Reference"])
    writer.writerows(lines)
    return out.getvalue().encode()


def upload(client, data, name="statement.csv"):
    return client.post("/admin/bank", data={"statement": (io.BytesIO(data), name)}, content_type="multipart/form-data")


def pay_by_transfer(db, world):
    db.execute("UPDATE fulfilment_option SET payment_method = 'transfer' WHERE option_id = %s",
               (world.collection[world.producer],))


def transfer_order(client, auth, db, world, quantity=3):
    """Jane checks out quantity of potatoes (£1.80 each) from Hartley Farm, paid by transfer; the order's id."""
    pay_by_transfer(db, world)
    db.add_to_cart(world.customer, world.product, quantity)
    auth.login_customer()
    assert checkout(client, world).status_code == 302
    auth.logout()
    return newest_order(db, world)


def line_status(db):
    return [(row["status"], row["order_id"], row["customer_id"], row["amount"])
            for row in db.rows("SELECT status, order_id, customer_id, amount FROM bank_line ORDER BY line_id")]


# --- Paying by bank transfer -----------------------------------------------------

def test_a_transfer_order_shows_its_reference_and_the_co_op_s_bank_details(client, auth, db, world):
    order_id = transfer_order(client, auth, db, world)
    assert db.value("SELECT payment_method FROM orders WHERE order_id = %s", (order_id,)) == "transfer"
    reference = ledger.payment_reference(order_id)
    assert re.fullmatch(rf"NOE-{order_id}-\d\d", reference)
    auth.login_customer()
    page = client.get(f"/orders/{order_id}").get_data(as_text=True)
    assert reference in page and "sort code 04-00-04" in page
    assert f"By bank transfer to the co-op, with the reference {reference}" in page


def test_the_producer_cannot_mark_a_transfer_order_paid_by_hand(client, auth, db, world):
    order_id = transfer_order(client, auth, db, world)
    auth.login_producer()
    with db.unchanged():
        response = client.post(f"/dashboard/orders/{order_id}/paid", data={"paid": "1"})
        assert response.status_code == 409 and "nothing to record" in response.get_data(as_text=True)


def test_references_need_their_check_digits():
    assert ledger.references_in(f"Thanks! {ledger.payment_reference(123)} and {ledger.credit_reference(7)}") == [
        ("order", 123), ("credit", 7)]
    wrong = ledger.payment_reference(123)[:-1] + str((int(ledger.payment_reference(123)[-1]) + 1) % 10)
    assert ledger.references_in(wrong) == []
    assert ledger.references_in("noe 123 " + ledger.check_digits(123)) == [("order", 123)], "spaces, any case"
    assert ledger.references_in("NOE-1234-5678") == [] and ledger.references_in("") == []


# --- The bank statement import -------------------------------------------------------

def test_a_csv_statement_pays_orders_and_tops_up_credit_by_reference_and_lists_the_rest(
        client, auth, db, world, operator):
    order_id = transfer_order(client, auth, db, world)
    auth.login_operator()
    data = bank_csv(["2026-12-03", "5.40", "J Smith", f"Order {ledger.payment_reference(order_id)}"],
                    ["03/12/2026", "20.00", "J Smith", ledger.credit_reference(world.customer)],
                    ["2026-12-03", "9.99", "Someone", "NOE-999999-" + ledger.check_digits(999999)],
                    ["2026-12-03", "7.00", "A Stranger", "for the eggs"],
                    ["2026-12-04", "-50.00", "Hartley Farm", "Payout"])
    response = upload(client, data)
    assert response.status_code == 302
    assert "Read 5 lines: 5 new, 2 matched by their reference, 3 left to assign." in \
        client.get("/admin/bank").get_data(as_text=True)
    assert line_status(db) == [("matched", order_id, None, Decimal("5.40")),
                               ("matched", None, world.customer, Decimal("20.00")),
                               ("unmatched", None, None, Decimal("9.99")),
                               ("unmatched", None, None, Decimal("7.00")),
                               ("unmatched", None, None, Decimal("-50.00"))]
    assert db.value("SELECT payment_status FROM orders WHERE order_id = %s", (order_id,)) == "paid"
    assert [kind for kind, _, _ in entries(db, order_id)] == ["order", "payment"]
    assert entries(db, order_id)[1][2] == {"bank": Decimal("-5.40"), "receivable": Decimal("5.40")}
    # The world's own order (£3.60, on collection) is still owed; the co-op owes the farm both orders.
    assert balances(db, world.customer, world.producer) == (Decimal("20.00"), Decimal("-3.60"), Decimal("9.00"))
    page = client.get("/admin/bank").get_data(as_text=True)
    assert "To assign (3)" in page and "for the eggs" in page and "A Stranger" in page


def test_the_same_statement_imported_twice_adds_nothing(client, auth, db, world, operator):
    order_id = transfer_order(client, auth, db, world)
    auth.login_operator()
    data = bank_csv(["2026-12-03", "5.40", "J Smith", ledger.payment_reference(order_id)],
                    ["2026-12-03", "7.00", "A Stranger", "eggs"], ["2026-12-03", "7.00", "A Stranger", "eggs"])
    assert upload(client, data).status_code == 302
    assert len(line_status(db)) == 3, "two equal payments on one day are two lines"
    with db.unchanged():
        response = upload(client, data, "again.csv")
        assert response.status_code == 409 and "nothing was added" in response.get_data(as_text=True)
    # The next export overlaps this one: only its new line is added.
    later = bank_csv(["2026-12-03", "5.40", "J Smith", ledger.payment_reference(order_id)],
                     ["2026-12-03", "7.00", "A Stranger", "eggs"], ["2026-12-03", "7.00", "A Stranger", "eggs"],
                     ["2026-12-05", "3.00", "B", "tip"])
    assert upload(client, later, "later.csv").status_code == 302
    assert len(line_status(db)) == 4
    assert db.value("SELECT COUNT(*) FROM ledger_entry WHERE order_id = %s AND kind = 'payment'", (order_id,)) == 1


def test_a_camt_053_statement_is_read_with_credits_and_debits_and_imported_once(client, auth, db, world, operator):
    order_id = transfer_order(client, auth, db, world)
    auth.login_operator()
    data = camt(("5.40", "CRDT", "BANK-REF-1", "Jane Smith", f"Payment {ledger.payment_reference(order_id)}"),
                ("12.50", "CRDT", "BANK-REF-2", "Jane Smith", "top up please"),
                ("30.00", "DBIT", "BANK-REF-3", "Hartley Farm", "Payout"))
    assert upload(client, data, "camt053.xml").status_code == 302
    assert line_status(db) == [("matched", order_id, None, Decimal("5.40")), ("unmatched", None, None, Decimal("12.50")),
                               ("unmatched", None, None, Decimal("-30.00"))]
    assert db.value("SELECT file_format FROM bank_import") == "camt053"
    with db.unchanged():
        assert upload(client, data, "camt053.xml").status_code == 409
    # The bank's own ids identify the lines: a second file with the same entries adds none of them.
    renamed = data.replace(b"STMT-1", b"STMT-2")
    assert upload(client, renamed, "camt053-again.xml").status_code == 302
    assert len(line_status(db)) == 3


@pytest.mark.parametrize("data, says", [
    (b"", "The file is empty."),
    (b"Date,Amount\n2026-12-01,5\n", "at least a date, an amount and a reference"),
    (b"Date,Amount,Reference\n2026-13-45,5.00,x\n", "Row 2 has no readable date or amount"),
    (b"Date,Amount,Reference\n2026-12-01,lots,x\n", "Row 2 has no readable date or amount"),
    (b"Date,Amount,Reference\n2026-12-01,1.234,x\n", "Row 2 has no readable date or amount"),
    (b"Date,Amount,Reference\n2026-12-01,1e400,x\n", "Row 2 has no readable date or amount"),
    (b"Date,Amount,Reference\n", "no transactions"),
    ("Date,Amount,Reference\n2026-12-01,5,caf\u00e9\n".encode("latin-1"), "not UTF-8"),
    (b"<Document><unclosed>", "not a camt.053 statement"),
    (b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY e SYSTEM "file:///etc/passwd">]><Document>&e;</Document>',
     "camt.053"),
])
def test_a_file_that_is_not_a_statement_is_refused_and_adds_nothing(client, auth, db, world, operator, data, says):
    auth.login_operator()
    with db.unchanged():
        response = upload(client, data)
        assert response.status_code == 400 and says in response.get_data(as_text=True)
        assert "root:" not in response.get_data(as_text=True)


def test_an_upload_with_no_file_is_refused(client, auth, db, world, operator):
    auth.login_operator()
    with db.unchanged():
        response = client.post("/admin/bank", data={}, content_type="multipart/form-data")
        assert response.status_code == 400 and "Choose the statement file" in response.get_data(as_text=True)


def test_the_operator_assigns_unmatched_lines_once(client, auth, db, world, operator):
    order_id = transfer_order(client, auth, db, world)
    auth.login_operator()
    upload(client, bank_csv(["2026-12-03", "6.00", "J Smith", "potatoes"], ["2026-12-03", "4.00", "J", "gift"],
                            ["2026-12-03", "-8.00", "Farm", "payout"]))
    first, second, out = [row["line_id"] for row in db.rows("SELECT line_id FROM bank_line ORDER BY line_id")]
    assert client.post(f"/admin/bank/lines/{first}", data={"order_id": order_id}).status_code == 302
    # £6.00 against £5.40 owed: the order is paid and the 60p beyond it goes to Jane's credit.
    assert entries(db, order_id)[-1][2] == {"bank": Decimal("-6.00"), "receivable": Decimal("5.40"),
                                            "credit": Decimal("0.60")}
    assert client.post(f"/admin/bank/lines/{second}", data={"customer_id": world.customer}).status_code == 302
    assert client.post(f"/admin/bank/lines/{out}", data={"note": "Payout to Hartley"}).status_code == 302
    assert balances(db, world.customer, world.producer)[0] == Decimal("4.60")
    assert [row[0] for row in line_status(db)] == ["matched", "matched", "ignored"]
    with db.unchanged():
        response = client.post(f"/admin/bank/lines/{first}", data={"customer_id": world.customer})
        assert response.status_code == 409 and "settled already" in response.get_data(as_text=True)


@pytest.mark.parametrize("data, status", [
    ({}, 400), ({"order_id": "1", "customer_id": "1"}, 400), ({"order_id": "abc"}, 400), ({"order_id": "-1"}, 400),
    ({"order_id": "99999999999"}, 400), ({"order_id": "999999"}, 404), ({"customer_id": "999999"}, 404),
    ({"note": "x" * 201}, 400),
])
def test_a_bad_assignment_is_refused_and_changes_nothing(client, auth, db, world, operator, data, status):
    auth.login_operator()
    upload(client, bank_csv(["2026-12-03", "6.00", "J Smith", "potatoes"]))
    line_id = db.value("SELECT line_id FROM bank_line")
    with db.unchanged():
        assert client.post(f"/admin/bank/lines/{line_id}", data=data).status_code == status
    with db.unchanged():
        assert client.post("/admin/bank/lines/999999", data={"note": "x"}).status_code == 409


def test_money_paid_out_cannot_be_assigned_to_an_order(client, auth, db, world, operator):
    auth.login_operator()
    upload(client, bank_csv(["2026-12-03", "-6.00", "Farm", "payout"]))
    line_id = db.value("SELECT line_id FROM bank_line")
    with db.unchanged():
        assert client.post(f"/admin/bank/lines/{line_id}", data={"order_id": world.order}).status_code == 404


def test_a_shortage_on_an_order_paid_by_transfer_refunds_the_difference_to_credit(client, auth, db, world, operator):
    order_id = transfer_order(client, auth, db, world)
    auth.login_operator()
    upload(client, bank_csv(["2026-12-03", "5.40", "J", ledger.payment_reference(order_id)]))
    auth.logout()
    auth.login_producer()
    response = client.post(f"/dashboard/orders/{order_id}/lines/{world.product}", data={"quantity": "1", "reason": "Blight"})
    assert response.status_code == 302
    assert entries(db, order_id)[-1] == ("refund", "Refunded to credit", {"credit": Decimal("3.60"),
                                                                          "receivable": Decimal("-3.60")})
    assert balances(db, world.customer, world.producer)[:2] == (Decimal("3.60"), Decimal("-3.60"))


# --- Producer statements and payouts ------------------------------------------------

def statement_csv(client, path):
    response = client.get(path)
    assert response.status_code == 200 and response.mimetype == "text/csv"
    return list(csv.reader(io.StringIO(response.get_data(as_text=True))))


def test_a_statement_s_net_is_sales_less_refunds_less_fees_in_the_ledger_and_the_csv(client, auth, db, world):
    db.execute("UPDATE producer SET fee_percent = 5 WHERE producer_id = %s", (world.producer,))
    db.add_to_cart(world.customer, world.product, 3)
    auth.login_customer()
    assert checkout(client, world).status_code == 302
    order_id = newest_order(db, world)
    auth.logout()
    auth.login_producer()
    assert client.post(f"/dashboard/orders/{order_id}/lines/{world.product}",
                       data={"quantity": "2", "reason": "Blight"}).status_code == 302
    rows = statement_csv(client, "/dashboard/statement.csv")
    assert rows[0] == ["order", "placed", "for", "customer", "paid by", "sales", "refunds", "co-op fee", "net"]
    mine = {row[0]: row for row in rows[1:]}
    # £5.40 placed, then £1.80 short; the fee is 5% of £3.60 = 18p, rounded once per order.
    assert mine[str(order_id)][5:] == ["5.40", "1.80", "0.18", "3.42"]
    total = rows[-1]
    assert total[0] == "total"
    sales, refunds, fees, net = (Decimal(value) for value in total[5:])
    assert net == sales - refunds - fees
    ledger_net = db.value("SELECT SUM(l.amount) FROM ledger_leg l JOIN ledger_account a ON a.account_id = l.account_id"
                          " JOIN ledger_entry e ON e.entry_id = l.entry_id"
                          " WHERE a.kind = 'producer' AND a.owner_id = %s AND e.kind = 'order'", (world.producer,))
    assert net == ledger_net
    page = client.get("/dashboard/statement").get_data(as_text=True)
    assert "Net of orders" in page and "£3.42" in page and f"#{order_id}" in page


def test_the_operator_pays_out_once_and_never_more_than_the_co_op_holds(client, auth, db, world, operator):
    order_id = transfer_order(client, auth, db, world)
    auth.login_operator()
    upload(client, bank_csv(["2026-12-03", "5.40", "J", ledger.payment_reference(order_id)]))
    # The farm's balance is £9.00, but £3.60 of it is the world's order, which Jane pays at the gate.
    assert balances(db, world.customer, world.producer)[2] == Decimal("9.00")
    url = f"/admin/producers/{world.producer}/payouts"
    with db.unchanged():
        response = client.post(url, data={"direction": "payout", "amount": "5.41", "reference": "PAY-1"})
        assert response.status_code == 409 and "holds £5.40 for Hartley Farm" in response.get_data(as_text=True)
    response = client.post(url, data={"direction": "payout", "amount": "5.00", "reference": "PAY-1"})
    assert response.status_code == 302
    assert balances(db, world.customer, world.producer)[2] == Decimal("4.00")
    with db.unchanged():
        response = client.post(url, data={"direction": "payout", "amount": "0.10", "reference": "PAY-1"})
        assert response.status_code == 409 and "recorded already" in response.get_data(as_text=True)
    auth.logout()
    auth.login_producer()
    page = client.get("/dashboard/statement").get_data(as_text=True)
    assert "Paid to Hartley Farm" in page and "The co-op owes you <strong>£0.40</strong> now" in page
    assert "£3.60 customers are still to pay at collection" in page


def test_two_payouts_at_once_never_pay_more_than_is_held(app, client, auth, db, world, operator):
    order_id = transfer_order(client, auth, db, world)
    auth.login_operator()
    upload(client, bank_csv(["2026-12-03", "5.40", "J", ledger.payment_reference(order_id)]))
    barrier, outcomes = threading.Barrier(2), []

    def pay(reference):
        with app.app_context():
            barrier.wait()
            try:
                ledger.payout(world.producer, Decimal("4.00"), reference, "Payout", 1)
                outcomes.append("paid")
            except ledger.PayoutRefused:
                outcomes.append("refused")

    threads = [threading.Thread(target=pay, args=(reference,)) for reference in ("A", "B")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes) == ["paid", "refused"]
    assert balances(db, world.customer, world.producer)[2] == Decimal("5.00")


def test_a_producer_paid_at_the_gate_owes_the_co_op_its_fees(client, auth, db, world, operator):
    db.execute("UPDATE orders SET coop_fee_percent = 10 WHERE order_id = %s", (world.order,))
    db.execute("UPDATE orders SET status = 'ready' WHERE order_id = %s", (world.order,))
    auth.login_producer()
    assert client.post("/dashboard/orders/%d/paid" % world.order, data={"paid": "1"}).status_code == 302
    # The fee rate was changed under the order, so post the order's fee as a status change would.
    assert client.post("/dashboard/update-order-status", data={"order_id": world.order, "status": "completed"}
                       ).status_code == 302
    page = client.get("/dashboard/statement").get_data(as_text=True)
    assert "You owe the co-op <strong>£0.36</strong> now" in page
    auth.logout()
    auth.login_operator()
    url = f"/admin/producers/{world.producer}/payouts"
    with db.unchanged():
        assert client.post(url, data={"direction": "fees", "amount": "0.37", "reference": "FEES-1"}).status_code == 409
    assert client.post(url, data={"direction": "fees", "amount": "0.36", "reference": "FEES-1"}).status_code == 302
    assert balances(db, world.customer, world.producer)[2] == Decimal("0.00")


@pytest.mark.parametrize("period", ["2026-13", "2026-W54", "1999-01", "12-2026", "2026-W00", "2026-1", "x" * 500,
                                    "2026-11'--"])
def test_a_period_that_is_not_a_week_or_month_is_a_400(client, auth, db, world, operator, period):
    auth.login_operator()
    for path in ("/admin/statements", f"/admin/producers/{world.producer}/statement", "/admin/accounts",
                 "/admin/accounts/ledger.csv"):
        response = client.get(path, query_string={"period": period})
        assert response.status_code == 400 and "is not a week" in response.get_data(as_text=True), path


@pytest.mark.parametrize("period, first, last", [("2026-11", "2026-11-01", "2026-11-30"),
                                                 ("2026-12", "2026-12-01", "2026-12-31"),
                                                 ("2026-W49", "2026-11-30", "2026-12-06"),
                                                 ("2026-W53", "2026-12-28", "2027-01-03")])
def test_periods_are_local_weeks_and_months(app, period, first, last):
    import statements
    with app.app_context():
        span = statements.period(period)
    assert (span.first.isoformat(), span.last.isoformat()) == (first, last)


# --- Invoices and credit notes ---------------------------------------------------------

def complete(client, auth, db, order_id):
    db.execute("UPDATE orders SET status = 'ready' WHERE order_id = %s", (order_id,))
    auth.login_producer()
    response = client.post("/dashboard/update-order-status", data={"order_id": order_id, "status": "completed"})
    assert response.status_code == 302
    auth.logout()


def invoice_rows(db):
    return db.rows("SELECT invoice_id, number, kind, seq, total, content FROM invoice ORDER BY invoice_id")


def test_completing_an_order_issues_its_invoice_with_vat_per_line_and_per_rate(client, auth, db, world, smtp):
    db.execute("UPDATE producer SET legal_name = 'J. Hartley Ltd', address = '1 Lane\\nBristol', vat_number = 'GB999',"
               " invoice_prefix = 'HARTLEY' WHERE producer_id = %s", (world.producer,))
    juice = db.add_product(world.producer, "Juice", "3.20", quantity=10)
    db.execute("UPDATE product SET vat_rate = 'standard' WHERE product_id = %s", (juice,))
    db.add_to_cart(world.customer, world.product, 2)
    db.add_to_cart(world.customer, juice, 3)
    auth.login_customer()
    assert checkout(client, world).status_code == 302
    order_id = newest_order(db, world)
    auth.logout()
    assert list(db.rows("SELECT product_id, vat_percent FROM order_item WHERE order_id = %s ORDER BY product_id",
                        (order_id,))) == [{"product_id": world.product, "vat_percent": Decimal("0.00")},
                                    {"product_id": juice, "vat_percent": Decimal("20.00")}]
    complete(client, auth, db, order_id)
    [invoice] = invoice_rows(db)
    year = db.value("SELECT YEAR(CURDATE())")
    assert invoice["number"] == f"HARTLEY-{year}-00001" and invoice["kind"] == "invoice"
    content = json.loads(invoice["content"])
    assert content["seller"] == {"name": "J. Hartley Ltd", "trading_as": "Hartley Farm", "address": "1 Lane\nBristol",
                                 "vat_number": "GB999"}
    assert content["vat"] == [{"percent": "0.00", "gross": "3.60", "net": "3.60", "vat": "0.00"},
                              {"percent": "20.00", "gross": "9.60", "net": "8.00", "vat": "1.60"}]
    assert invoice["total"] == Decimal("13.20")
    auth.login_customer()
    page = client.get(f"/orders/{order_id}").get_data(as_text=True)
    assert f"Invoice HARTLEY-{year}-00001" in page
    page = client.get(f"/invoices/{invoice['invoice_id']}").get_data(as_text=True)
    assert "VAT number GB999" in page and "£1.60" in page and "£13.20" in page and "20%" in page
    mail = db.row("SELECT subject, body_text FROM email_outbox WHERE dedupe_key = %s", (f"order-status:{order_id}:completed",))
    assert mail["subject"] == f"Your invoice for order #{order_id} from Hartley Farm"
    assert f"/invoices/{invoice['invoice_id']}" in mail["body_text"]


def pdf_objects(pdf):
    """A PDF's text with its compressed object streams inflated, to read page dictionaries in."""
    inflated = [pdf]
    for stream in re.findall(rb"stream\r?\n(.*?)\r?\nendstream", pdf, re.DOTALL):
        try:
            inflated.append(zlib.decompress(stream))
        except zlib.error:
            continue
    return b"\n".join(inflated)


def test_the_invoice_pdf_is_a4(client, auth, db, world):
    complete(client, auth, db, world.order)
    invoice_id = db.value("SELECT invoice_id FROM invoice")
    auth.login_customer()
    response = client.get(f"/invoices/{invoice_id}.pdf")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    pdf = response.get_data()
    assert pdf.startswith(b"%PDF-")
    boxes = re.findall(rb"/MediaBox\s*\[\s*0\s+0\s+([\d.]+)\s+([\d.]+)\s*\]", pdf_objects(pdf))
    assert boxes and all((round(float(w)), round(float(h))) == (595, 842) for w, h in boxes), "A4 is 595 × 842 pt"


def test_an_issued_invoice_never_changes_and_a_refund_makes_a_credit_note(client, auth, db, world):
    complete(client, auth, db, world.order)
    [invoice] = invoice_rows(db)
    with pytest.raises(Exception, match="never changes"):
        db.execute("UPDATE invoice SET total = 0 WHERE invoice_id = %s", (invoice["invoice_id"],))
    with pytest.raises(Exception, match="never deleted"):
        db.execute("DELETE FROM invoice WHERE invoice_id = %s", (invoice["invoice_id"],))
    db.execute("UPDATE product SET name = 'Renamed', price = 9.99 WHERE product_id = %s", (world.product,))
    auth.login_producer()
    response = client.post(f"/dashboard/orders/{world.order}/refunds/{world.product}",
                           data={"quantity": "1", "reason": "One bag was spoilt"})
    assert response.status_code == 302
    first, credit = invoice_rows(db)
    assert first == invoice, "the invoice is as issued"
    assert credit["kind"] == "credit_note" and credit["seq"] == 2 and credit["total"] == Decimal("-1.80")
    content = json.loads(credit["content"])
    assert content["credits"]["number"] == invoice["number"]
    assert content["lines"] == [{"product_id": world.product, "description": "Potatoes", "quantity": "1 × kg now",
                                 "vat_percent": "0.00", "amount": "-1.80"}]
    # The customer paid nothing yet (on collection): the order now owes £1.80 and the refund is no credit.
    assert db.value("SELECT goods_total FROM orders WHERE order_id = %s", (world.order,)) == Decimal("1.80")
    assert client.get(f"/invoices/{invoice['invoice_id']}").get_data(as_text=True).count("Potatoes") >= 1
    with db.unchanged():
        response = client.post(f"/dashboard/orders/{world.order}/refunds/{world.product}",
                               data={"quantity": "1", "reason": "again"})
        assert response.status_code == 409


def test_a_refund_of_a_credit_paid_order_after_its_invoice_goes_back_to_credit(app, client, auth, db, world):
    db.execute("UPDATE fulfilment_option SET payment_method = 'credit' WHERE option_id = %s",
               (world.collection[world.producer],))
    top_up(app, world.customer, "20.00")
    db.add_to_cart(world.customer, world.product, 3)
    auth.login_customer()
    assert checkout(client, world).status_code == 302
    order_id = newest_order(db, world)
    auth.logout()
    complete(client, auth, db, order_id)
    auth.login_producer()
    assert client.post(f"/dashboard/orders/{order_id}/refunds/{world.product}",
                       data={"quantity": "0", "reason": "Returned"}).status_code == 302
    assert balances(db, world.customer, world.producer)[0] == Decimal("20.00")
    assert [row["total"] for row in invoice_rows(db)] == [Decimal("5.40"), Decimal("-5.40")]


def test_a_refund_of_a_weighed_line_keeps_the_weight_of_what_is_kept(client, auth, db, world):
    bird = db.add_product(world.producer, "Chicken", "9.00", quantity=8, unit="bird", sold_by="weighed",
                          estimated_weight="1.8")
    order_id = db.add_order(world.customer, [(bird, 2, "9.00")], status="ready")
    db.execute("UPDATE order_item SET weight = 3.71, line_total = 33.39 WHERE order_id = %s", (order_id,))
    complete(client, auth, db, order_id)
    auth.login_producer()
    assert client.post(f"/dashboard/orders/{order_id}/refunds/{bird}",
                       data={"quantity": "1", "reason": "One was off"}).status_code == 302
    line = db.row("SELECT quantity, weight, line_total FROM order_item WHERE order_id = %s", (order_id,))
    assert (line["quantity"], line["weight"], line["line_total"]) == (Decimal("1.000"), Decimal("1.855"), Decimal("16.70"))
    assert [row["total"] for row in invoice_rows(db)] == [Decimal("33.39"), Decimal("-16.69")]
    with db.unchanged():
        response = client.post(f"/dashboard/orders/{order_id}/refunds/{bird}", data={"quantity": "0.5", "reason": "x"})
        assert response.status_code == 409 and "decimals at most" in response.get_data(as_text=True)


def test_a_refund_before_completion_is_refused(client, auth, db, world):
    auth.login_producer()
    with db.unchanged():
        response = client.post(f"/dashboard/orders/{world.order}/refunds/{world.product}",
                               data={"quantity": "1", "reason": "x"})
        assert response.status_code == 409 and "record a shortage instead" in response.get_data(as_text=True)


def test_fifty_concurrent_completions_number_invoices_without_gaps_or_duplicates(app, db, world):
    order_ids = [db.add_order(world.customer, [(world.product, 1, "1.80")], status="ready") for _ in range(50)]
    barrier, moved = threading.Barrier(len(order_ids)), []

    def finish(order_id):
        with app.app_context():
            barrier.wait()
            moved.append(orders.change_order_status("producer", world.producer, order_id, "completed")[1])

    threads = [threading.Thread(target=finish, args=(order_id,)) for order_id in order_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert moved == [True] * 50
    seqs = sorted(row["seq"] for row in db.rows("SELECT seq FROM invoice WHERE producer_id = %s", (world.producer,)))
    assert seqs == list(range(1, 51))
    assert db.value("SELECT COUNT(DISTINCT number) FROM invoice") == 50
    assert db.value("SELECT COUNT(DISTINCT order_id) FROM invoice") == 50
    assert db.value("SELECT last_number FROM invoice_sequence WHERE producer_id = %s", (world.producer,)) == 50


def test_each_producer_numbers_its_own_invoices(client, auth, db, world):
    complete(client, auth, db, world.order)
    db.execute("UPDATE orders SET status = 'ready' WHERE order_id = %s", (world.other_order,))
    auth.login_producer("dairy@example.com")
    assert client.post("/dashboard/update-order-status", data={"order_id": world.other_order, "status": "completed"}
                       ).status_code == 302
    year = db.value("SELECT YEAR(CURDATE())")
    assert [row["number"] for row in invoice_rows(db)] == [f"HARTLEY-{year}-00001", f"ROSEHILL-{year}-00001"]


@pytest.mark.parametrize("who, status", [("customer", 200), ("other customer", 404), ("producer", 200),
                                         ("other producer", 404), ("operator", 200), ("anonymous", 302)])
def test_an_invoice_is_seen_only_by_its_parties_and_the_operator(client, auth, db, world, operator, who, status):
    complete(client, auth, db, world.order)
    invoice_id = db.value("SELECT invoice_id FROM invoice")
    {"anonymous": lambda: None, "customer": auth.login_customer, "producer": auth.login_producer,
     "other customer": lambda: auth.login_customer("tom@example.com"),
     "other producer": lambda: auth.login_producer("dairy@example.com"), "operator": auth.login_operator}[who]()
    for path in (f"/invoices/{invoice_id}", f"/invoices/{invoice_id}.pdf"):
        assert client.get(path).status_code == status, path
    if status == 200:
        assert client.get("/invoices/999999").status_code == 404


# --- The accounts -------------------------------------------------------------------

def test_the_ledger_and_vat_summary_download_by_period(client, auth, db, world, operator):
    db.execute("UPDATE product SET vat_rate = 'reduced' WHERE product_id = %s", (world.product,))
    db.execute("UPDATE order_item SET vat_percent = 5 WHERE order_id = %s", (world.order,))
    complete(client, auth, db, world.order)
    auth.login_operator()
    month = db.value("SELECT DATE_FORMAT(CURDATE(), '%%Y-%%m')")
    rows = statement_csv(client, f"/admin/accounts/ledger.csv?period={month}")
    assert rows[0] == ["entry", "when (UTC)", "kind", "order", "reference", "note", "account", "owner", "amount"]
    assert sum(Decimal(row[-1]) for row in rows[1:]) == 0, "every entry's legs sum to zero"
    assert {row[3] for row in rows[1:]} >= {str(world.order), str(world.other_order)}
    vat = statement_csv(client, f"/admin/accounts/vat.csv?period={month}")
    assert vat == [["producer", "VAT rate %", "gross", "net", "VAT"], ["Hartley Farm", "5.00", "3.60", "3.43", "0.17"]]
    page = client.get(f"/admin/accounts?period={month}").get_data(as_text=True)
    assert "The ledger adds up" in page and "£0.17" in page
    assert statement_csv(client, "/admin/accounts/vat.csv?period=2020-01") == [
        ["producer", "VAT rate %", "gross", "net", "VAT"]]


# --- Who may use which ------------------------------------------------------------------

MONEY_ROUTES = {
    "operator": [("get", "/admin/statements"), ("get", "/admin/producers/{producer}/statement"),
                 ("get", "/admin/producers/{producer}/statement.csv"), ("post", "/admin/producers/{producer}/payouts"),
                 ("get", "/admin/bank"), ("post", "/admin/bank"), ("post", "/admin/bank/lines/1"),
                 ("get", "/admin/accounts"), ("get", "/admin/accounts/ledger.csv"), ("get", "/admin/accounts/vat.csv")],
    "producer": [("get", "/dashboard/statement"), ("get", "/dashboard/statement.csv"),
                 ("post", "/dashboard/orders/{order}/refunds/{product}")],
    "customer": [("get", "/account/balance")],
}
CASES = [(owner, method, path, role) for owner, routes in MONEY_ROUTES.items() for method, path in routes
         for role in [None, "customer", "producer", "operator"] if role != owner]


@pytest.mark.parametrize("owner, method, path, role", CASES, ids=[f"{r or 'anonymous'} {m} {p}" for _, m, p, r in CASES])
def test_money_routes_send_everyone_else_to_log_in(client, auth, db, world, operator, owner, method, path, role):
    if role:
        getattr(auth, f"login_{role}")()
    with db.unchanged():
        response = getattr(client, method)(path.format(producer=world.producer, order=world.order,
                                                       product=world.product), data={"quantity": "1", "reason": "x"})
        assert response.status_code == 302 and response.headers["Location"].startswith(f"/login/{owner}")


@pytest.mark.parametrize("method, path", [route for routes in MONEY_ROUTES.values() for route in routes])
def test_money_routes_work_for_their_role(client, auth, db, world, operator, method, path):
    owner = next(role for role, routes in MONEY_ROUTES.items() if (method, path) in routes)
    getattr(auth, f"login_{owner}")()
    response = getattr(client, method)(path.format(producer=world.producer, order=world.order, product=world.product))
    assert response.status_code in (200, 302, 400, 409)
    assert "Traceback" not in response.get_data(as_text=True)


def test_a_producer_s_statement_shows_only_their_own_orders(client, auth, db, world):
    auth.login_producer("dairy@example.com")
    page = client.get("/dashboard/statement").get_data(as_text=True)
    assert f"#{world.other_order}" in page and f"#{world.order}<" not in page
    rows = statement_csv(client, "/dashboard/statement.csv")
    assert [row[0] for row in rows[1:-1]] == [str(world.other_order)]


def test_the_operator_s_statement_of_no_such_producer_is_404(client, auth, db, world, operator):
    auth.login_operator()
    with db.unchanged():
        assert client.get("/admin/producers/999999/statement").status_code == 404
        assert client.get("/admin/producers/999999/statement.csv").status_code == 404
        assert client.post("/admin/producers/999999/payouts", data={"direction": "payout", "amount": "1",
                                                                     "reference": "X"}).status_code == 404


def test_a_customer_s_balance_page_gives_their_credit_reference(client, auth, db, world):
    auth.login_customer()
    page = client.get("/account/balance").get_data(as_text=True)
    assert ledger.credit_reference(world.customer) in page and "sort code 04-00-04" in page
    assert PASSWORD not in page
