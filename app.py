"""noeari: a marketplace where local producers sell to the people around them."""
import csv
import datetime
import functools
import hashlib
import io
import itertools
import os
import re
import secrets
import smtplib
import sys
import threading
import warnings
from contextlib import contextmanager
from decimal import Decimal
from email.message import EmailMessage
from urllib.parse import urlsplit

import bcrypt
import click
from flask import (Flask, Response, abort, current_app, flash, g, make_response, redirect,
                   render_template, request, send_from_directory, session,
                   url_for)
from flask_wtf import FlaskForm
from flask_wtf.csrf import CSRFError, CSRFProtect
from flask_wtf.file import FileField
from PIL import Image, ImageOps
from itsdangerous import BadData, URLSafeTimedSerializer
from markupsafe import Markup
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix
from wtforms import (BooleanField, DecimalField, EmailField, HiddenField,
                     IntegerField, PasswordField, RadioField, SelectField,
                     StringField, TextAreaField)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import (DataRequired, Email, EqualTo, InputRequired,
                                Length, NumberRange, ValidationError)

try:
    import MySQLdb
    import MySQLdb.cursors
    from flask_mysqldb import MySQL as FlaskMySQL
except ImportError as exc:
    sys.exit(
        f"noeari cannot start: the MySQL driver is missing ({exc}).\n"
        "Install it with `make run` or `.venv/bin/pip install -r requirements.txt`; "
        "mysqlclient builds against the apt packages libmariadb-dev and pkg-config."
    )


# --- Configuration -----------------------------------------------------------

app = Flask(__name__)
app.config.from_mapping(
    MYSQL_HOST="localhost",
    MYSQL_PORT=3306,
    MYSQL_USER=None,
    MYSQL_PASSWORD=None,
    MYSQL_DB="noeari",
    MYSQL_UNIX_SOCKET=None,
    MYSQL_CHARSET="utf8mb4",
    MYSQL_CURSORCLASS="DictCursor",
    MYSQL_AUTOCOMMIT=True,
    MYSQL_CONNECT_TIMEOUT=5,
    MYSQL_REUSE_CONNECTIONS=True,
    BCRYPT_ROUNDS=12,
    CURRENCY_SYMBOL="£",
    SESSION_COOKIE_HTTPONLY=True,
    SESSION_COOKIE_SAMESITE="Lax",
    SESSION_COOKIE_SECURE=False,
    UPLOAD_FOLDER=os.path.join(app.root_path, "var", "uploads"),
    MAX_CONTENT_LENGTH=6 * 1024 * 1024,
    PERMANENT_SESSION_LIFETIME=datetime.timedelta(days=14),
    LOGIN_EMAIL_LIMIT=5,
    LOGIN_IP_LIMIT=50,
    LOGIN_WINDOW_SECONDS=15 * 60,
    TRUSTED_PROXIES=0,
    BASE_URL="http://127.0.0.1:5000",
    RESET_TOKEN_MAX_AGE=3600,
    SMTP_HOST=None,
    SMTP_PORT=25,
    SMTP_USER=None,
    SMTP_PASSWORD=None,
    SMTP_STARTTLS=False,
    MAIL_FROM="noeari <no-reply@noeari.local>",
    OUTBOX_FOLDER=os.path.join(app.root_path, "var", "outbox"),
)


def env_flag(value):
    """Read '1', 'true', 'yes' or 'on' as True."""
    return value.strip().lower() in {"1", "true", "yes", "on"}


ENV_SETTINGS = {
    "MYSQL_HOST": str,
    "MYSQL_PORT": int,
    "MYSQL_USER": str,
    "MYSQL_PASSWORD": str,
    "MYSQL_DB": str,
    "MYSQL_UNIX_SOCKET": str,
    "MYSQL_CONNECT_TIMEOUT": int,
    "MYSQL_REUSE_CONNECTIONS": env_flag,
    "BCRYPT_ROUNDS": int,
    "CURRENCY_SYMBOL": str,
    "SESSION_COOKIE_SECURE": env_flag,
    "UPLOAD_FOLDER": str,
    "PERMANENT_SESSION_LIFETIME": int,
    "LOGIN_EMAIL_LIMIT": int,
    "LOGIN_IP_LIMIT": int,
    "LOGIN_WINDOW_SECONDS": int,
    "TRUSTED_PROXIES": int,
    "BASE_URL": str,
    "SMTP_HOST": str,
    "SMTP_PORT": int,
    "SMTP_USER": str,
    "SMTP_PASSWORD": str,
    "SMTP_STARTTLS": env_flag,
    "MAIL_FROM": str,
    "OUTBOX_FOLDER": str,
}
for _name, _convert in ENV_SETTINGS.items():
    if os.environ.get(_name):
        app.config[_name] = _convert(os.environ[_name])


def load_secret_key():
    """SECRET_KEY from the environment, else a random key made once in instance/secret_key."""
    if os.environ.get("SECRET_KEY"):
        return os.environ["SECRET_KEY"]
    path = os.path.join(app.instance_path, "secret_key")
    if not os.path.exists(path):
        os.makedirs(app.instance_path, exist_ok=True)
        draft = f"{path}.{os.getpid()}"
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
        try:
            # link() never replaces an existing file, so workers starting together agree on one key.
            os.link(draft, path)
        except FileExistsError:
            pass
        finally:
            os.unlink(draft)
    with open(path, encoding="ascii") as f:
        return f.read().strip()


app.config["SECRET_KEY"] = load_secret_key()
if app.config["TRUSTED_PROXIES"]:
    # Only behind proxies the deployer names: otherwise X-Forwarded-For would let anyone pick their IP.
    hops = app.config["TRUSTED_PROXIES"]
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)

class MySQL(FlaskMySQL):
    """flask-mysqldb with its settings, keeping one connection per thread from request to request.

    A new connection costs more than a small page's queries. A kept connection is pinged before
    each request (and replaced if the server went away) and rolled back after it, so no
    transaction carries over. MYSQL_REUSE_CONNECTIONS=0 gives a new connection per request.
    """

    SETTINGS = ("MYSQL_HOST", "MYSQL_PORT", "MYSQL_USER", "MYSQL_PASSWORD", "MYSQL_DB", "MYSQL_UNIX_SOCKET",
                "MYSQL_CONNECT_TIMEOUT", "MYSQL_READ_DEFAULT_FILE", "MYSQL_USE_UNICODE", "MYSQL_CHARSET",
                "MYSQL_SQL_MODE", "MYSQL_CURSORCLASS", "MYSQL_AUTOCOMMIT", "MYSQL_CUSTOM_OPTIONS")

    def __init__(self, app=None):
        self.kept = threading.local()
        super().__init__(app)

    @property
    def connection(self):
        if not current_app.config["MYSQL_REUSE_CONNECTIONS"]:
            return super().connection
        if "mysql_db" not in g:
            g.mysql_db = self.kept_connection()
        return g.mysql_db

    def kept_connection(self):
        settings = tuple(current_app.config[key] for key in self.SETTINGS)
        conn = getattr(self.kept, "conn", None)
        if conn is not None and self.kept.settings == settings:
            try:
                conn.ping()
                return conn
            except MySQLdb.Error:
                self.discard(conn)
        conn = self.connect
        self.kept.conn, self.kept.settings = conn, settings
        return conn

    def discard(self, conn):
        self.kept.conn = None
        try:
            conn.close()
        except MySQLdb.Error:
            pass

    def teardown(self, exception):
        conn = g.pop("mysql_db", None)
        if conn is None:
            return
        if conn is getattr(self.kept, "conn", None):
            try:
                conn.rollback()
            except MySQLdb.Error:
                self.discard(conn)
        else:
            conn.close()


mysql = MySQL(app)
csrf = CSRFProtect(app)

CATEGORIES = ["Vegetables", "Fruit", "Dairy & Eggs", "Meat & Fish", "Bakery", "Pantry",
              "Drinks", "Flowers & Plants"]
PRODUCTS_PER_PAGE = 24
ORDERS_PER_PAGE = 20
DASHBOARD_PAGE_SIZE = 25
MAX_IMAGE_BYTES = 5 * 1024 * 1024
MAX_IMAGE_PIXELS = 40_000_000
IMAGE_SIDE, THUMBNAIL_SIDE = 1600, 480
IMAGE_FORMATS = {"JPEG", "PNG", "WEBP"}
MAX_STOCK = 1_000_000
CHECKOUT_ATTEMPTS = 3
RETRYABLE_ERRORS = {1205, 1213}  # lock wait timeout, deadlock

ORDER_STATUSES = ["pending", "confirmed", "ready", "out_for_delivery", "completed", "cancelled"]
# The one transition table: from each status, the statuses it may move to and who may move it.
ORDER_TRANSITIONS = {
    "pending": {"confirmed": {"producer"}, "cancelled": {"producer", "customer"}},
    "confirmed": {"ready": {"producer"}, "out_for_delivery": {"producer"}, "cancelled": {"producer"}},
    "ready": {"completed": {"producer"}},
    "out_for_delivery": {"completed": {"producer"}},
}
FULFILMENT_STEP = {"collection": "ready", "delivery": "out_for_delivery"}
STATUS_LABELS = {
    "pending": "Pending",
    "confirmed": "Confirmed",
    "ready": "Ready to collect",
    "out_for_delivery": "Out for delivery",
    "cancelled": "Cancelled",
}
COMPLETED_LABELS = {"collection": "Collected", "delivery": "Delivered"}


def status_label(status, order_type):
    """The words customers and producers see for a status."""
    if status == "completed":
        return COMPLETED_LABELS[order_type]
    return STATUS_LABELS[status]


def next_statuses(status, order_type, role):
    """The statuses role may move an order to next, from the one transition table."""
    other_steps = {step for kind, step in FULFILMENT_STEP.items() if kind != order_type}
    return [to for to, roles in ORDER_TRANSITIONS.get(status, {}).items() if role in roles and to not in other_steps]


