"""The schema, migrations and demo data, on real databases of their own."""
import os
from decimal import Decimal

import bcrypt
import MySQLdb
import pytest

from conftest import connect, make_database
from db import apply_migrations, create_schema, migration_files, mysql, run_sql_file, seed_database

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def build_from_migrations():
    """Version 1, then every later migration through the app's own migrate step."""
    cur = mysql.connection.cursor()
    first = migration_files()[0]
    run_sql_file(cur, os.path.join(ROOT, "migrations", first))
    cur.execute("INSERT INTO schema_migrations (filename) VALUES (%s)", (first,))
    cur.close()
    apply_migrations()


def describe(name):
    """Tables, columns, indexes and constraints of database name, in comparable form."""
    conn = connect(name)
    cur = conn.cursor()

    def rows(sql):
        cur.execute(sql, (name,))
        return sorted(tuple(row.values()) for row in cur.fetchall())

    shape = {
        "tables": rows("SELECT TABLE_NAME, ENGINE, TABLE_COLLATION FROM information_schema.TABLES"
                       " WHERE TABLE_SCHEMA = %s"),
        "columns": rows("SELECT TABLE_NAME, COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, COLUMN_DEFAULT, EXTRA,"
                        " CHARACTER_SET_NAME, COLLATION_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s"),
        "indexes": rows("SELECT TABLE_NAME, INDEX_NAME, NON_UNIQUE, SEQ_IN_INDEX, COLUMN_NAME, SUB_PART, INDEX_TYPE"
                        " FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = %s"),
        "constraints": rows("SELECT TABLE_NAME, CONSTRAINT_NAME, CONSTRAINT_TYPE"
                            " FROM information_schema.TABLE_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = %s"),
        "foreign_keys": rows("SELECT k.TABLE_NAME, k.CONSTRAINT_NAME, k.COLUMN_NAME, k.REFERENCED_TABLE_NAME,"
                             " k.REFERENCED_COLUMN_NAME, r.UPDATE_RULE, r.DELETE_RULE"
                             " FROM information_schema.KEY_COLUMN_USAGE k"
                             " JOIN information_schema.REFERENTIAL_CONSTRAINTS r"
                             " ON r.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA AND r.CONSTRAINT_NAME = k.CONSTRAINT_NAME"
                             " WHERE k.CONSTRAINT_SCHEMA = %s"),
        "checks": rows("SELECT TABLE_NAME, CONSTRAINT_NAME, CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS"
                       " WHERE CONSTRAINT_SCHEMA = %s"),
        "triggers": rows("SELECT TRIGGER_NAME, EVENT_MANIPULATION, EVENT_OBJECT_TABLE, ACTION_TIMING, ACTION_STATEMENT"
                         " FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = %s"),
        "applied": [],
    }
    cur.execute(f"SELECT filename FROM `{name}`.schema_migrations ORDER BY filename")
    shape["applied"] = [row["filename"] for row in cur.fetchall()]
    conn.close()
    return shape


def test_migrations_in_order_give_the_same_schema_as_schema_sql(scratch_databases):
    from_schema, from_migrations = scratch_databases(), scratch_databases()
    make_database(from_schema, create_schema)
    make_database(from_migrations, build_from_migrations)
    expected, actual = describe(from_schema), describe(from_migrations)
    for part in expected:
        assert actual[part] == expected[part], f"{part} differ"
    assert expected["applied"] == migration_files()
    assert {t[0] for t in expected["tables"]} >= {"customer", "producer", "product", "stock", "orders",
                                                   "order_item"}


def test_migrate_keeps_existing_rows(scratch_databases):
    name = scratch_databases()

    def build_v1_with_data_then_migrate():
        cur = mysql.connection.cursor()
        run_sql_file(cur, os.path.join(ROOT, "migrations", migration_files()[0]))
        cur.execute("INSERT INTO schema_migrations (filename) VALUES (%s)", (migration_files()[0],))
        cur.execute("INSERT INTO producer (business_name, email, password_hash) VALUES ('Old Farm', 'o@x.org', 'h')")
        cur.close()
        apply_migrations()
        assert apply_migrations() == [], "a second run applies nothing"

    make_database(name, build_v1_with_data_then_migrate)
    conn = connect(name)
    cur = conn.cursor()
    cur.execute("SELECT business_name FROM producer")
    assert cur.fetchall() == ({"business_name": "Old Farm"},)
    conn.close()


def test_every_table_is_innodb_utf8mb4(test_database):
    shape = describe(test_database)
    for table, engine, collation in shape["tables"]:
        assert engine == "InnoDB", table
        assert collation.startswith("utf8mb4_"), table


def test_every_table_has_a_primary_key_as_galera_needs(test_database):
    shape = describe(test_database)
    keyed = {table for table, name, kind in shape["constraints"] if kind == "PRIMARY KEY"}
    assert {table for table, *_ in shape["tables"]} - keyed == set()


