"""The database plumbing in db.py: one transaction idiom with retries, and the one-stock-row rule."""
import threading

import MySQLdb
import pytest

import db as database
from conftest import connect, migrated_from


def test_a_unit_of_work_commits_all_or_nothing(app, db, world):
    @database.transactional
    def move_stock():
        database.execute("UPDATE stock SET quantity_available = 0 WHERE product_id = %s", (world.product,))
        database.execute("UPDATE stock SET quantity_available = -1 WHERE product_id = %s", (world.low_product,))

    with app.app_context(), pytest.raises(MySQLdb.Error):
        move_stock()
    assert db.stock(world.product) == 50, "the first statement was rolled back with the failing second"


def test_a_unit_of_work_that_deadlocks_is_run_again(app, db, world, test_database):
    """A real deadlock: another connection, holding more locks, takes Y then wants X while the unit holds X and
    wants Y. InnoDB rolls back the smaller transaction (the unit's), and the unit runs again and succeeds."""
    x, y = world.customer, world.other_customer
    bulk = [db.add_customer(f"filler{n}@example.com") for n in range(30)]
    unit_has_x, other_has_y = threading.Event(), threading.Event()
    attempts = []

    def other_transaction():
        conn = connect(test_database)
        cur = conn.cursor()
        unit_has_x.wait(10)
        cur.execute("START TRANSACTION")
        for customer_id in [y] + bulk:  # one row at a time, so no scan reaches X
            cur.execute("UPDATE customer SET reminders = 0 WHERE customer_id = %s", (customer_id,))
        other_has_y.set()
        cur.execute("UPDATE customer SET reminders = 0 WHERE customer_id = %s", (x,))
        conn.commit()
        conn.close()

    @database.transactional
    def unit():
        attempts.append(1)
        database.execute("UPDATE customer SET session_version = session_version + 1 WHERE customer_id = %s", (x,))
        unit_has_x.set()
        other_has_y.wait(10)
        database.execute("UPDATE customer SET session_version = session_version + 1 WHERE customer_id = %s", (y,))

    other = threading.Thread(target=other_transaction)
    other.start()
    with app.app_context():
        unit()
    other.join(10)
    assert len(attempts) == 2, "the deadlocked first attempt was rolled back and run again"
    versions = db.rows("SELECT session_version FROM customer WHERE customer_id IN (%s, %s) ORDER BY customer_id", (x, y))
    assert [row["session_version"] for row in versions] == [2, 2], "the retried unit's changes each happened once"
    assert db.value("SELECT reminders FROM customer WHERE customer_id = %s", (x,)) == 0


def test_a_unit_that_keeps_losing_gives_up_with_busy_and_changes_nothing(app, db, world, test_database):
    holder = connect(test_database)
    cur = holder.cursor()
    cur.execute("START TRANSACTION")
    cur.execute("SELECT * FROM stock WHERE product_id = %s FOR UPDATE", (world.product,))
    attempts = []

    @database.transactional
    def unit():
        attempts.append(1)
        database.execute("UPDATE stock SET quantity_available = 1 WHERE product_id = %s", (world.low_product,))
        database.query("SET SESSION innodb_lock_wait_timeout = 1")
        database.execute("UPDATE stock SET quantity_available = 1 WHERE product_id = %s", (world.product,))

    with app.app_context(), pytest.raises(database.Busy):
        unit()
    holder.rollback()
    holder.close()
    assert len(attempts) == app.config["MYSQL_TRANSACTION_ATTEMPTS"]
    assert (db.stock(world.product), db.stock(world.low_product)) == (50, 2)


def test_every_product_has_exactly_one_stock_row(db, world):
    product = db.add_product(world.producer, "Chard")
    assert db.value("SELECT COUNT(*) FROM stock WHERE product_id = %s", (product,)) == 1
    assert db.value("SELECT producer_id FROM stock WHERE product_id = %s", (product,)) == world.producer
    with pytest.raises(MySQLdb.IntegrityError):
        db.execute("INSERT INTO stock (product_id) VALUES (%s)", (product,))
    with pytest.raises(MySQLdb.OperationalError, match="goes only with its product"):
        db.execute("DELETE FROM stock WHERE product_id = %s", (product,))
    assert db.value("SELECT COUNT(*) FROM stock WHERE product_id = %s", (product,)) == 1
    db.execute("DELETE FROM product WHERE product_id = %s", (product,))
    assert db.value("SELECT COUNT(*) FROM stock WHERE product_id = %s", (product,)) == 0
    assert db.value("SELECT COUNT(*) FROM product p LEFT JOIN stock s ON s.product_id = p.product_id"
                    " WHERE s.product_id IS NULL") == 0


def test_the_stock_row_migration_gives_a_product_without_one_an_empty_stock_row(app, scratch_databases):
    conn = migrated_from(
        scratch_databases(), "0008_one_stock_row.sql",
        "INSERT INTO producer (producer_id, business_name, email, password_hash) VALUES (1, 'F', 'f@x', 'h')",
        "INSERT INTO product (product_id, producer_id, name, description, category, price, unit)"
        " VALUES (1, 1, 'Leeks', '', 'Vegetables', 2.00, 'bunch'), (2, 1, 'Kale', '', 'Vegetables', 1, 'bag')",
        "INSERT INTO stock (product_id, quantity_available, reorder_threshold) VALUES (1, 9, 2)")
    cur = conn.cursor()
    cur.execute("SELECT product_id, quantity_available, reorder_threshold FROM stock ORDER BY product_id")
    assert [tuple(row.values()) for row in cur.fetchall()] == [(1, 9, 2), (2, 0, 0)]
    conn.close()


def test_the_restock_index_migration_gives_every_stock_row_its_products_producer(app, scratch_databases):
    conn = migrated_from(
        scratch_databases(), "0038_producer_restock_index.sql",
        "INSERT INTO producer (producer_id, business_name, email, password_hash) VALUES (1, 'F', 'f@x', 'h'),"
        " (2, 'G', 'g@x', 'h')",
        "INSERT INTO product (product_id, producer_id, name, description, category, price, unit)"
        " VALUES (1, 1, 'Leeks', '', 'Vegetables', 2.00, 'bunch'), (2, 2, 'Kale', '', 'Vegetables', 1, 'bag')",
        "UPDATE stock SET quantity_available = 3, reorder_threshold = 5 WHERE product_id = 2")
    cur = conn.cursor()
    cur.execute("SELECT product_id, producer_id, quantity_available, is_low FROM stock ORDER BY product_id")
    assert [tuple(row.values()) for row in cur.fetchall()] == [(1, 1, 0, 1), (2, 2, 3, 1)]
    cur.execute("UPDATE stock SET quantity_available = 9 WHERE product_id = 2")
    cur.execute("SELECT is_low FROM stock WHERE product_id = 2")
    assert cur.fetchone()["is_low"] == 0
    conn.close()