# --- Database helpers -------------------------------------------------------

MIGRATIONS_DIR = os.path.join(app.root_path, "migrations")

CONNECTION_REFUSED = {2002, 2003}
DB_PROBLEMS = {
    2005: "Unknown server host: fix MYSQL_HOST.",
    1044: "Access denied to the database: grant MYSQL_USER rights on MYSQL_DB, or fix MYSQL_USER.",
    1045: "Access denied: fix MYSQL_USER and MYSQL_PASSWORD.",
    1698: "Access denied: fix MYSQL_USER and MYSQL_PASSWORD.",
    1049: "Unknown database: fix MYSQL_DB, or create the database (`make run` creates it locally).",
}


def query(sql, args=(), one=False):
    """Run one statement; return all rows as dicts, or with one=True the first row or None."""
    cur = mysql.connection.cursor()
    try:
        cur.execute(sql, args)
        rows = cur.fetchall()
    finally:
        cur.close()
    if one:
        return rows[0] if rows else None
    return rows


@contextmanager
def transaction():
    """Yield a cursor inside START TRANSACTION; commit at the end, roll back on any error."""
    db = mysql.connection
    cur = db.cursor()
    cur.execute("START TRANSACTION")
    try:
        yield cur
        db.commit()
    except BaseException:
        db.rollback()
        raise
    finally:
        cur.close()


def connection_refused_advice():
    """Name the setting that points at the server, socket or host and port, whichever is in use."""
    config = app.config
    if config["MYSQL_UNIX_SOCKET"] and config["MYSQL_HOST"] in ("localhost", "", None):
        where, settings = config["MYSQL_UNIX_SOCKET"], "MYSQL_UNIX_SOCKET"
    else:
        where, settings = f"{config['MYSQL_HOST']}:{config['MYSQL_PORT']}", "MYSQL_HOST:MYSQL_PORT"
    return (f"Connection refused: no MariaDB/MySQL server answers at {where}. "
            f"Start it (`make run` starts a local one) or fix {settings}.")


def check_database():
    """Connect once; return None when that works, else a sentence naming the setting to fix."""
    try:
        mysql.connect.close()
    except MySQLdb.OperationalError as exc:
        code = exc.args[0]
        if code in CONNECTION_REFUSED:
            advice = connection_refused_advice()
        else:
            advice = DB_PROBLEMS.get(code, "Cannot reach the database: check the MYSQL_* settings.")
        return f"{advice} (MySQL error {code}: {exc.args[1]})"
    return None


def run_sql_file(cur, path):
    """Execute each statement of an SQL file; statements end with ';' at the end of a line."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    for statement in re.split(r";\s*$", text, flags=re.MULTILINE):
        code = "\n".join(line for line in statement.splitlines() if not line.lstrip().startswith("--"))
        if code.strip():
            cur.execute(statement)


def migration_files():
    """Names of the files in migrations/, in the order they apply."""
    return sorted(name for name in os.listdir(MIGRATIONS_DIR) if re.fullmatch(r"\d{4}_\w+\.sql", name))


def database_tables():
    """The tables in the configured database."""
    rows = query("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()")
    return {row["TABLE_NAME"] for row in rows}


def create_schema():
    """Build schema.sql in an empty database and record every migration as applied."""
    cur = mysql.connection.cursor()
    try:
        run_sql_file(cur, os.path.join(app.root_path, "schema.sql"))
        cur.executemany("INSERT INTO schema_migrations (filename) VALUES (%s)",
                        [(name,) for name in migration_files()])
    finally:
        cur.close()


def apply_migrations():
    """Apply, in order, each migration the database has not recorded; return their names."""
    applied = {row["filename"] for row in query("SELECT filename FROM schema_migrations")}
    pending = [name for name in migration_files() if name not in applied]
    cur = mysql.connection.cursor()
    try:
        for name in pending:
            run_sql_file(cur, os.path.join(MIGRATIONS_DIR, name))
            cur.execute("INSERT INTO schema_migrations (filename) VALUES (%s)", (name,))
    finally:
        cur.close()
    return pending


def seed_database():
    """Load seed.sql; it only adds rows to an empty database."""
    cur = mysql.connection.cursor()
    try:
        run_sql_file(cur, os.path.join(app.root_path, "seed.sql"))
    finally:
        cur.close()


def page_count(total, per_page):
    """How many pages total rows fill; an empty list still has its one (empty) page."""
    return max(1, -(-total // per_page))


def page_number():
    """The 1-based ?page= number; anything else reads as page 1."""
    page = request.args.get("page", "1")
    return int(page) if page.isdigit() and 0 < int(page) < 100_000 else 1


# --- Auth helpers -----------------------------------------------------------

ACCOUNT_SQL = {
    "customer": {
        "by_id": "SELECT customer_id AS id, first_name AS name, email, session_version,"
                 " (SELECT COALESCE(SUM(quantity), 0) FROM cart_item ci WHERE ci.customer_id = c.customer_id)"
                 " AS cart_count FROM customer c WHERE customer_id = %s",
        "credentials": "SELECT customer_id AS id, email, password_hash, session_version FROM customer"
                       " WHERE customer_id = %s",
        "by_email": "SELECT customer_id AS id, email, password_hash, session_version FROM customer WHERE email = %s",
        "insert": "INSERT INTO customer (first_name, email, password_hash) VALUES (%s, %s, %s)",
        "set_name": "UPDATE customer SET first_name = %s WHERE customer_id = %s",
        "set_email": "UPDATE customer SET email = %s WHERE customer_id = %s",
        "set_password": "UPDATE customer SET password_hash = %s, session_version = session_version + 1"
                        " WHERE customer_id = %s AND password_hash = %s",
        "end_sessions": "UPDATE customer SET session_version = session_version + 1 WHERE customer_id = %s",
    },
    "producer": {
        "by_id": "SELECT producer_id AS id, business_name AS name, email, session_version,"
                 " (SELECT COUNT(*) FROM product p JOIN stock s ON s.product_id = p.product_id"
                 "  WHERE p.producer_id = pr.producer_id AND p.is_archived = 0"
                 "  AND s.quantity_available <= s.reorder_threshold) AS restock_count"
                 " FROM producer pr WHERE producer_id = %s",
        "credentials": "SELECT producer_id AS id, email, password_hash, session_version FROM producer"
                       " WHERE producer_id = %s",
        "by_email": "SELECT producer_id AS id, email, password_hash, session_version FROM producer WHERE email = %s",
        "insert": "INSERT INTO producer (business_name, email, password_hash) VALUES (%s, %s, %s)",
        "set_name": "UPDATE producer SET business_name = %s WHERE producer_id = %s",
        "set_email": "UPDATE producer SET email = %s WHERE producer_id = %s",
        "set_password": "UPDATE producer SET password_hash = %s, session_version = session_version + 1"
                        " WHERE producer_id = %s AND password_hash = %s",
        "end_sessions": "UPDATE producer SET session_version = session_version + 1 WHERE producer_id = %s",
    },
}
LOGIN_ENDPOINTS = {"customer": "customer_login", "producer": "producer_login"}


def hash_password(password):
    """A bcrypt hash of the password at the configured cost."""
    return bcrypt.hashpw(password.encode("utf-8"), bcrypt.gensalt(app.config["BCRYPT_ROUNDS"])).decode()


@functools.lru_cache(maxsize=4)
def decoy_hash(rounds):
    """A hash to check unknown emails against, so they take as long as known ones."""
    return bcrypt.hashpw(secrets.token_bytes(16), bcrypt.gensalt(rounds))


def password_matches(password, password_hash):
    """True when password matches password_hash; a missing hash still costs one bcrypt check."""
    candidate = password.encode("utf-8")
    if len(candidate) > 72 or b"\0" in candidate:
        candidate = b"-"
    stored = password_hash.encode() if password_hash else decoy_hash(app.config["BCRYPT_ROUNDS"])
    return bcrypt.checkpw(candidate, stored) and password_hash is not None


def start_session(role, account):
    """Log in as one role, ending any earlier session; the cookie carries the account's session version."""
    session.clear()
    session.permanent = True
    session["role"] = role
    session["account_id"] = account["id"]
    session["session_version"] = account["session_version"]


def client_ip():
    """The client's address; behind a proxy, ProxyFix (TRUSTED_PROXIES) makes this the real one."""
    return (request.remote_addr or "unknown")[:45]


def login_throttled(email):
    """True when this email or this client has failed too often within the throttle window."""
    window = app.config["LOGIN_WINDOW_SECONDS"]
    counts = query(
        "SELECT (SELECT COUNT(*) FROM login_failure WHERE email = %s"
        "        AND failed_at > UTC_TIMESTAMP(6) - INTERVAL %s SECOND) AS email_failures,"
        "       (SELECT COUNT(*) FROM login_failure WHERE ip = %s"
        "        AND failed_at > UTC_TIMESTAMP(6) - INTERVAL %s SECOND) AS ip_failures",
        (email, window, client_ip(), window), one=True)
    return (counts["email_failures"] >= app.config["LOGIN_EMAIL_LIMIT"]
            or counts["ip_failures"] >= app.config["LOGIN_IP_LIMIT"])


def record_login_failure(email):
    with transaction() as cur:
        cur.execute("INSERT INTO login_failure (email, ip, failed_at) VALUES (%s, %s, UTC_TIMESTAMP(6))",
                    (email, client_ip()))
        cur.execute("DELETE FROM login_failure WHERE failed_at < UTC_TIMESTAMP(6) - INTERVAL 1 DAY LIMIT 100")