def test_joined_and_filtered_columns_are_indexed(test_database):
    indexed = {(table, column) for table, _, _, seq, column, *_ in describe(test_database)["indexes"] if seq == 1}
    for needed in [("product", "producer_id"), ("product", "category"), ("product", "is_listed"),
                   ("stock", "product_id"), ("orders", "customer_id"), ("orders", "status"),
                   ("order_item", "order_id"), ("order_item", "product_id"),
                   ("customer", "email"), ("producer", "email")]:
        assert needed in indexed, needed


@pytest.mark.parametrize("sql", [
    "UPDATE stock SET quantity_available = -1",
    "UPDATE product SET price = -0.01",
])
def test_check_constraints_refuse_negative_stock_and_price(db, world, sql):
    with pytest.raises(MySQLdb.Error):
        db.execute(sql)
    assert db.value("SELECT MIN(quantity_available) FROM stock") >= 0
    assert db.value("SELECT MIN(price) FROM product") >= 0


def test_money_columns_are_decimal(test_database):
    columns = {(t, c): ctype for t, c, ctype, *_ in describe(test_database)["columns"]}
    assert columns[("product", "price")] == "decimal(8,2)"
    assert columns[("order_item", "unit_price")] == "decimal(8,2)"


def test_accents_and_emoji_round_trip(client, db):
    client.application.config["PRODUCER_APPROVAL"] = False  # a small co-op: producers sell from signup
    business = "Crème & Brûlée Ça Va 🐝🍯"
    response = client.post("/signup/producer", data={"business": business, "email": "cafe@example.com",
                                                     "password": "password123", "confirm": "password123"})
    assert response.status_code == 302
    assert db.value("SELECT business_name FROM producer") == business
    producer_id = db.value("SELECT producer_id FROM producer")
    db.add_product(producer_id, "Miel d’acacia 🌼")
    page = client.get("/products").get_data(as_text=True)
    assert "Miel d’acacia 🌼" in page and "Crème &amp; Brûlée Ça Va 🐝🍯" in page


def test_seed_loads_demo_data_once_with_bcrypt_hashes(scratch_databases):
    name = scratch_databases()

    def build_and_seed_twice():
        create_schema()
        seed_database()
        seed_database()

    make_database(name, build_and_seed_twice)
    conn = connect(name)
    cur = conn.cursor()

    def value(sql, args=()):
        cur.execute(sql, args)
        return next(iter(cur.fetchone().values()))

    assert value("SELECT COUNT(*) FROM producer") >= 3
    assert 25 <= value("SELECT COUNT(*) FROM product") <= 40
    assert value("SELECT COUNT(*) FROM stock") == value("SELECT COUNT(*) FROM product")
    assert value("SELECT COUNT(DISTINCT category) FROM product") >= 6
    assert value("SELECT COUNT(*) FROM stock WHERE quantity_available = 0") >= 1
    assert value("SELECT COUNT(*) FROM stock WHERE quantity_available BETWEEN 1 AND reorder_threshold") >= 1
    assert value("SELECT COUNT(DISTINCT status) FROM orders") >= 4
    for table, email in [("producer", "hartley@noeari.com"), ("customer", "jane@example.com")]:
        cur.execute(f"SELECT password_hash FROM {table} WHERE email = %s", (email,))
        stored = cur.fetchone()["password_hash"]
        assert stored.startswith("$2b$12$")
        assert bcrypt.checkpw(b"password123", stored.encode())
    cur.execute("SELECT password_hash FROM customer UNION ALL SELECT password_hash FROM producer")
    assert all(row["password_hash"].startswith("$2b$") for row in cur.fetchall())
    assert value("SELECT business_name FROM producer WHERE email = 'hartley@noeari.com'") == "Hartley Farm"
    conn.close()


def test_seed_adds_nothing_to_a_database_with_data(app, db):
    db.add_customer("someone@example.com")
    with app.app_context():
        seed_database()
    assert db.value("SELECT COUNT(*) FROM customer") == 1
    assert db.value("SELECT COUNT(*) FROM product") == 0


def test_init_db_never_touches_an_existing_database(app, db, world):
    with db.unchanged():
        result = app.test_cli_runner().invoke(args=["init-db", "--seed"])
        assert "already has tables" in result.output


def test_migrate_reports_up_to_date(app, db):
    result = app.test_cli_runner().invoke(args=["migrate"])
    assert result.exit_code == 0
    assert "up to date" in result.output