def is_local_url(target):
    """True for a path on this site, such as /cart?x=1; False for anything that leaves it."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return False
    if any(ord(ch) < 32 for ch in target):
        return False
    parts = urlsplit(target)
    return not parts.scheme and not parts.netloc


@app.before_request
def load_logged_in_user():
    """Put the logged-in account, if any, on g.user."""
    g.user = None
    if request.endpoint == "static" or session.get("role") not in ACCOUNT_SQL:
        return
    account = query(ACCOUNT_SQL[session["role"]]["by_id"], (session.get("account_id"),), one=True)
    if account is None or account["session_version"] != session.get("session_version"):
        session.clear()
        return
    g.user = dict(account, role=session["role"])


def login_required_as(*roles):
    """Make a decorator that sends anyone not logged in as one of roles to the first role's login page."""
    def decorator(view):
        @functools.wraps(view)
        def wrapped(**kwargs):
            if g.user is None or g.user["role"] not in roles:
                if g.user is not None:
                    flash(f"Please log in with a {roles[0]} account to continue.", "error")
                return redirect(url_for(LOGIN_ENDPOINTS[roles[0]], next=return_path()))
            return view(**kwargs)
        return wrapped
    return decorator


def return_path():
    """Where to come back to after logging in: this page, or for a form the page it names in `next`."""
    if request.method == "GET":
        return request.full_path.rstrip("?")
    target = request.form.get("next")
    return target if is_local_url(target) else None


customer_login_required = login_required_as("customer")
producer_login_required = login_required_as("producer")
account_login_required = login_required_as("customer", "producer")


def get_own_product(product_id):
    """The logged-in producer's product (not archived) with its stock, or abort with 404."""
    product = query(
        "SELECT p.product_id, p.name, p.description, p.category, p.price, p.unit, p.image_url,"
        " p.thumbnail_url, p.is_available, s.quantity_available, s.reorder_threshold"
        " FROM product p JOIN stock s ON s.product_id = p.product_id"
        " WHERE p.product_id = %s AND p.producer_id = %s AND p.is_archived = 0",
        (product_id, g.user["id"]), one=True)
    if product is None:
        abort(404)
    return product


ORDER_OWNER_COLUMN = {"customer": "o.customer_id", "producer": "o.producer_id"}


def get_own_order(order_id):
    """One of the logged-in user's orders with both parties' names, or abort with 404."""
    order = query(
        "SELECT o.order_id, o.status, o.order_type, o.delivery_address, o.placed_at,"
        " c.first_name, pr.business_name,"
        " (SELECT SUM(oi.quantity * oi.unit_price) FROM order_item oi WHERE oi.order_id = o.order_id) AS total"
        " FROM orders o JOIN customer c ON c.customer_id = o.customer_id"
        " JOIN producer pr ON pr.producer_id = o.producer_id"
        f" WHERE o.order_id = %s AND {ORDER_OWNER_COLUMN[g.user['role']]} = %s",
        (order_id, g.user["id"]), one=True)
    if order is None:
        abort(404)
    order["lines"] = query(
        "SELECT oi.product_id, p.name, p.unit, oi.quantity, oi.unit_price,"
        " oi.quantity * oi.unit_price AS line_total"
        " FROM order_item oi JOIN product p ON p.product_id = oi.product_id"
        " WHERE oi.order_id = %s ORDER BY p.name", (order_id,))
    order["history"] = query(
        "SELECT from_status, to_status, changed_by_role, changed_at FROM order_status_history"
        " WHERE order_id = %s ORDER BY history_id", (order_id,))
    return order


def own_orders_condition(status=None):
    """The WHERE clause (on alias o) and its arguments for the logged-in user's orders."""
    where, args = f"{ORDER_OWNER_COLUMN[g.user['role']]} = %s", [g.user["id"]]
    if status:
        where, args = where + " AND o.status = %s", args + [status]
    return where, args


def order_page(page, per_page=ORDERS_PER_PAGE, status=None):
    """One page of the logged-in user's orders, newest first, with totals; and the page count."""
    where, args = own_orders_condition(status)
    if g.user["role"] == "producer":
        total = query("SELECT CAST(COALESCE(SUM(n), 0) AS SIGNED) AS n FROM order_count o WHERE " + where,
                      args, one=True)["n"]
    else:
        total = query(f"SELECT COUNT(*) AS n FROM orders o WHERE {where}", args, one=True)["n"]
    return newest_orders(page, per_page, status), page_count(total, per_page)


def newest_orders(page, per_page, status=None):
    """The logged-in user's orders, newest first, page by page, each with its item count and total."""
    where, args = own_orders_condition(status)
    return query(
        "SELECT o.order_id, o.status, o.order_type, o.placed_at, c.first_name, pr.business_name,"
        " SUM(oi.quantity) AS item_count, SUM(oi.quantity * oi.unit_price) AS total"
        f" FROM (SELECT o.* FROM orders o WHERE {where}"
        "       ORDER BY o.placed_at DESC, o.order_id DESC LIMIT %s OFFSET %s) o"
        " JOIN customer c ON c.customer_id = o.customer_id"
        " JOIN producer pr ON pr.producer_id = o.producer_id"
        " JOIN order_item oi ON oi.order_id = o.order_id"
        " GROUP BY o.order_id ORDER BY o.placed_at DESC, o.order_id DESC",
        args + [per_page, (page - 1) * per_page])


def change_order_status(order_id, new_status):
    """Move one of the user's orders to new_status if the transition table lets them.

    Returns the order as it was and whether it moved. The row lock makes the check and the
    change one step, so two racing cancels restock only once.
    """
    with transaction() as cur:
        cur.execute(
            "SELECT o.order_id, o.status, o.order_type FROM orders o"
            f" WHERE o.order_id = %s AND {ORDER_OWNER_COLUMN[g.user['role']]} = %s FOR UPDATE",
            (order_id, g.user["id"]))
        order = cur.fetchone()
        if order is None:
            abort(404)
        if new_status not in next_statuses(order["status"], order["order_type"], g.user["role"]):
            return order, False
        cur.execute("UPDATE orders SET status = %s WHERE order_id = %s", (new_status, order_id))
        if new_status == "cancelled":
            cur.execute(
                "UPDATE stock s JOIN order_item oi ON oi.product_id = s.product_id"
                " SET s.quantity_available = s.quantity_available + oi.quantity WHERE oi.order_id = %s",
                (order_id,))
        cur.execute(
            "INSERT INTO order_status_history (order_id, from_status, to_status, changed_by_role, changed_by_id)"
            " VALUES (%s, %s, %s, %s, %s)",
            (order_id, order["status"], new_status, g.user["role"], g.user["id"]))
    return order, True


# --- Forms ------------------------------------------------------------------

def normalise_email(value):
    """Emails compare without case or surrounding spaces."""
    return value.strip().lower() if isinstance(value, str) else value


def strip_text(value):
    return value.strip() if isinstance(value, str) else value


def bcrypt_compatible(form, field):
    """bcrypt reads at most 72 bytes and no NUL bytes; refuse what it would silently cut."""
    if "\0" in field.data:
        raise ValidationError("Password cannot contain a NUL character.")
    if len(field.data.encode("utf-8")) > 72:
        raise ValidationError("Password is too long: at most 72 bytes (fewer characters with accents or emoji).")


def email_field():
    return EmailField("Email", filters=[normalise_email],
                      validators=[DataRequired(), Length(max=254), Email("Enter a valid email address.")])


def current_password_field(label="Password"):
    return PasswordField(label, validators=[DataRequired(), Length(max=1000)])


class NewPasswordForm(FlaskForm):
    password = PasswordField("Password", validators=[
        DataRequired(), Length(min=8, message="Password must be at least 8 characters."), bcrypt_compatible])
    confirm = PasswordField("Confirm password", validators=[
        DataRequired(), EqualTo("password", message="The two passwords do not match.")])


class CustomerNameForm(FlaskForm):
    name = StringField("First name", filters=[strip_text], validators=[DataRequired(), Length(max=100)])


class ProducerNameForm(FlaskForm):
    business = StringField("Business name", filters=[strip_text], validators=[DataRequired(), Length(max=150)])


class CustomerSignupForm(CustomerNameForm, NewPasswordForm):
    email = email_field()


class ProducerSignupForm(ProducerNameForm, NewPasswordForm):
    email = email_field()


class LoginForm(FlaskForm):
    email = EmailField("Email", filters=[normalise_email], validators=[DataRequired(), Length(max=254)])
    password = current_password_field()


class ForgotPasswordForm(FlaskForm):
    email = email_field()


class PasswordChangeForm(NewPasswordForm):
    current_password = current_password_field("Current password")
    password = PasswordField("New password", validators=NewPasswordForm.password.kwargs["validators"])


class EmailChangeForm(FlaskForm):
    email = email_field()
    current_password = current_password_field("Current password")


class ConfirmForm(FlaskForm):
    """A button with nothing but its CSRF token: log out, cancel an order."""


def quantity_field(label, minimum, default=None):
    """A whole-number quantity; with a default, a form that leaves it out gets the default."""
    validators = [NumberRange(min=minimum, max=MAX_STOCK,
                              message=f"Quantity must be a whole number from {minimum} to {MAX_STOCK:,}.")]
    if default is None:
        validators.insert(0, InputRequired("Enter a quantity."))
    return IntegerField(label, default=default, validators=validators)


class StockForm(FlaskForm):
    product_id = IntegerField("Product", validators=[InputRequired(), NumberRange(min=1)])
    quantity = quantity_field("Quantity available", 0)


class CartAddForm(FlaskForm):
    product_id = IntegerField("Product", validators=[InputRequired(), NumberRange(min=1)])
    quantity = quantity_field("Quantity", 1, default=1)


class CartUpdateForm(FlaskForm):
    product_id = IntegerField("Product", validators=[InputRequired(), NumberRange(min=1)])
    quantity = quantity_field("Quantity", 0)


class CheckoutForm(FlaskForm):
    order_type = RadioField("How would you like to get your order?", validators=[InputRequired(
        "Choose delivery or collection.")], choices=[SelectChoice("collection", "Collect from the producer"),
                                                     SelectChoice("delivery", "Delivery to my address")])
    delivery_address = TextAreaField("Delivery address", filters=[strip_text],
                                     validators=[Length(max=500, message="Keep the address under 500 characters.")])

    def validate_delivery_address(self, field):
        if self.order_type.data == "delivery" and not field.data:
            raise ValidationError("Enter a delivery address, or choose collection.")