def test_checkout_migration_splits_old_mixed_orders_by_producer_and_loses_no_line(scratch_databases):
    name = scratch_databases()
    first, checkout = migration_files()[0], "0002_checkout.sql"

    def build_v1_with_a_mixed_order_then_migrate():
        cur = mysql.connection.cursor()
        run_sql_file(cur, os.path.join(ROOT, "migrations", first))
        cur.execute("INSERT INTO schema_migrations (filename) VALUES (%s)", (first,))
        cur.execute("INSERT INTO producer (producer_id, business_name, email, password_hash) VALUES"
                    " (1, 'Farm', 'f@x.org', 'h'), (2, 'Dairy', 'd@x.org', 'h')")
        cur.execute("INSERT INTO customer (customer_id, first_name, email, password_hash) VALUES (1, 'Jo', 'j@x.org', 'h')")
        cur.execute("INSERT INTO product (product_id, producer_id, name, description, category, price, unit) VALUES"
                    " (1, 1, 'Leeks', '', 'Vegetables', 2.00, 'bunch'), (2, 2, 'Milk', '', 'Dairy & Eggs', 1.40, 'l'),"
                    " (3, 1, 'Kale', '', 'Vegetables', 1.10, 'bag')")
        cur.execute("INSERT INTO orders (order_id, customer_id, status, order_type, placed_at) VALUES"
                    " (1, 1, 'confirmed', 'collection', '2026-01-02 03:04:05'), (2, 1, 'pending', 'delivery', NOW())")
        cur.execute("INSERT INTO order_item (order_id, product_id, quantity, unit_price) VALUES"
                    " (1, 1, 2, 2.00), (1, 2, 3, 1.40), (1, 3, 1, 1.10), (2, 2, 1, 1.40)")
        cur.close()
        assert apply_migrations()[0] == checkout

    make_database(name, build_v1_with_a_mixed_order_then_migrate)
    conn = connect(name)
    cur = conn.cursor()
    cur.execute("SELECT o.order_id, o.producer_id, o.customer_id, o.status, o.order_type, o.placed_at,"
                " GROUP_CONCAT(oi.product_id ORDER BY oi.product_id) AS products"
                " FROM orders o JOIN order_item oi ON oi.order_id = o.order_id GROUP BY o.order_id ORDER BY o.order_id")
    orders = cur.fetchall()
    cur.execute("SELECT COUNT(*) AS n, SUM(quantity * unit_price) AS total FROM order_item")
    items = cur.fetchone()
    conn.close()
    assert [(o["order_id"], o["producer_id"], o["products"]) for o in orders] == [
        (1, 1, "1,3"), (2, 2, "2"), (3, 2, "2")]
    split = orders[2]
    assert (split["customer_id"], split["status"], split["order_type"], str(split["placed_at"])) == (
        1, "confirmed", "collection", "2026-01-02 03:04:05")
    assert items["n"] == 4 and items["total"] == Decimal("10.70")


def test_migrate_moves_photo_files_into_the_database_and_their_urls_keep_working(app, client, scratch_databases,
                                                                                  tmp_path):
    name = scratch_databases()
    uploads = tmp_path / "old-uploads"
    uploads.mkdir()
    files = {"old.jpg": b"the photo", "old-thumb.jpg": b"the thumbnail", "logo.jpg": b"the logo",
             "orphan.jpg": b"named by nothing"}
    for file_name, data in files.items():
        (uploads / file_name).write_bytes(data)
    app.config["UPLOAD_FOLDER"] = str(uploads)

    def build_before_photos_then_migrate():
        cur = mysql.connection.cursor()
        for migration in migration_files():
            if migration.startswith("0015"):
                break
            run_sql_file(cur, os.path.join(ROOT, "migrations", migration))
            cur.execute("INSERT INTO schema_migrations (filename) VALUES (%s)", (migration,))
        cur.execute("INSERT INTO producer (business_name, email, password_hash, status, image_url)"
                    " VALUES ('Old Farm', 'o@x.org', 'h', 'approved', '/uploads/logo.jpg')")
        cur.execute("INSERT INTO product (producer_id, name, description, category, price, unit, image_url, thumbnail_url)"
                    " VALUES (LAST_INSERT_ID(), 'Eggs', '', 'Dairy & Eggs', 3, 'box', '/uploads/old.jpg',"
                    " '/uploads/old-thumb.jpg')")
        cur.close()
        assert "0015_photo.sql" in apply_migrations()
        assert apply_migrations() == [], "a second run moves nothing again"

    make_database(name, build_before_photos_then_migrate)
    cur = connect(name).cursor()
    cur.execute("SELECT name, content_type, byte_size, data FROM photo ORDER BY name")
    stored = {row["name"]: row for row in cur.fetchall()}
    assert set(stored) == {"old.jpg", "old-thumb.jpg", "logo.jpg"}
    assert all(row["data"] == files[key] and row["byte_size"] == len(files[key])
               and row["content_type"] == "image/jpeg" for key, row in stored.items())
    app.config["MYSQL_DB"] = name
    (uploads / "old.jpg").unlink()  # served from the database from now on
    served = client.get("/uploads/old.jpg")
    assert served.status_code == 200 and served.get_data() == b"the photo"