def price_amount(form, field):
    """A price from 0.01 to 9999.99 with at most two decimals."""
    value = field.data
    if value is None:
        return
    if not value.is_finite() or not Decimal("0.01") <= value <= Decimal("9999.99"):
        raise ValidationError("Enter a price from 0.01 to 9999.99.")
    if value.as_tuple().exponent < -2:
        raise ValidationError("Use at most two decimals, like 3.50.")


def jpeg_bytes(image, side):
    """The image scaled to fit side×side and saved as a JPEG with no metadata."""
    copy = image.copy()
    copy.thumbnail((side, side))
    if copy.mode in ("RGBA", "LA", "P", "PA"):
        rgba = copy.convert("RGBA")
        copy = Image.new("RGB", rgba.size, "white")
        copy.paste(rgba, mask=rgba.getchannel("A"))
    else:
        copy = copy.convert("RGB")
    out = io.BytesIO()
    copy.save(out, "JPEG", quality=85, optimize=True)
    return out.getvalue()


def reencode_image(data):
    """Check that data is a real JPEG, PNG or WebP of sane size; return (image, thumbnail) as JPEG bytes."""
    if len(data) > MAX_IMAGE_BYTES:
        raise ValidationError("Images must be 5 MB or smaller.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as probe:
                if probe.format not in IMAGE_FORMATS:
                    raise ValidationError("Upload a JPEG, PNG or WebP image.")
                if probe.width * probe.height > MAX_IMAGE_PIXELS:
                    raise ValidationError("That image has too many pixels; keep it under 40 megapixels.")
                probe.verify()
            with Image.open(io.BytesIO(data)) as image:
                image.load()
                upright = ImageOps.exif_transpose(image)
                return jpeg_bytes(upright, IMAGE_SIDE), jpeg_bytes(upright, THUMBNAIL_SIDE)
    except ValidationError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ValidationError("That image has too many pixels; keep it under 40 megapixels.") from None
    except Exception as exc:  # Pillow signals a broken or hostile file with many exception types.
        app.logger.info("Refused an image upload: %r", exc)
        raise ValidationError("That file is not a readable JPEG, PNG or WebP image.") from None


class ProductForm(FlaskForm):
    name = StringField("Name", filters=[strip_text], validators=[DataRequired(), Length(max=255)])
    description = TextAreaField("Description", filters=[strip_text], validators=[Length(max=5000)])
    category = SelectField("Category", choices=CATEGORIES)
    price = DecimalField("Price", places=2, validators=[InputRequired("Enter a price."), price_amount])
    unit = StringField("Unit", filters=[strip_text], description="For example kg, dozen, jar, loaf.",
                       validators=[DataRequired(), Length(max=30)])
    quantity_available = quantity_field("Stock on hand", 0)
    quantity_seen = HiddenField()
    reorder_threshold = quantity_field("Reorder when stock falls to", 0)
    is_available = BooleanField("Show in the catalogue")
    image = FileField("Photo", description="JPEG, PNG or WebP, up to 5 MB.")

    def validate_image(self, field):
        self.encoded_image = None
        if field.data and getattr(field.data, "filename", ""):
            self.encoded_image = reencode_image(field.data.read(MAX_IMAGE_BYTES + 1))


class OrderStatusForm(FlaskForm):
    order_id = IntegerField("Order", validators=[InputRequired(), NumberRange(min=1)])
    status = SelectField("New status", choices=ORDER_STATUSES)


SIGNUP_FORMS = {"customer": CustomerSignupForm, "producer": ProducerSignupForm}
NAME_FORMS = {"customer": CustomerNameForm, "producer": ProducerNameForm}
NAME_FIELDS = {"customer": "name", "producer": "business"}
HOME_ENDPOINTS = {"customer": "products", "producer": "dashboard"}


def save_image(encoded):
    """Store an encoded (image, thumbnail) pair under random names; return their URLs."""
    folder = app.config["UPLOAD_FOLDER"]
    os.makedirs(folder, exist_ok=True)
    token = secrets.token_urlsafe(16)
    urls = []
    for suffix, data in zip(("", "-thumb"), encoded):
        name = f"{token}{suffix}.jpg"
        with open(os.path.join(folder, name), "xb") as f:
            f.write(data)
        urls.append(url_for("uploaded_file", name=name))
    return urls


def remove_images(*urls):
    """Delete uploaded files by URL, once nothing refers to them."""
    prefix = url_for("uploaded_file", name="")
    for url in urls:
        if url and url.startswith(prefix):
            try:
                os.remove(os.path.join(app.config["UPLOAD_FOLDER"], os.path.basename(url)))
            except FileNotFoundError:
                pass


def flash_form_errors(form):
    """Flash each field error with its label, for forms that have no page of their own."""
    for field in form:
        for error in field.errors:
            flash(f"{field.label.text}: {error}", "error")


@app.template_filter("money")
def money_filter(amount):
    return f"{app.config['CURRENCY_SYMBOL']}{Decimal(amount):,.2f}"


@app.template_filter("stock_badge")
def stock_badge_filter(product):
    """In stock / low / out of stock, as a badge: on every catalogue card, so a filter, not a macro."""
    available = product["quantity_available"]
    if available <= 0:
        return Markup('<span class="badge badge-out">Out of stock</span>')
    if available <= product["reorder_threshold"]:
        return Markup('<span class="badge badge-low">Low stock · {} left</span>').format(available)
    return Markup('<span class="badge badge-in">In stock</span>')


@app.context_processor
def inject_globals():
    return {"next_statuses": next_statuses, "status_label": status_label}


# --- Public routes ----------------------------------------------------------

CATALOGUE_SELECT = (
    "SELECT p.product_id, p.name, p.description, p.category, p.price, p.unit, p.image_url, p.thumbnail_url,"
    " pr.producer_id, pr.business_name,"
    " COALESCE(s.quantity_available, 0) AS quantity_available, COALESCE(s.reorder_threshold, 0) AS reorder_threshold"
    " FROM product p JOIN producer pr ON pr.producer_id = p.producer_id"
    " LEFT JOIN stock s ON s.product_id = p.product_id"
)


@app.route("/")
def index():
    """Home page: what the marketplace is, with the newest products."""
    newest = query(CATALOGUE_SELECT + " WHERE p.is_available = 1 ORDER BY p.created_at DESC, p.product_id DESC LIMIT 8")
    return render_template("shop/index.html", products=newest, categories=CATEGORIES)


CATALOGUE_SORTS = {
    "name": ("Name", "p.name, p.product_id"),
    "price_asc": ("Price, low to high", "p.price, p.product_id"),
    "price_desc": ("Price, high to low", "p.price DESC, p.product_id DESC"),
    "newest": ("Newest", "p.created_at DESC, p.product_id DESC"),
}
# InnoDB's default full-text stopwords, and its shortest indexed word: terms it would never match.
FULLTEXT_STOPWORDS = frozenset(
    "a about an are as at be by com de en for from how i in is it la of on or that the this to was what when "
    "where who will with und www".split())
FULLTEXT_MIN_LENGTH = 3
MAX_SEARCH_TERMS = 8
SEARCH_LIMIT = 200  # matches considered per search: beyond this, a word is too common to be useful alone


def search_terms(text):
    """A FULLTEXT boolean query in which every usable word of text must match, as a prefix."""
    words = re.findall(r"[^\W_]+", text.lower())
    usable = [w for w in words if len(w) >= FULLTEXT_MIN_LENGTH and w not in FULLTEXT_STOPWORDS]
    return " ".join(f"+{word}*" for word in usable[:MAX_SEARCH_TERMS])


def catalogue_filters():
    """The catalogue's ?q=&category=&producer=&sort= choices; anything unusable falls back to its default."""
    producer = request.args.get("producer", "")
    category = request.args.get("category", "")
    sort = request.args.get("sort", "name")
    return {
        "q": request.args.get("q", "")[:200].strip(),
        "category": category if category in CATEGORIES else "",
        "producer": int(producer) if producer.isdecimal() and 0 < int(producer) < 2**32 else None,
        "sort": sort if sort in CATALOGUE_SORTS else "name",
    }


def catalogue_page(filters, page):
    """One page of available products matching filters, the total, and the page actually shown.

    Page ids come from an index-only inner query, so a deep page skips index entries, not rows.
    A search considers at most SEARCH_LIMIT matches of each kind and runs once, with the total
    taken from FOUND_ROWS(), so a common word costs the same in any size of catalogue.
    """
    where, args = ["p.is_available = 1"], []
    if filters["category"]:
        where.append("p.category = %s")
        args.append(filters["category"])
    if filters["producer"]:
        where.append("p.producer_id = %s")
        args.append(filters["producer"])
    conditions = " AND ".join(where)
    order = CATALOGUE_SORTS[filters["sort"]][1]
    page_rows = (CATALOGUE_SELECT + " JOIN ({}) page_ids ON page_ids.product_id = p.product_id ORDER BY " + order)
    if filters["q"]:
        terms = search_terms(filters["q"])
        if not terms:
            return [], 0, 1
        ids = query(
            "SELECT SQL_CALC_FOUND_ROWS p.product_id FROM"
            " ((SELECT product_id FROM product WHERE MATCH (name, description) AGAINST (%s IN BOOLEAN MODE) LIMIT %s)"
            "  UNION (SELECT p2.product_id FROM producer pr2 JOIN product p2 ON p2.producer_id = pr2.producer_id"
            "   WHERE MATCH (pr2.business_name) AGAINST (%s IN BOOLEAN MODE) LIMIT %s)) hits"
            f" JOIN product p ON p.product_id = hits.product_id WHERE {conditions}"
            f" ORDER BY {order} LIMIT %s OFFSET %s",
            [terms, SEARCH_LIMIT, terms, SEARCH_LIMIT] + args + [PRODUCTS_PER_PAGE, (page - 1) * PRODUCTS_PER_PAGE])
        total = query("SELECT FOUND_ROWS() AS n", one=True)["n"]
        if page > 1 and not ids:
            return catalogue_page(filters, 1)
        placeholders = ", ".join(["%s"] * len(ids)) or "NULL"
        rows = query(page_rows.format(f"SELECT product_id FROM product WHERE product_id IN ({placeholders})"),
                     [row["product_id"] for row in ids])
        return rows, total, page
    if filters["producer"]:
        total = query(f"SELECT COUNT(*) AS n FROM product p WHERE {conditions}", args, one=True)["n"]
    elif filters["category"]:
        total = query("SELECT CAST(COALESCE(SUM(available), 0) AS SIGNED) AS n FROM catalogue_count"
                      " WHERE category = %s", (filters["category"],), one=True)["n"]
    else:
        total = query("SELECT CAST(COALESCE(SUM(available), 0) AS SIGNED) AS n FROM catalogue_count",
                      one=True)["n"]
    if page > page_count(total, PRODUCTS_PER_PAGE):
        page = 1
    rows = query(page_rows.format(f"SELECT p.product_id FROM product p WHERE {conditions}"
                                  f" ORDER BY {order} LIMIT %s OFFSET %s"),
                 args + [PRODUCTS_PER_PAGE, (page - 1) * PRODUCTS_PER_PAGE])
    return rows, total, page


def render_catalogue(template, filters, in_path=(), **context):
    """Render a catalogue page; page links keep every filter that is not already in the path."""
    rows, total, page = catalogue_page(filters, page_number())
    link_args = {key: value for key, value in filters.items()
                 if value and key not in in_path and not (key == "sort" and value == "name")}
    return render_template(template, products=rows, total=total, page=page,
                           pages=page_count(total, PRODUCTS_PER_PAGE), filters=filters, link_args=link_args,
                           categories=CATEGORIES, sorts=CATALOGUE_SORTS, search_limit=SEARCH_LIMIT, **context)


@app.route("/products")
def products():
    """The catalogue: search, filter by category or producer, sort, 24 a page."""
    return render_catalogue("shop/products.html", catalogue_filters())


@app.route("/producers")
def producers():
    """Every producer, with how many products each has on sale."""
    page = page_number()
    total = query("SELECT COUNT(*) AS n FROM producer", one=True)["n"]
    if page > page_count(total, DASHBOARD_PAGE_SIZE):
        page = 1
    rows = query(
        "SELECT pr.producer_id, pr.business_name,"
        " (SELECT COUNT(*) FROM product p WHERE p.producer_id = pr.producer_id AND p.is_available = 1)"
        " AS product_count"
        " FROM (SELECT producer_id, business_name FROM producer ORDER BY business_name, producer_id"
        "       LIMIT %s OFFSET %s) pr ORDER BY pr.business_name, pr.producer_id",
        (DASHBOARD_PAGE_SIZE, (page - 1) * DASHBOARD_PAGE_SIZE))
    return render_template("shop/producers.html", producers=rows, page=page,
                           pages=page_count(total, DASHBOARD_PAGE_SIZE))


@app.route("/producers/<int:producer_id>")
def producer_page(producer_id):
    """A producer's public page: their available products, a page at a time."""
    producer = query("SELECT producer_id, business_name, date_joined FROM producer WHERE producer_id = %s",
                     (producer_id,), one=True)
    if producer is None:
        abort(404)
    filters = dict(catalogue_filters(), q="", category="", producer=producer_id)
    return render_catalogue("shop/producer.html", filters, in_path=("producer",), producer=producer)


@app.route("/products/<int:product_id>")
def product_page(product_id):
    """One available product, with an add-to-cart form."""
    product = get_available_product(product_id)
    form = CartAddForm(product_id=product_id, quantity=request.args.get("quantity", 1, type=int))
    return render_template("shop/product.html", product=product, form=form)


@app.route("/uploads/<name>")
def uploaded_file(name):
    """Product photos; their names are random, so they can be cached for good."""
    return send_from_directory(app.config["UPLOAD_FOLDER"], name, max_age=365 * 24 * 3600)


def get_available_product(product_id):
    """An available product with its producer and stock, or abort with 404."""
    product = query(CATALOGUE_SELECT + " WHERE p.product_id = %s AND p.is_available = 1", (product_id,), one=True)
    if product is None:
        abort(404)
    return product


# --- Customer and producer accounts -------------------------------------

def signup(role):
    """Create an account for role and log it in."""
    form = SIGNUP_FORMS[role]()
    if form.validate_on_submit():
        display_name = form[NAME_FIELDS[role]].data
        try:
            with transaction() as cur:
                cur.execute(ACCOUNT_SQL[role]["insert"],
                            (display_name, form.email.data, hash_password(form.password.data)))
                account = {"id": cur.lastrowid, "session_version": 1}
        except MySQLdb.IntegrityError:
            form.email.errors.append("An account with this email already exists. Log in instead.")
        else:
            start_session(role, account)
            flash(f"Welcome to noeari, {display_name}! Your account is ready.", "success")
            return redirect(url_for(HOME_ENDPOINTS[role]))
    status = 400 if form.is_submitted() else 200
    return render_template("auth/signup.html", form=form, role=role), status


def login(role):
    """Log in to a role's account; send the user on to ?next= when it is a local path."""
    form = LoginForm()
    status = 400 if form.is_submitted() else 200
    if form.validate_on_submit():
        # Checked before bcrypt runs, so a flood of guesses costs a query, not a CPU.
        if login_throttled(form.email.data):
            flash("Too many failed attempts. Please wait 15 minutes, then try again "
                  "(or reset your password).", "error")
            response = make_response(render_template("auth/login.html", form=form, role=role), 429)
            response.headers["Retry-After"] = str(app.config["LOGIN_WINDOW_SECONDS"])
            return response
        account = query(ACCOUNT_SQL[role]["by_email"], (form.email.data,), one=True)
        if password_matches(form.password.data, account["password_hash"] if account else None):
            with transaction() as cur:
                cur.execute("DELETE FROM login_failure WHERE email = %s", (form.email.data,))
            start_session(role, account)
            flash("You are logged in.", "success")
            target = request.args.get("next")
            return redirect(target if is_local_url(target) else url_for(HOME_ENDPOINTS[role]))
        record_login_failure(form.email.data)
        flash("Incorrect email or password.", "error")
    return render_template("auth/login.html", form=form, role=role), status


@app.route("/signup/customer", methods=["GET", "POST"])
def customer_signup():
    return signup("customer")


@app.route("/login/customer", methods=["GET", "POST"])
def customer_login():
    return login("customer")


@app.route("/signup/producer", methods=["GET", "POST"])
def producer_signup():
    return signup("producer")


@app.route("/login/producer", methods=["GET", "POST"])
def producer_login():
    return login("producer")


@app.route("/logout", methods=["GET", "POST"])
def logout():
    """GET asks for confirmation; only the CSRF-protected POST logs out."""
    form = ConfirmForm()
    if form.validate_on_submit():
        if g.user:
            # A new session version makes every copy of this session's cookie worthless.
            with transaction() as cur:
                cur.execute(ACCOUNT_SQL[g.user["role"]]["end_sessions"], (g.user["id"],))
        session.clear()
        flash("You have been logged out.", "success")
        return redirect(url_for("index"))
    return render_template("auth/logout.html", form=form)


def reset_serializer():
    return URLSafeTimedSerializer(app.config["SECRET_KEY"], salt="password-reset")


def password_fingerprint(password_hash):
    """A short digest of the password hash: it ties a reset token to the password it replaces."""
    return hashlib.sha256(password_hash.encode()).hexdigest()[:32]


def account_for_reset_token(token):
    """(role, account) for a valid, unexpired, unused reset token; else None."""
    try:
        data = reset_serializer().loads(token, max_age=app.config["RESET_TOKEN_MAX_AGE"])
        role, account_id, fingerprint = data["role"], int(data["id"]), data["fp"]
    except (BadData, KeyError, TypeError, ValueError):
        return None
    if role not in ACCOUNT_SQL:
        return None
    account = query(ACCOUNT_SQL[role]["credentials"], (account_id,), one=True)
    if account is None or not secrets.compare_digest(password_fingerprint(account["password_hash"]), str(fingerprint)):
        return None
    return role, account


def deliver_email(message):
    """Send by SMTP_HOST, or with no SMTP host write the message to OUTBOX_FOLDER as an .eml file."""
    config = app.config
    try:
        if not config["SMTP_HOST"]:
            os.makedirs(config["OUTBOX_FOLDER"], exist_ok=True)
            name = f"{datetime.datetime.now(datetime.timezone.utc):%Y%m%dT%H%M%S}-{secrets.token_hex(4)}.eml"
            with open(os.path.join(config["OUTBOX_FOLDER"], name), "wb") as f:
                f.write(bytes(message))
            app.logger.info("Email to %s written to %s", message["To"], os.path.join(config["OUTBOX_FOLDER"], name))
            return
        with smtplib.SMTP(config["SMTP_HOST"], config["SMTP_PORT"], timeout=15) as smtp:
            if config["SMTP_STARTTLS"]:
                smtp.starttls()
            if config["SMTP_USER"]:
                smtp.login(config["SMTP_USER"], config["SMTP_PASSWORD"] or "")
            smtp.send_message(message)
    except (OSError, smtplib.SMTPException):
        app.logger.exception("Could not send email to %s", message["To"])


def send_password_reset(role, account):
    """Email a one-hour reset link, in the background so the page answers as fast as for unknown emails."""
    token = reset_serializer().dumps({"role": role, "id": account["id"],
                                      "fp": password_fingerprint(account["password_hash"])})
    link = app.config["BASE_URL"].rstrip("/") + url_for("reset_password", token=token)
    message = EmailMessage()
    message["From"] = app.config["MAIL_FROM"]
    message["To"] = account["email"]
    message["Subject"] = "Reset your noeari password"
    message.set_content(
        "Someone asked to reset the password of your noeari account.\n\n"
        f"To choose a new password, open this link within the next hour:\n\n{link}\n\n"
        "If it was not you, ignore this email: your password stays as it is.\n")
    if not app.config["SMTP_HOST"]:
        app.logger.info("Password reset link for %s: %s", account["email"], link)
    threading.Thread(target=deliver_email, args=(message,), daemon=True).start()


@app.route("/password/forgot/<role>", methods=["GET", "POST"])
def forgot_password(role):
    """Ask for a reset link; the answer is the same whether or not the email has an account."""
    if role not in ACCOUNT_SQL:
        abort(404)
    form = ForgotPasswordForm()
    if form.validate_on_submit():
        account = query(ACCOUNT_SQL[role]["by_email"], (form.email.data,), one=True)
        if account:
            send_password_reset(role, account)
        flash("If an account uses that email, we have sent it a link to choose a new password. "
              "The link works for one hour.", "success")
        return redirect(url_for("forgot_password", role=role))
    return render_template("auth/forgot.html", form=form, role=role), 400 if form.is_submitted() else 200


@app.route("/password/reset/<token>", methods=["GET", "POST"])
def reset_password(token):
    """Choose a new password with a link from the reset email."""
    found = account_for_reset_token(token)
    if found is None:
        return render_template("auth/reset_invalid.html"), 400
    role, account = found
    form = NewPasswordForm()
    if form.validate_on_submit():
        with transaction() as cur:
            # Matching the old hash makes the token single-use even when two requests race.
            cur.execute(ACCOUNT_SQL[role]["set_password"],
                        (hash_password(form.password.data), account["id"], account["password_hash"]))
            changed = cur.rowcount == 1
        if not changed:
            return render_template("auth/reset_invalid.html"), 400
        session.clear()
        flash("Your password has been changed, and every session was logged out. Log in with the new one.",
              "success")
        return redirect(url_for(LOGIN_ENDPOINTS[role]))
    return render_template("auth/reset.html", form=form), 400 if form.is_submitted() else 200


ACCOUNT_ACTIONS = ("name", "password", "email")


@app.route("/account", methods=["GET", "POST"])
@account_login_required
def account():
    """Change the display name, the password or the email of the logged-in account."""
    role, account_id = g.user["role"], g.user["id"]
    action = request.form.get("action") if request.method == "POST" else None
    if request.method == "POST" and action not in ACCOUNT_ACTIONS:
        abort(400, "Choose what to change: name, password or email.")
    forms = {
        "name": NAME_FORMS[role](formdata=None, data={"name": g.user["name"], "business": g.user["name"]}),
        "password": PasswordChangeForm(formdata=None),
        "email": EmailChangeForm(formdata=None, data={"email": g.user["email"]}),
    }
    if action:
        forms[action] = {"name": NAME_FORMS[role], "password": PasswordChangeForm, "email": EmailChangeForm}[action]()
        form = forms[action]
        if form.validate():
            message = change_account(role, account_id, action, form)
            if message:
                flash(message, "success")
                return redirect(url_for("account"))
    status = 400 if action else 200
    return render_template("auth/account.html", forms=forms, role=role), status


def change_account(role, account_id, action, form):
    """Apply one account change; return the confirmation, or None with the form's errors set."""
    sql = ACCOUNT_SQL[role]
    if action == "name":
        with transaction() as cur:
            cur.execute(sql["set_name"], (form[NAME_FIELDS[role]].data, account_id))
        return "Your name has been saved."
    credentials = query(sql["credentials"], (account_id,), one=True)
    if not password_matches(form.current_password.data, credentials["password_hash"]):
        form.current_password.errors.append("That is not your current password.")
        return None
    if action == "email":
        try:
            with transaction() as cur:
                cur.execute(sql["set_email"], (form.email.data, account_id))
        except MySQLdb.IntegrityError:
            form.email.errors.append("Another account already uses this email.")
            return None
        return f"Your email is now {form.email.data}."
    with transaction() as cur:
        cur.execute(sql["set_password"], (hash_password(form.password.data), account_id, credentials["password_hash"]))
    # Every other session ends; this one carries on with the new version.
    session["session_version"] = credentials["session_version"] + 1
    return "Your password has been changed. Other devices have been logged out."


# --- Customer routes --------------------------------------------------------

class CheckoutRefused(Exception):
    """Checkout cannot go ahead; args[0] lists what the customer must fix."""


def cart_by_producer(customer_id):
    """The customer's cart lines at today's prices, grouped by producer, with totals."""
    lines = query(
        "SELECT ci.product_id, ci.quantity, ci.price_when_added, p.name, p.unit, p.price, p.is_available,"
        " pr.producer_id, pr.business_name, COALESCE(s.quantity_available, 0) AS quantity_available"
        " FROM cart_item ci JOIN product p ON p.product_id = ci.product_id"
        " JOIN producer pr ON pr.producer_id = p.producer_id"
        " LEFT JOIN stock s ON s.product_id = ci.product_id"
        " WHERE ci.customer_id = %s ORDER BY pr.business_name, pr.producer_id, p.name",
        (customer_id,))
    groups = []
    for (producer_id, business_name), rows in itertools.groupby(
            lines, key=lambda line: (line["producer_id"], line["business_name"])):
        rows = list(rows)
        for line in rows:
            line["line_total"] = line["price"] * line["quantity"]
            line["orderable"] = line["is_available"] and line["quantity"] <= line["quantity_available"]
        total = sum((line["line_total"] for line in rows if line["is_available"]), Decimal("0.00"))
        groups.append({"producer_id": producer_id, "business_name": business_name, "lines": rows, "total": total})
    return groups


def render_cart(form=None, status=200):
    groups = cart_by_producer(g.user["id"])
    grand_total = sum((group["total"] for group in groups), Decimal("0.00"))
    return render_template("shop/cart.html", groups=groups, grand_total=grand_total,
                           form=form or CheckoutForm(order_type="collection")), status


def checkout_problem(line):
    """What stops a cart line from being ordered, in the customer's words."""
    if not line["is_available"]:
        return f"{line['name']} is no longer available; remove it to check out."
    if line["quantity_available"] <= 0:
        return f"{line['name']} is out of stock; remove it to check out."
    return f"Only {line['quantity_available']} of {line['name']} left; you asked for {line['quantity']}."


def place_orders(customer_id, order_type, delivery_address):
    """Turn the cart into one pending order per producer, all in one transaction; return their ids.

    Stock rows are locked in product_id order (the cart's primary key order), then each is
    decremented only while enough is left, so concurrent checkouts can never oversell.
    """
    with transaction() as cur:
        cur.execute(
            "SELECT ci.product_id, ci.quantity, p.name, p.price, p.producer_id, p.is_available,"
            " s.quantity_available"
            " FROM cart_item ci JOIN product p ON p.product_id = ci.product_id"
            " JOIN stock s ON s.product_id = ci.product_id"
            " WHERE ci.customer_id = %s ORDER BY ci.product_id FOR UPDATE",
            (customer_id,))
        lines = cur.fetchall()
        if not lines:
            raise CheckoutRefused(["Your cart is empty."])
        problems = [checkout_problem(line) for line in lines
                    if not line["is_available"] or line["quantity"] > line["quantity_available"]]
        if problems:
            raise CheckoutRefused(problems)
        for line in lines:
            cur.execute("UPDATE stock SET quantity_available = quantity_available - %s"
                        " WHERE product_id = %s AND quantity_available >= %s",
                        (line["quantity"], line["product_id"], line["quantity"]))
            if cur.rowcount != 1:
                raise CheckoutRefused([f"{line['name']} has just sold out."])
        order_ids = []
        by_producer = sorted(lines, key=lambda line: line["producer_id"])
        for producer_id, items in itertools.groupby(by_producer, key=lambda line: line["producer_id"]):
            cur.execute("INSERT INTO orders (customer_id, producer_id, order_type, delivery_address)"
                        " VALUES (%s, %s, %s, %s)", (customer_id, producer_id, order_type, delivery_address))
            order_id = cur.lastrowid
            order_ids.append(order_id)
            cur.executemany("INSERT INTO order_item (order_id, product_id, quantity, unit_price) VALUES (%s, %s, %s, %s)",
                            [(order_id, item["product_id"], item["quantity"], item["price"]) for item in items])
            cur.execute("INSERT INTO order_status_history (order_id, from_status, to_status, changed_by_role,"
                        " changed_by_id) VALUES (%s, NULL, 'pending', 'customer', %s)", (order_id, customer_id))
        cur.execute("DELETE FROM cart_item WHERE customer_id = %s", (customer_id,))
    return order_ids


@app.route("/cart")
@customer_login_required
def cart():
    return render_cart()


@app.route("/cart/add", methods=["POST"])
@customer_login_required
def cart_add():
    """Add some of a product to the cart, never more than is in stock."""
    form = CartAddForm()
    if not form.validate():
        flash_form_errors(form)
        if form.product_id.errors:
            return error_page(400, "That product could not be added to your cart.")
        return render_template("shop/product.html", product=get_available_product(form.product_id.data),
                               form=form), 400
    product = get_available_product(form.product_id.data)
    with transaction() as cur:
        cur.execute("SELECT quantity FROM cart_item WHERE customer_id = %s AND product_id = %s FOR UPDATE",
                    (g.user["id"], product["product_id"]))
        row = cur.fetchone()
        in_cart = row["quantity"] if row else 0
        new_quantity = min(in_cart + form.quantity.data, product["quantity_available"])
        if new_quantity > in_cart:
            cur.execute("INSERT INTO cart_item (customer_id, product_id, quantity, price_when_added)"
                        " VALUES (%s, %s, %s, %s)"
                        " ON DUPLICATE KEY UPDATE quantity = VALUES(quantity), price_when_added = VALUES(price_when_added)",
                        (g.user["id"], product["product_id"], new_quantity, product["price"]))
    added = new_quantity - in_cart
    if added <= 0:
        if product["quantity_available"] <= 0:
            flash(f"Sorry, {product['name']} is out of stock.", "error")
        else:
            flash(f"Only {product['quantity_available']} of {product['name']} are in stock, "
                  f"and your cart already holds them all.", "error")
        return render_template("shop/product.html", product=product, form=form), 409
    if added < form.quantity.data:
        flash(f"Only {product['quantity_available']} of {product['name']} are in stock, so {added} "
              f"could be added; your cart now holds {new_quantity}.", "warning")
    else:
        flash(f"Added {added} × {product['name']} to your cart.", "success")
    return redirect(url_for("cart"))


@app.route("/cart/update", methods=["POST"])
@customer_login_required
def cart_update():
    """Change a cart line's quantity; 0 removes the line."""
    form = CartUpdateForm()
    if not form.validate():
        flash_form_errors(form)
        return render_cart(status=400)
    line = query(
        "SELECT ci.quantity, p.name, p.is_available, COALESCE(s.quantity_available, 0) AS quantity_available"
        " FROM cart_item ci JOIN product p ON p.product_id = ci.product_id"
        " LEFT JOIN stock s ON s.product_id = ci.product_id"
        " WHERE ci.customer_id = %s AND ci.product_id = %s",
        (g.user["id"], form.product_id.data), one=True)
    if line is None:
        abort(404)
    wanted = form.quantity.data
    if wanted > 0 and not line["is_available"]:
        flash(f"{line['name']} is no longer available; you can only remove it.", "error")
        return render_cart(status=409)
    new_quantity = min(wanted, line["quantity_available"])
    with transaction() as cur:
        if new_quantity == 0:
            cur.execute("DELETE FROM cart_item WHERE customer_id = %s AND product_id = %s",
                        (g.user["id"], form.product_id.data))
        else:
            cur.execute("UPDATE cart_item SET quantity = %s WHERE customer_id = %s AND product_id = %s",
                        (new_quantity, g.user["id"], form.product_id.data))
    if wanted == 0:
        flash(f"Removed {line['name']} from your cart.", "success")
    elif new_quantity == 0:
        flash(f"{line['name']} is out of stock, so it was removed from your cart.", "warning")
    elif new_quantity < wanted:
        flash(f"Only {new_quantity} of {line['name']} are in stock; your cart now holds {new_quantity}.", "warning")
    else:
        flash(f"Your cart now holds {new_quantity} × {line['name']}.", "success")
    return redirect(url_for("cart"))


@app.route("/checkout", methods=["POST"])
@customer_login_required
def checkout():
    """Place the cart as one order per producer, for delivery or collection."""
    form = CheckoutForm()
    if not form.validate():
        return render_cart(form, status=400)
    address = form.delivery_address.data if form.order_type.data == "delivery" else None
    for attempt in range(CHECKOUT_ATTEMPTS):
        try:
            order_ids = place_orders(g.user["id"], form.order_type.data, address)
            break
        except CheckoutRefused as refusal:
            for problem in refusal.args[0]:
                flash(problem, "error")
            flash("Nothing was ordered. Change your cart and try again.", "error")
            return render_cart(form, status=409)
        except MySQLdb.OperationalError as exc:
            if exc.args[0] not in RETRYABLE_ERRORS:
                raise
            app.logger.warning("Checkout attempt %d hit %s", attempt + 1, exc)
    else:
        flash("Checkout is very busy right now and nothing was ordered. Please try again.", "error")
        return render_cart(form, status=503)
    numbers = ", ".join(f"#{order_id}" for order_id in order_ids)
    flash(f"Thank you! Your order{'s' if len(order_ids) > 1 else ''} {numbers} "
          f"{'have' if len(order_ids) > 1 else 'has'} been placed.", "success")
    if len(order_ids) == 1:
        return redirect(url_for("customer_order", order_id=order_ids[0]))
    return redirect(url_for("customer_orders"))


@app.route("/orders")
@customer_login_required
def customer_orders():
    """The customer's orders, newest first."""
    page = page_number()
    orders, pages = order_page(page)
    return render_template("shop/orders.html", orders=orders, page=page, pages=pages)


@app.route("/orders/<int:order_id>")
@customer_login_required
def customer_order(order_id):
    return render_template("shop/order.html", order=get_own_order(order_id))


@app.route("/orders/<int:order_id>/cancel", methods=["POST"])
@customer_login_required
def cancel_order(order_id):
    """Cancel one of the customer's orders while it is still pending."""
    order, changed = change_order_status(order_id, "cancelled")
    if not changed:
        flash(f"Order #{order_id} is {status_label(order['status'], order['order_type'])} and can no longer be "
              "cancelled here. Please contact the producer.", "error")
        return render_template("shop/order.html", order=get_own_order(order_id)), 409
    flash(f"Order #{order_id} has been cancelled.", "success")
    return redirect(url_for("customer_order", order_id=order_id))


# --- Producer routes --------------------------------------------------------

def render_dashboard(status=200):
    """The producer's overview: order counts, newest pending orders, restocking, and products."""
    producer_id = g.user["id"]
    page = page_number()
    counts = {row["status"]: row["n"] for row in query(
        "SELECT status, n FROM order_count WHERE producer_id = %s", (producer_id,))}
    pending = newest_orders(1, per_page=5, status="pending")
    restock = query(
        "SELECT p.product_id, p.name, p.unit, s.quantity_available, s.reorder_threshold"
        " FROM product p JOIN stock s ON s.product_id = p.product_id"
        " WHERE p.producer_id = %s AND p.is_archived = 0 AND s.quantity_available <= s.reorder_threshold"
        " ORDER BY s.quantity_available, p.name", (producer_id,))
    product_count = query("SELECT COUNT(*) AS n FROM product WHERE producer_id = %s AND is_archived = 0",
                          (producer_id,), one=True)["n"]
    products = query(
        "SELECT p.product_id, p.name, p.category, p.price, p.unit, p.is_available, p.thumbnail_url,"
        " s.quantity_available, s.reorder_threshold"
        " FROM product p JOIN stock s ON s.product_id = p.product_id"
        " WHERE p.producer_id = %s AND p.is_archived = 0 ORDER BY p.name, p.product_id LIMIT %s OFFSET %s",
        (producer_id, DASHBOARD_PAGE_SIZE, (page - 1) * DASHBOARD_PAGE_SIZE))
    return render_template("dashboard/index.html", counts=counts, pending=pending, restock=restock,
                           products=products, page=page, pages=page_count(product_count, DASHBOARD_PAGE_SIZE),
                           statuses=ORDER_STATUSES), status


@app.route("/dashboard")
@producer_login_required
def dashboard():
    return render_dashboard()


def product_values(form):
    return (form.name.data, form.description.data or "", form.category.data, form.price.data,
            form.unit.data, int(form.is_available.data))


@app.route("/dashboard/products/new", methods=["GET", "POST"])
@producer_login_required
def new_product():
    """Create a product with its stock row, and optionally a photo."""
    form = ProductForm(data={"is_available": True, "reorder_threshold": 5, "quantity_available": 0})
    if form.validate_on_submit():
        image_url, thumbnail_url = save_image(form.encoded_image) if form.encoded_image else (None, None)
        try:
            with transaction() as cur:
                cur.execute("INSERT INTO product (producer_id, name, description, category, price, unit,"
                            " is_available, image_url, thumbnail_url) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                            (g.user["id"], *product_values(form), image_url, thumbnail_url))
                cur.execute("INSERT INTO stock (product_id, quantity_available, reorder_threshold) VALUES (%s, %s, %s)",
                            (cur.lastrowid, form.quantity_available.data, form.reorder_threshold.data))
        except BaseException:
            remove_images(image_url, thumbnail_url)
            raise
        flash(f"{form.name.data} has been added to your shop.", "success")
        return redirect(url_for("dashboard"))
    return render_template("dashboard/product_form.html", form=form, product=None), 400 if form.is_submitted() else 200


@app.route("/dashboard/products/<int:product_id>/edit", methods=["GET", "POST"])
@producer_login_required
def edit_product(product_id):
    """Edit one of the producer's products; stock changes only if the producer changed the number."""
    product = get_own_product(product_id)
    form = ProductForm(data=dict(product, quantity_seen=product["quantity_available"]))
    if form.validate_on_submit():
        new_images = save_image(form.encoded_image) if form.encoded_image else None
        image_url, thumbnail_url = new_images or (product["image_url"], product["thumbnail_url"])
        try:
            with transaction() as cur:
                cur.execute("UPDATE product SET name = %s, description = %s, category = %s, price = %s, unit = %s,"
                            " is_available = %s, image_url = %s, thumbnail_url = %s"
                            " WHERE product_id = %s AND producer_id = %s",
                            (*product_values(form), image_url, thumbnail_url, product_id, g.user["id"]))
                cur.execute("UPDATE stock SET reorder_threshold = %s WHERE product_id = %s",
                            (form.reorder_threshold.data, product_id))
                # Sales since the form was opened must not be undone by saving an unchanged stock figure.
                if str(form.quantity_available.data) != form.quantity_seen.data:
                    cur.execute("UPDATE stock SET quantity_available = %s WHERE product_id = %s",
                                (form.quantity_available.data, product_id))
        except BaseException:
            if new_images:
                remove_images(*new_images)
            raise
        if new_images:
            remove_images(product["image_url"], product["thumbnail_url"])
        flash(f"{form.name.data} has been saved.", "success")
        return redirect(url_for("dashboard"))
    return render_template("dashboard/product_form.html", form=form, product=product), \
        400 if form.is_submitted() else 200


@app.route("/dashboard/products/<int:product_id>/delete", methods=["POST"])
@producer_login_required
def delete_product(product_id):
    """Delete a product nobody ordered; archive one that was ordered, so order history keeps it."""
    with transaction() as cur:
        cur.execute("SELECT product_id, name, image_url, thumbnail_url FROM product"
                    " WHERE product_id = %s AND producer_id = %s AND is_archived = 0 FOR UPDATE",
                    (product_id, g.user["id"]))
        product = cur.fetchone()
        if product is None:
            abort(404)
        cur.execute("SELECT EXISTS (SELECT 1 FROM order_item WHERE product_id = %s) AS ordered", (product_id,))
        ordered = cur.fetchone()["ordered"]
        if ordered:
            cur.execute("UPDATE product SET is_archived = 1, is_available = 0 WHERE product_id = %s", (product_id,))
            cur.execute("DELETE FROM cart_item WHERE product_id = %s", (product_id,))
        else:
            cur.execute("DELETE FROM product WHERE product_id = %s", (product_id,))
    if ordered:
        flash(f"{product['name']} has been ordered before, so it was archived instead of deleted: it is gone "
              "from the catalogue and from carts, and stays in order history.", "success")
    else:
        remove_images(product["image_url"], product["thumbnail_url"])
        flash(f"{product['name']} was deleted.", "success")
    return redirect(url_for("dashboard"))


@app.route("/dashboard/products/<int:product_id>/availability", methods=["POST"])
@producer_login_required
def toggle_availability(product_id):
    """Show or hide a product in the catalogue."""
    product = get_own_product(product_id)
    with transaction() as cur:
        cur.execute("UPDATE product SET is_available = 1 - is_available WHERE product_id = %s AND producer_id = %s",
                    (product_id, g.user["id"]))
    shown = not product["is_available"]
    flash(f"{product['name']} is now {'shown in' if shown else 'hidden from'} the catalogue.", "success")
    target = request.form.get("next")
    return redirect(target if is_local_url(target) else url_for("dashboard"))


@app.route("/dashboard/update-stock", methods=["POST"])
@producer_login_required
def update_stock():
    """Set how many of one of the producer's own products are in stock."""
    form = StockForm()
    if not form.validate():
        flash_form_errors(form)
        return render_dashboard(400)
    product = get_own_product(form.product_id.data)
    with transaction() as cur:
        cur.execute(
            "UPDATE stock s JOIN product p ON p.product_id = s.product_id"
            " SET s.quantity_available = %s WHERE s.product_id = %s AND p.producer_id = %s",
            (form.quantity.data, product["product_id"], g.user["id"]))
    flash(f"Stock of {product['name']} is now {form.quantity.data}.", "success")
    return redirect(url_for("dashboard"))


@app.route("/dashboard/update-order-status", methods=["POST"])
@producer_login_required
def update_order_status():
    """Move an order holding the producer's products to its next status."""
    form = OrderStatusForm()
    if not form.validate():
        flash_form_errors(form)
        return render_dashboard(400)
    new_status = form.status.data
    order, changed = change_order_status(form.order_id.data, new_status)
    if not changed:
        flash(f"Order #{order['order_id']} is {status_label(order['status'], order['order_type'])}; "
              f"it cannot move to {status_label(new_status, order['order_type'])}.", "error")
        return render_dashboard(409)
    flash(f"Order #{order['order_id']} is now {status_label(new_status, order['order_type'])}.", "success")
    target = request.form.get("next")
    return redirect(target if is_local_url(target) else url_for("dashboard"))


def status_filter():
    """The ?status= filter when it names a status, else None (all orders)."""
    status = request.args.get("status", "")
    return status if status in ORDER_STATUSES else None


@app.route("/dashboard/orders")
@producer_login_required
def producer_orders():
    """The producer's orders, newest first, filtered by status, 25 a page."""
    page, status = page_number(), status_filter()
    orders, pages = order_page(page, per_page=DASHBOARD_PAGE_SIZE, status=status)
    return render_template("dashboard/orders.html", orders=orders, page=page, pages=pages, status=status,
                           statuses=ORDER_STATUSES)


CSV_COLUMNS = ["order id", "placed at", "customer first name", "product", "quantity", "unit price",
               "line total", "order type", "status"]


def csv_safe(value):
    """Neutralise a cell a spreadsheet would run as a formula."""
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def date_arg(name):
    """The ?name=YYYY-MM-DD date, None when empty; abort with 400 when malformed."""
    value = request.args.get(name, "")
    if not value:
        return None
    try:
        return datetime.date.fromisoformat(value)
    except ValueError:
        abort(400, f"The {name!r} date must look like 2026-11-21.")


@app.route("/dashboard/orders.csv")
@producer_login_required
def orders_csv():
    """Download one row per order line, streamed straight from the database."""
    where, args = ["o.producer_id = %s"], [g.user["id"]]
    status, start, end = status_filter(), date_arg("from"), date_arg("to")
    if status:
        where.append("o.status = %s")
        args.append(status)
    if start:
        where.append("o.placed_at >= %s")
        args.append(start)
    if end:
        where.append("o.placed_at < %s")
        args.append(end + datetime.timedelta(days=1))
    sql = ("SELECT o.order_id, o.placed_at, c.first_name, p.name, oi.quantity, oi.unit_price,"
           " oi.quantity * oi.unit_price AS line_total, o.order_type, o.status"
           " FROM orders o JOIN customer c ON c.customer_id = o.customer_id"
           " JOIN order_item oi ON oi.order_id = o.order_id"
           " JOIN product p ON p.product_id = oi.product_id"
           f" WHERE {' AND '.join(where)} ORDER BY o.placed_at, o.order_id, p.name")

    # The export has a connection of its own: the request's is closed before the last row is
    # sent, and an unbuffered cursor hands rows over as the server sends them, so memory stays flat.
    export_db = mysql.connect

    def rows():
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(CSV_COLUMNS)
        cur = export_db.cursor(MySQLdb.cursors.SSCursor)
        try:
            cur.execute(sql, args)
            for order_id, placed_at, first_name, product, quantity, unit_price, line_total, order_type, state in cur:
                writer.writerow([order_id, placed_at.isoformat(sep=" "), csv_safe(first_name), csv_safe(product),
                                 quantity, unit_price, line_total, order_type, state])
                if buffer.tell() > 32_768:
                    yield buffer.getvalue()
                    buffer.seek(0)
                    buffer.truncate()
        finally:
            cur.close()
        yield buffer.getvalue()

    filename = f"noeari-orders-{datetime.date.today().isoformat()}.csv"
    response = Response(rows(), mimetype="text/csv",
                        headers={"Content-Disposition": f'attachment; filename="{filename}"'})
    response.call_on_close(export_db.close)
    return response


@app.route("/dashboard/orders/<int:order_id>")
@producer_login_required
def producer_order(order_id):
    """One of the producer's orders: lines, total, address, history and the next steps."""
    return render_template("dashboard/order.html", order=get_own_order(order_id))


# --- CLI commands -----------------------------------------------------------

@app.cli.command("init-db")
@click.option("--seed", is_flag=True, help="Also load the demo data from seed.sql.")
def init_db_command(seed):
    """Create the tables from schema.sql in an empty database; never touches existing tables."""
    if database_tables():
        click.echo("The database already has tables; nothing to do (use `migrate` for updates).")
        return
    create_schema()
    click.echo("Created the schema.")
    if seed:
        seed_database()
        click.echo("Loaded the demo data.")


@app.cli.command("seed-db")
def seed_db_command():
    """Load the demo data; it only adds rows to an empty database."""
    seed_database()
    click.echo("Seed applied (it adds nothing to a database that already has data).")


@app.cli.command("migrate")
def migrate_command():
    """Apply pending migrations/ files in order."""
    if "schema_migrations" not in database_tables():
        raise click.ClickException("The database has no schema yet: run `flask --app app init-db` first.")
    applied = apply_migrations()
    click.echo(f"Applied {', '.join(applied)}." if applied else "The schema is up to date.")


@app.cli.command("check-db")
def check_db_command():
    """Say whether the database can be reached, and if not which setting to fix."""
    problem = check_database()
    if problem:
        raise click.ClickException(problem)
    click.echo("The database is reachable.")


# --- Response headers and error handlers -----------------------------------

CONTENT_SECURITY_POLICY = ("default-src 'self'; object-src 'none'; base-uri 'none'; "
                           "frame-ancestors 'none'; form-action 'self'")


@app.after_request
def set_security_headers(response):
    """Security headers on every response, error pages and redirects included."""
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["X-Frame-Options"] = "DENY"
    if app.config["SESSION_COOKIE_SECURE"]:
        response.headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
    if g.get("user"):
        response.headers["Cache-Control"] = "no-store"
    return response


ERROR_PAGES = {
    400: ("Bad request", "Something in that request was not right. Go back and try again."),
    403: ("Forbidden", "You do not have access to this page."),
    404: ("Page not found", "We could not find that page. It may have been moved or removed."),
    405: ("Not allowed", "That page cannot be used that way."),
    413: ("Too large", "That upload or form was too large."),
    429: ("Too many requests", "Please wait a little and try again."),
    500: ("Something went wrong", "An unexpected error happened on our side. Please try again."),
    503: ("Temporarily unavailable", "noeari is temporarily unavailable. Please try again in a minute."),
}


def error_page(code, message=None):
    title, default_message = ERROR_PAGES.get(code, ERROR_PAGES[500])
    page = render_template("errors/error.html", code=code, title=title, message=message or default_message)
    return make_response(page, code)


@app.errorhandler(CSRFError)
def csrf_error(exc):
    return error_page(400, "This form has expired or was sent without its security token. "
                           "Reload the page and try again.")


@app.errorhandler(HTTPException)
def http_error(exc):
    """A styled page for every HTTP error, with the message given to abort() when there is one."""
    message = exc.description if exc.description != type(exc).description else None
    return error_page(exc.code if exc.code in ERROR_PAGES else 500, message)


@app.errorhandler(MySQLdb.OperationalError)
def database_unavailable(exc):
    app.logger.error("Database unavailable: %s", exc)
    response = error_page(503)
    response.headers["Retry-After"] = "30"
    return response
