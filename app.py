"""noeari: a marketplace where local producers sell to the people around them.

This module is the HTTP face: every HTML route and every form, the request pipeline, and the template
filters. A route reads its form, calls its area's function in a module beside this one, and picks the
response. Its sections, top to bottom, with the URLs each serves and the tests that hold it:

- Config: settings and their environment overrides, extensions, and the helpers every form and page uses
  (dates in URLs, paging, the form base that refuses hidden characters, posted forms, local redirects).
  Tests: test_db.py, test_hostile.py.
- Request pipeline: every before_request, error handler and after_request hook, in the order they run, with
  the page cache for anonymous visitors and the error pages. Tests: test_auth.py, test_page_cache.py,
  test_errors.py, test_reliability.py, test_security.py.
- Templates: the filters and globals the modules provide (money, dates, quantities and unit prices).
  Tests: test_pages.py, test_weighed.py.
- Accounts: `/signup/*`, `/login/*`, `/logout`, `/password/*`, `/account`; sessions, the login throttle
  and trusted devices, a guest's cart waiting for login. Tests: test_auth.py, test_security.py.
- Catalogue: `/`, `/products*`, `/producers*`, `/uploads/*`, `/robots.txt`. Tests: test_catalogue.py,
  test_search.py, test_page_cache.py.
- Cart and checkout: `/cart*`, `/checkout`, the card step `/checkout/<key>/pay` and `/return`, and Stripe's
  `/stripe/webhook`. Tests: test_cart.py, test_checkout.py, test_layout.py, test_weighed.py, test_cards.py.
- Orders: `/orders*`, the customer's orders, changing and cancelling one; `/baskets/*`, a basket of orders for
  one co-op pick-up, and moving it. Tests: test_checkout.py, test_order_changes.py, test_hubs.py.
- Dashboard: `/dashboard`, `/dashboard/products/*`, `/dashboard/update-*`, `/dashboard/orders*` (with
  shortages and final weights). Tests: test_dashboard.py, test_products.py, test_producer_orders.py,
  test_order_changes.py, test_weighed.py.
- Profile and fulfilment: `/dashboard/profile`, `/dashboard/fulfilment*`, `/dashboard/closures*`, joining and
  leaving the co-op's pick-ups `/dashboard/hubs/*`. Tests: test_fulfilment.py, test_hubs.py.
- The producer's week: `/dashboard/schedule*` (the day's list takes statuses and weights),
  `/dashboard/orders/<id>/paid`. Tests: test_fulfilment.py, test_weighed.py.
- The operator: `/admin*` (with the co-op's pick-ups and their days, `/admin/hubs*`), and `flask
  create-operator`. Tests: test_operator.py, test_outbox.py, test_hubs.py.
- Money: `/invoices/*` (for an invoice's customer, producer and the operator), `/dashboard/statement*`,
  `/dashboard/orders/<id>/refunds/*`, `/admin/statements`, `/admin/producers/<id>/statement*` and
  `/payouts`, `/admin/bank*`, `/admin/accounts*`, the card payments `/admin/payments`. Tests: test_money.py,
  test_ledger.py, test_cards.py.
- Email and jobs: the worker, given the jobs of jobs.py. Tests: test_outbox.py.
- Health: `/healthz`, and `flask write-unavailable-page` for nginx. Tests: test_reliability.py,
  test_seams.py.
- Webhooks: a producer's `/dashboard/webhooks*` and the operator's `/admin/webhooks*`, the endpoints events
  are signed and sent to. Tests: test_webhooks.py.
- The JSON API: registers api.py's blueprint (`/api/v1/*`, bearer tokens, problem+json) and serves its
  readable document, `/api/docs`. Tests: test_api.py.

Every route for every role: test_routes.py; hostile input on every form: test_hostile.py; every page in a
browser at two widths: test_pages.py and test_browser.py.

Beside it, knowing nothing of requests (the acting account comes in as an argument), each owning its rules and
their SQL: db.py, fulfilment.py, measures.py, invoices.py, ledger.py, bank.py, statements.py, search.py,
images.py, pagecache.py, backup.py, outbox.py, mail.py, tokens.py, shapes.py, webhooks.py, catalogue.py, orders.py, payments.py, accounts.py,
checkout.py, changes.py, producers.py, hubs.py, worker.py and jobs.py (the README's Layout says what each
holds). The JSON API's face is api.py, with its OpenAPI document in api_document.py.
"""
import csv
import datetime
import functools
import hashlib
import io
import itertools
import os
import re
import secrets
import time
import unicodedata
from collections import namedtuple
from decimal import Decimal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click
import stripe
from flask import (Flask, Response, abort, after_this_request, flash, g, make_response, redirect, render_template,
                   request, session, url_for)
from flask.sessions import SecureCookieSessionInterface
from flask_wtf import FlaskForm
from flask_wtf.csrf import CSRFError, CSRFProtect, generate_csrf
from flask_wtf.file import FileField
from itsdangerous import BadData, URLSafeSerializer
from markupsafe import Markup, escape
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import BaseConverter
from wtforms import (BooleanField, DateField, DecimalField, EmailField, HiddenField, IntegerField, PasswordField,
                     RadioField, SelectField, SelectMultipleField, StringField, TextAreaField)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import (DataRequired, Email, EqualTo, InputRequired, Length, NumberRange, Optional, Regexp,
                                StopValidation, ValidationError)

import accounts
import api_document
import backup
import bank
import catalogue
import changes
import checkout
import db
import fulfilment
import measures
import hubs
import images
import invoices
import ledger
import jobs
import mail
import orders
import pagecache
import payments
import producers
import search
import statements
import tokens
import webhooks
import worker


# --- Config -----------------------------------------------------------------

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
    MYSQL_READ_TIMEOUT=10,
    MYSQL_WRITE_TIMEOUT=10,
    MYSQL_LOCK_WAIT_TIMEOUT=5,
    MYSQL_REUSE_CONNECTIONS=True,
    MYSQL_PING_AFTER_SECONDS=5,
    MYSQL_SYNC_WAIT=0,
    MYSQL_TRANSACTION_ATTEMPTS=3,
    BCRYPT_ROUNDS=12,
    CURRENCY_SYMBOL="£",
    CREDIT_OVERDRAFT_LIMIT=Decimal("0.00"),
    COOP_FEE_PERCENT=Decimal("0"),
    COOP_BANK_DETAILS="noeari Co-operative Ltd, sort code 04-00-04, account 12345678",
    CURRENCY="gbp",
    STRIPE_SECRET_KEY="",
    STRIPE_PUBLISHABLE_KEY="",
    STRIPE_WEBHOOK_SECRET="",
    STRIPE_API_BASE="https://api.stripe.com",
    STRIPE_JS_URL="https://js.stripe.com/v3/",
    CARD_HOLD_MINUTES=15,
    SESSION_COOKIE_HTTPONLY=True,
    SESSION_COOKIE_SAMESITE="Lax",
    SESSION_COOKIE_SECURE=False,
    UPLOAD_FOLDER=os.path.join(app.root_path, "var", "uploads"),
    MAX_CONTENT_LENGTH=6 * 1024 * 1024,
    PERMANENT_SESSION_LIFETIME=datetime.timedelta(days=14),
    LOGIN_CLIENT_LIMIT=5,
    LOGIN_DAILY_LIMIT=100,
    LOGIN_IP_LIMIT=50,
    LOGIN_WINDOW_SECONDS=15 * 60,
    DEVICE_COOKIE_DAYS=365,
    RESET_EMAIL_LIMIT=3,
    RESET_CLIENT_LIMIT=10,
    SIGNUP_CLIENT_LIMIT=10,
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
    BACKUP_FOLDER=os.path.join(app.root_path, "var", "backups"),
    TIMEZONE="Europe/London",
    PRODUCER_APPROVAL=True,
    SUPPORT_EMAIL="help@noeari.local",
    REMINDER_HOUR=18,
    MAIL_MAX_ATTEMPTS=5,
    MAIL_RETRY_SECONDS=60,
    WORKER_POLL_SECONDS=5,
    PAGE_CACHE_MB=16,
    ROW_CACHE_MB=16,
    API_TOKEN_DAYS=30,
    API_RATE_PER_MINUTE=600,
    API_RATE_BATCH=10,
    WEBHOOK_ALLOW_PRIVATE=False,
    WEBHOOK_TIMEOUT_SECONDS=10,
    WEBHOOK_MAX_ATTEMPTS=8,
    WEBHOOK_RETRY_SECONDS=60,
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
    "MYSQL_READ_TIMEOUT": int,
    "MYSQL_WRITE_TIMEOUT": int,
    "MYSQL_LOCK_WAIT_TIMEOUT": int,
    "MYSQL_REUSE_CONNECTIONS": env_flag,
    "MYSQL_PING_AFTER_SECONDS": float,
    "MYSQL_SYNC_WAIT": int,
    "MYSQL_TRANSACTION_ATTEMPTS": int,
    "BCRYPT_ROUNDS": int,
    "CURRENCY_SYMBOL": str,
    "CREDIT_OVERDRAFT_LIMIT": Decimal,
    "COOP_FEE_PERCENT": Decimal,
    "COOP_BANK_DETAILS": str,
    "CURRENCY": str,
    "STRIPE_SECRET_KEY": str,
    "STRIPE_PUBLISHABLE_KEY": str,
    "STRIPE_WEBHOOK_SECRET": str,
    "STRIPE_API_BASE": str,
    "STRIPE_JS_URL": str,
    "CARD_HOLD_MINUTES": int,
    "SESSION_COOKIE_SECURE": env_flag,
    "UPLOAD_FOLDER": str,
    "PERMANENT_SESSION_LIFETIME": int,
    "LOGIN_CLIENT_LIMIT": int,
    "LOGIN_DAILY_LIMIT": int,
    "LOGIN_IP_LIMIT": int,
    "LOGIN_WINDOW_SECONDS": int,
    "DEVICE_COOKIE_DAYS": int,
    "RESET_EMAIL_LIMIT": int,
    "RESET_CLIENT_LIMIT": int,
    "SIGNUP_CLIENT_LIMIT": int,
    "TRUSTED_PROXIES": int,
    "BASE_URL": str,
    "SMTP_HOST": str,
    "SMTP_PORT": int,
    "SMTP_USER": str,
    "SMTP_PASSWORD": str,
    "SMTP_STARTTLS": env_flag,
    "MAIL_FROM": str,
    "OUTBOX_FOLDER": str,
    "BACKUP_FOLDER": str,
    "TIMEZONE": str,
    "PRODUCER_APPROVAL": env_flag,
    "SUPPORT_EMAIL": str,
    "REMINDER_HOUR": int,
    "MAIL_MAX_ATTEMPTS": int,
    "MAIL_RETRY_SECONDS": int,
    "WORKER_POLL_SECONDS": int,
    "PAGE_CACHE_MB": float,
    "ROW_CACHE_MB": float,
    "API_TOKEN_DAYS": int,
    "API_RATE_PER_MINUTE": int,
    "API_RATE_BATCH": int,
    "WEBHOOK_ALLOW_PRIVATE": env_flag,
    "WEBHOOK_TIMEOUT_SECONDS": int,
    "WEBHOOK_MAX_ATTEMPTS": int,
    "WEBHOOK_RETRY_SECONDS": int,
}
for _name, _convert in ENV_SETTINGS.items():
    if os.environ.get(_name, "").strip():
        app.config[_name] = _convert(os.environ[_name])
if not os.environ.get("BASE_URL", "").strip() and os.environ.get("BIND", "").strip():
    # Links in email point where `make run` serves the site, unless BASE_URL names the public address.
    app.config["BASE_URL"] = f"http://{os.environ['BIND'].strip()}"


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


# A stalled server costs a request at most these timeouts, then a 503; a row locked too long, a retry and then
# "please try again". Every DATETIME the database fills in (placed_at, changed_at) is UTC; pages show it in TIMEZONE.
# On a Galera cluster, MYSQL_SYNC_WAIT=1 makes each read wait until this node has applied every write the
# cluster committed before it (causal reads), so a page shows the user's own last write whichever node serves it.
app.config["MYSQL_CUSTOM_OPTIONS"] = {"init_command": "SET time_zone = '+00:00', innodb_lock_wait_timeout = %d"
                                                      % app.config["MYSQL_LOCK_WAIT_TIMEOUT"]
                                                      + (", wsrep_sync_wait = %d" % app.config["MYSQL_SYNC_WAIT"]
                                                         if app.config["MYSQL_SYNC_WAIT"] else ""),
                                      "read_timeout": app.config["MYSQL_READ_TIMEOUT"],
                                      "write_timeout": app.config["MYSQL_WRITE_TIMEOUT"]}
app.config["SECRET_KEY"] = load_secret_key()
try:
    ZoneInfo(app.config["TIMEZONE"])
except (ZoneInfoNotFoundError, ValueError):
    raise SystemExit(f"noeari cannot start: TIMEZONE={app.config['TIMEZONE']!r} is not a time zone name "
                     "such as Europe/London.") from None
if app.config["TRUSTED_PROXIES"]:
    # Only behind proxies the deployer names: otherwise X-Forwarded-For would let anyone pick their IP.
    hops = app.config["TRUSTED_PROXIES"]
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)

db.init_app(app, after_load=[search.index_unstemmed, images.import_photo_files, ledger.backfill_orders],
            after_seed=[invoices.issue_demo_invoices])
backup.init_app(app)
csrf = CSRFProtect(app)


EARLIEST_YEAR, LATEST_YEAR = 2000, 2100


def checked_date(value, name="date"):
    """value (YYYY-MM-DD) as a date; abort with 400 when it is impossible or outside the years noeari handles."""
    try:
        day = datetime.date.fromisoformat(value)
    except ValueError:
        abort(400, f"The {name} {value!r} is not a real date; write it like 2026-11-21.")
    if not EARLIEST_YEAR <= day.year <= LATEST_YEAR:
        abort(400, f"The {name} must be between the years {EARLIEST_YEAR} and {LATEST_YEAR}.")
    return day


def date_in_range(form, field):
    """A form's date must be within the years noeari handles (date arithmetic past 9999 fails)."""
    if field.data and not EARLIEST_YEAR <= field.data.year <= LATEST_YEAR:
        raise ValidationError(f"Choose a date between the years {EARLIEST_YEAR} and {LATEST_YEAR}.")


class DateConverter(BaseConverter):
    """A YYYY-MM-DD date in a URL; an impossible or out-of-range one is a bad request (400)."""
    regex = r"\d{4}-\d{2}-\d{2}"

    def to_python(self, value):
        return checked_date(value)

    def to_url(self, value):
        return value.isoformat()


app.url_map.converters["date"] = DateConverter

@functools.lru_cache(maxsize=64)
def static_version(filename, modified):
    """A short digest of a static file's content, so its URL changes whenever the file does."""
    with open(os.path.join(app.static_folder, filename), "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()[:12]


@app.url_defaults
def version_static_urls(endpoint, values):
    if endpoint == "static" and "filename" in values:
        path = os.path.join(app.static_folder, values["filename"])
        if os.path.isfile(path):
            values["v"] = static_version(values["filename"], os.stat(path).st_mtime_ns)


def paginate(total, per_page, page):
    """What a template's page links need: this page, and how many pages total rows fill (an empty list still
    has its one, empty, page)."""
    return {"page": page, "pages": max(1, -(-total // per_page))}


def page_number():
    """The 1-based ?page= number; anything else reads as page 1."""
    page = request.args.get("page", "1")
    return int(page) if page.isdigit() and 0 < int(page) < 100_000 else 1


# Tabs and line breaks are text in a text area; nowhere else. Zero-width joiners and tag characters are kept:
# some scripts and emoji (flags among them) need them.
TEXTAREA_BREAKS = frozenset("\t\n\r")
KEPT_FORMAT_CHARACTERS = frozenset("\u200c\u200d") | frozenset(map(chr, range(0xE0020, 0xE0080)))


def hidden_character(text, multiline=False):
    """The first control, line or paragraph separator or format character (bidi overrides among them) in text,
    or None: such characters split email headers and lines of lists, or hide what a name really says."""
    for ch in text:
        kind = unicodedata.category(ch)
        if kind in ("Cc", "Zl", "Zp") and not (multiline and ch in TEXTAREA_BREAKS):
            return ch
        if kind == "Cf" and ch not in KEPT_FORMAT_CHARACTERS:
            return ch
    return None


class Form(FlaskForm):
    """The base of every form: besides each field's own checks, no text may hold NUL, other control characters,
    line separators or invisible format characters. Passwords are exempt: they are only hashed, never shown,
    and an old one may hold a tab."""

    def validate(self, extra_validators=None):
        valid = super().validate(extra_validators)
        for field in self:
            if isinstance(field, PasswordField):
                continue
            if isinstance(field.data, str) and hidden_character(field.data, isinstance(field, TextAreaField)):
                field.errors = [*field.errors, f"Remove the control characters (such as NUL, a tab or a line "
                                               f"separator) from {field.label.text.lower()}."]
                valid = False
        return valid


def form_http_status(form):
    """The status of a page that shows form: 200 when it is first shown, 400 when it comes back refused."""
    return 400 if form.is_submitted() else 200


def posted_form(form_class, item=None, item_page=None, flash_errors=True, meta=None):
    """A form posted from another page, validated; its errors are flashed, as it has no page of its own
    (flash_errors=False when the item's page shows the form with its errors).

    A form about one item (its id in the field named item) that is refused ends the request on
    item_page(form), the page of that item, with a 400; or on a 400 page when it names no item.
    """
    form = form_class(meta=meta) if meta else form_class()
    if form.validate():
        return form
    for field in form:
        for error in field.errors if flash_errors or field.name == item else ():
            flash(f"{field.label.text}: {error}", "error")
    if item is None:
        return form
    if form[item].errors:
        abort(error_page(400, f"That {form[item].label.text.lower()} could not be found; go back and try again."))
    abort(make_response(item_page(form), 400))


def id_field(label):
    """The id of the row a posted form acts on."""
    return IntegerField(label, validators=[InputRequired(), NumberRange(min=1)])


def is_local_url(target):
    """True for a path on this site, such as /cart?x=1; False for anything that leaves it."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return False
    if any(ord(ch) < 32 for ch in target):
        return False
    parts = urlsplit(target)
    return not parts.scheme and not parts.netloc


def redirect_to_next(target, fallback):
    """Redirect to target when it is a path on this site, else to the fallback URL."""
    return redirect(target if is_local_url(target) else fallback)


# --- Request pipeline -------------------------------------------------------
# Every hook, in the order it runs. Before the view: ProxyFix sets the client's address (only with
# TRUSTED_PROXIES, in Config); flask-wtf refuses a POST without its CSRF token (CSRFProtect, in Config);
# load_logged_in_user; serve_cached_page, which may answer at once. After the view, or after an error
# handler's page: end_outage, keep_cached_page, set_security_headers. Last, at teardown, db.py keeps the
# connection for the next request or closes it.

@app.before_request
def load_logged_in_user():
    """Put the logged-in account, if any, on g.user."""
    g.user = None
    if (request.endpoint in ("static", "healthz") or request.blueprint == "api"
            or session.get("role") not in accounts.ACCOUNT_SQL):
        return
    account = accounts.account_by_id(session["role"], session.get("account_id"))
    if (account is None or account["session_version"] != session.get("session_version")
            or account["status"] in accounts.BLOCKED_STATES):
        session.clear()
        return
    g.user = dict(account, role=session["role"])


# Anonymous visitors' catalogue pages are served from a per-process cache of rendered HTML, keyed by
# the full URL and the catalogue version (a row the database's triggers bump in the transaction of any
# change to what these pages show), and stale once the clock passes a cutoff a page shows.
# Only canonical URLs are kept: the parameters each page reads, each once, in this order. Any other URL is
# rendered afresh, so made-up parameters cannot fill the cache with copies of one page.
CACHED_PAGES = {"index": (), "products": ("q", "category", "producer", "sort", "in_stock", "page"),
                "product_page": ("quantity",), "producers": ("page",), "producer_page": ("sort", "in_stock", "page")}
page_cache = pagecache.PageCache(int(app.config["PAGE_CACHE_MB"] * 1024 * 1024))


def page_expires_at(instant):
    """Note that the page being rendered changes by itself at instant (an aware datetime)."""
    g.page_expires = min(g.get("page_expires") or float("inf"), instant.timestamp())


def canonical_url():
    """Whether this request's parameters are the ones its page reads, each once and in their order."""
    known = CACHED_PAGES[request.endpoint]
    names = list(request.args)
    return (names == [name for name in known if name in request.args]
            and all(len(request.args.getlist(name)) == 1 for name in names))


@app.before_request
def serve_cached_page():
    """Answer an anonymous visitor's catalogue page from the cache, or mark it to be kept once rendered.
    Only a visitor with nothing in their session but a CSRF secret: no account, no message, no guest cart."""
    if (request.method != "GET" or request.endpoint not in CACHED_PAGES or g.user is not None
            or not app.config["PAGE_CACHE_MB"] or session.keys() - {"csrf_token"} or not canonical_url()):
        return None
    version = catalogue.version()
    body = page_cache.get(version, request.full_path, fulfilment.utc_now().timestamp())
    if body is not None:
        return app.response_class(body, mimetype="text/html", headers={"X-Page-Cache": "hit"})
    g.page_cache_version = version
    return None


def keep_cached_page(response):
    """Keep a page marked by serve_cached_page, unless rendering it touched the session or made a CSRF token."""
    version = g.pop("page_cache_version", None)
    if (version is not None and response.status_code == 200 and not session.modified
            and "csrf_token" not in g and response.mimetype == "text/html"):
        page_cache.put(version, request.full_path, response.get_data(), g.get("page_expires"))
        response.headers["X-Page-Cache"] = "miss"
    return response


# The catalogue's card grid is the same for everyone who sees the same cards at a catalogue version and URL, so
# logged-in people (and visitors with a guest cart) get it from the same cache; only the page around it (the
# header, the cart count, messages) is rendered for them. The cards differ only by who may add to what: a
# customer's cart, a visitor's basket, or (producers, operators) nothing. Nothing personal is in a grid: no
# name, no count, no CSRF token.
GRID_VARIANTS = {None: "basket", "customer": "cart", "producer": "none", "operator": "none"}


def shared_grid(render):
    """This URL's card grid from the cache at the catalogue version, or render() it and keep it (canonical URLs
    only, as for whole pages)."""
    if not app.config["PAGE_CACHE_MB"] or not canonical_url():
        return Markup(render())
    key = f"grid:{GRID_VARIANTS[g.user['role'] if g.user else None]}:{request.full_path}"
    return Markup(page_cache.get_or_keep(g.get("page_cache_version") or catalogue.version(), key,
                                         fulfilment.utc_now().timestamp(), lambda: (render(), g.get("page_expires"))))


# Rows and cards render the same for the same values, so each is kept rendered under a key made of everything
# it reads, its values as the database gave them among them: a changed value is a new key, so a change shows on
# the next request. A personal page's row (a product's stock row on the dashboard) is keyed by its account and
# URL too, and only ever given back to them; its CSRF token, signed afresh for each request, is kept as a mark
# and the request's own token put in its place (a kept form, the cart's checkout form, keeps its hidden fields
# so). A guest has no account to key them by, so a guest's rows are rendered afresh. A catalogue card is the
# same for everyone who may do the same with it (GRID_VARIANTS), so it is shared across searches and pages; the
# URL it returns to is put in afterwards.
row_cache = pagecache.PageCache(int(app.config["ROW_CACHE_MB"] * 1024 * 1024))
TOKEN_MARK, NEXT_MARK = "\x00csrf-token\x00", "\x00next-url\x00"


def kept(key, render, fill):
    """render()'s text from the row cache under key (kept the first time), with fill(text) applied on the way out."""
    body = row_cache.get(0, key)
    if body is None:
        body = render()
        row_cache.put(0, key, body)
    return Markup(fill(body))


def marked(body, fresh):
    """body with each of this request's own values (fresh, {mark: value}) put back as its mark."""
    for mark, value in fresh.items():
        body = body.replace(value, mark)
    return body


def filled(body, fresh):
    """A kept body with this request's own values (fresh, {mark: value}) in their marks' places."""
    for mark, value in fresh.items():
        body = body.replace(mark, value)
    return body


def kept_fresh(key, render, fresh):
    """kept() for a body holding values that differ on every request (fresh, {mark: value}): kept as their marks,
    given back with this request's values in their places."""
    return kept(key, lambda: marked(render(), fresh), lambda body: filled(body, fresh))


def personal_key(macro, values):
    """The row cache's key for macro rendered from values on this account's page at this URL."""
    code = macro._func.__code__
    return repr((code.co_filename, code.co_firstlineno, g.user["role"], g.user["id"], request.full_path, values))


@app.template_global()
def kept_row(macro, *args):
    """macro(*args) as rendered for this account at this URL, from the row cache when these values were; a
    guest's rows are rendered afresh, as they have no account to key them by."""
    if not app.config["ROW_CACHE_MB"] or g.user is None:
        return macro(*args)
    return kept_fresh(personal_key(macro, args), lambda: str(macro(*args)), {TOKEN_MARK: generate_csrf()})


@app.template_global()
def kept_form(macro, form):
    """macro(form) as kept_row keeps it, keyed by the values and errors of the form's fields; its hidden fields
    (the CSRF token, a checkout's key) are new on every request, so their values are marks in what is kept."""
    if not app.config["ROW_CACHE_MB"] or g.user is None:
        return macro(form)
    hidden = [f for f in form if f.type in ("HiddenField", "CSRFTokenField")]
    shown = [(f.name, f.data, f.errors) for f in form if f not in hidden]
    fresh = {TOKEN_MARK if f.type == "CSRFTokenField" else f"\x00field:{f.name}\x00": str(escape(f._value()))
             for f in hidden if f._value()}
    return kept_fresh(personal_key(macro, (shown, list(fresh))), lambda: str(macro(form)), fresh)


@app.template_global()
def kept_card(macro, product, level, show_producer):
    """A catalogue card, macro(product, level, show_producer, next_url), from the row cache when this product's
    values were rendered for the same variant; the per-query total is not one of its values."""
    next_url = request.full_path.rstrip("?")
    if not app.config["ROW_CACHE_MB"]:
        return macro(product, level, show_producer, next_url)
    values = [(name, value) for name, value in product.items() if name != "total"]
    key = repr(("card", GRID_VARIANTS[g.user["role"] if g.user else None], level, show_producer, values))
    return kept(key, lambda: str(macro(product, level, show_producer, NEXT_MARK)),
                lambda body: body.replace(NEXT_MARK, str(escape(next_url))))


# A producer's own pages (the dashboard, a day's packing list) are kept rendered for their account and URL under
# the producer's version (schema.sql, producer_version), which the session's account query reads: while it stands,
# nothing these pages show has changed. A page rendered afresh reads its values and the version in one snapshot,
# so it is kept under the version it shows. Only the page's own blocks are kept (its title and content); the
# layout around them, with the header and flashed messages, is rendered for each request.
BLOCK_MARK = "\x00block\x00"


def render_kept(template, load, **context):
    """render_template(template, **context, **load()) for the logged-in producer, its blocks kept as above."""
    if not app.config["ROW_CACHE_MB"]:
        return render_template(template, **context, **load())

    def key(version):
        return repr(("page", template, dict(g.user, version=version), request.full_path))

    def render():
        version, values = producers.as_of_version(g.user["id"], load)
        return key(version), dict(context, **values)
    return render_kept_blocks(template, key(g.user["version"]), render, {TOKEN_MARK: generate_csrf()})


def render_kept_blocks(template, key, render, fresh):
    """The template's own blocks from the row cache under key, or rendered from render()'s (key, context) and kept
    under that key, with this request's fresh values ({mark: value}) in their marks' places; the layout around
    them rendered for this request (kept.html)."""
    body = row_cache.get(0, key)
    if body is None:
        key, context = render()
        blocks = render_blocks(template, **context)
        body = marked("".join(BLOCK_MARK + name + BLOCK_MARK + text for name, text in blocks.items()), fresh)
        row_cache.put(0, key, body)
    parts = filled(body, fresh).split(BLOCK_MARK)[1:]
    return render_template("kept.html", blocks={name: Markup(text) for name, text in zip(parts[::2], parts[1::2])})


def render_blocks(template, **context):
    """Each block the template itself defines, rendered from context as render_template would: {name: text}. A
    block reads only the context and what it imports itself: the template's top level is not run."""
    found = app.jinja_env.get_or_select_template(template)
    app.update_template_context(context)
    ctx = found.new_context(context)
    return {name: "".join(block(ctx)) for name, block in found.blocks.items()}


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


def error_page(code, message=None, title=None):
    default_title, default_message = ERROR_PAGES.get(code, ERROR_PAGES[500])
    title = title or default_title
    page = render_template("errors/error.html", code=code, title=title, message=message or default_message)
    return make_response(page, code)


@app.errorhandler(CSRFError)
def csrf_error(exc):
    return error_page(400, "This form has expired or was sent without its security token. "
                           "Reload the page and try again.")


@app.errorhandler(HTTPException)
def http_error(exc):
    """A styled page for every HTTP error, with the message given to abort() when there is one; under /api/,
    where no route may have matched, problem+json."""
    if request.path.startswith("/api/"):
        return api.http_problem(exc)
    message = exc.description if exc.description != type(exc).description else None
    response = error_page(exc.code if exc.code in ERROR_PAGES else 500, message)
    for name, value in exc.get_headers():  # such as Allow on a 405
        if name.lower() != "content-type":
            response.headers[name] = value
    return response


@app.errorhandler(orders.OrderNotFound)
@app.errorhandler(accounts.AccountNotFound)
def not_found(exc):
    return error_page(404)


@app.errorhandler(db.Busy)
def database_busy(exc):
    """Many people changed the same rows at once and this change kept losing: nothing was changed."""
    response = error_page(503, "Many people are changing the same things right now, and your change could not "
                               "get through, so nothing was changed. Please try again.", title="Please try again")
    response.headers["Retry-After"] = "1"
    return response


OUTAGE_REPORT_SECONDS = 300
outage = {"since": None, "reported": 0.0, "refused": 0}  # this process's current burst of refused requests


@app.errorhandler(db.OperationalError)
def database_unavailable(exc):
    """A lost or refused connection is an outage: a 503 page, and one log line per burst (and one every few
    minutes while it lasts), not one per request. Any other error the driver calls operational is a bug: a 500."""
    if not db.is_connection_error(exc):
        app.logger.exception("Database error: %s", exc)
        return error_page(500)
    now = time.monotonic()
    outage["refused"] += 1
    if outage["since"] is None or now - outage["reported"] > OUTAGE_REPORT_SECONDS:
        app.logger.error("Database unavailable: %s (%d requests refused in this outage so far)", exc, outage["refused"])
        outage["since"] = outage["since"] or now
        outage["reported"] = now
    response = error_page(503)
    response.headers["Retry-After"] = "30"
    return response


def end_outage(response):
    if outage["since"] is not None and response.status_code < 500:
        app.logger.warning("Database available again after %.0f s and %d refused requests.",
                           time.monotonic() - outage["since"], outage["refused"])
        outage.update(since=None, refused=0)
    return response


CONTENT_SECURITY_POLICY = ("default-src 'self'; object-src 'none'; base-uri 'none'; "
                           "frame-ancestors 'none'; form-action 'self'")
# No page needs the camera, the microphone, the location or payment APIs; nor may anything it frames.
PERMISSIONS_POLICY = ("camera=(), microphone=(), geolocation=(), payment=(), usb=(), serial=(), bluetooth=(), "
                      "display-capture=(), browsing-topics=()")


def set_security_headers(response):
    """Security headers on every response, error pages and redirects included."""
    response.headers["Content-Security-Policy"] = g.get("content_security_policy", CONTENT_SECURITY_POLICY)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Permissions-Policy"] = PERMISSIONS_POLICY
    if app.config["SESSION_COOKIE_SECURE"]:
        response.headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
    if g.get("user") and not response.cache_control.public:  # photos are the same for everyone
        response.headers["Cache-Control"] = "no-store"
    elif request.endpoint == "static" and request.args.get("v"):
        # The URL names the content, so it can be kept for a year without asking again.
        response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    return response


# Flask runs after_request hooks last registered first: registered in this order, they run in the order above.
for _hook in (set_security_headers, keep_cached_page, end_outage):
    app.after_request(_hook)


# --- Templates --------------------------------------------------------------
# The filters and globals the modules provide; item_url and guest_addition_notice, which read the request,
# are defined beside the pages that use them.

app.add_template_filter(fulfilment.format_money, "money")
app.add_template_filter(fulfilment.format_date, "date")
app.add_template_filter(fulfilment.format_stored, "local_time")
app.add_template_filter(fulfilment.format_clock, "clock")
app.add_template_global(orders.status_label)
app.add_template_global(orders.next_statuses)
app.add_template_global(orders.order_when)
app.add_template_global(orders.how_to_pay)
app.add_template_global(ledger.order_fee)
app.add_template_global(ledger.payment_reference)
app.add_template_global(ledger.PAYMENT_WORDS, "payment_words")
app.add_template_global(ledger.credit_reference)
app.add_template_global(invoices.KINDS, "document_kinds")
app.add_template_global(mail.site_url)
app.add_template_filter(mail.address_lines, "address_lines")
app.add_template_global(fulfilment.option_heading)
app.add_template_global(changes.change_sentence)
app.add_template_filter(measures.plain, "quantity")
app.add_template_filter(measures.unit_price, "unit_price")
app.add_template_filter(measures.line_text, "line_text")
app.add_template_filter(measures.step_text, "step_text")
app.add_template_filter(measures.is_estimate, "is_estimate")
app.add_template_test(measures.is_estimate, "estimate")
app.add_template_global(measures.quantity_text)
app.add_template_global(measures.estimate_text)
app.add_template_global(measures.estimated_weight)
app.add_template_global(measures.weight_cap)
app.add_template_global(measures.tolerance_text)
app.add_template_global(measures.places)
app.add_template_global(measures.least_quantity)
app.add_template_global(measures.input_attributes)
app.add_template_global(measures.fit)
app.add_template_global(measures.quantity_unit)


# --- Accounts ---------------------------------------------------------------

def start_session(role, account):
    """Log in as one role, ending any earlier session; the cookie carries the account's session version.
    A customer's guest basket joins their cart. Returns what a guest asked to add on the way, if anything."""
    pending, basket = session.get("pending_cart"), session.get("basket") or {}
    session.clear()
    session.permanent = True
    session["role"] = role
    session["account_id"] = account["id"]
    session["session_version"] = account["session_version"]
    if role == "customer" and basket:
        capped = checkout.merge_basket(account["id"], basket)
        flash(f"The {len(basket)} product{'s' if len(basket) > 1 else ''} in your basket "
              f"{'are' if len(basket) > 1 else 'is'} now in your cart.", "success")
        for name, wanted, now in capped:
            flash(f"{name}: you asked for {wanted}, and only {now} could go in your cart (that is all there is)."
                  if now else f"{name} is no longer available, so it is not in your cart.", "warning")
        session["basket_merged"] = True
    return pending





def login_required_as(*roles):
    """Make a decorator that sends anyone not logged in as one of roles to the first role's login page."""
    def decorator(view):
        @functools.wraps(view)
        def wrapped(**kwargs):
            if g.user is None or g.user["role"] not in roles:
                if g.user is not None:
                    flash(f"Please log in with a {roles[0]} account to continue.", "error")
                return redirect(url_for("login", role=roles[0], next=return_path()))
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
operator_login_required = login_required_as("operator")
account_login_required = login_required_as("customer", "producer", "operator")


def client_ip():
    """The client's address; behind a proxy, ProxyFix (TRUSTED_PROXIES) makes this the real one."""
    return (request.remote_addr or "unknown")[:45]


def address_client():
    """The client as the throttles name one that has no device cookie to go by: its network address."""
    return f"ip:{client_ip()}"


DEVICE_COOKIE = "device"
THROTTLE_MESSAGES = {
    "wait": "Too many failed attempts. Please wait 15 minutes, then try again (or reset your password).",
    "reset": "This account has had too many failed login attempts today, so for now only a password reset "
             "unlocks it. Use “Forgot your password?” to get a link.",
}


def device_serializer():
    return URLSafeSerializer(app.config["SECRET_KEY"], salt="trusted-device")


def email_tag(email):
    return hashlib.sha256(email.encode()).hexdigest()[:16]


def trusted_device():
    """This browser's signed device cookie, {"id", "emails"}, naming the emails that have logged in here; or None."""
    try:
        device = device_serializer().loads(request.cookies.get(DEVICE_COOKIE, ""))
    except BadData:
        return None
    if not isinstance(device, dict) or not isinstance(device.get("emails"), list):
        return None
    return device


def password_client(email):
    """Who is guessing email's password: (client, trusted). A browser that has logged in to email before is
    known by its device cookie; any other client by its network address."""
    device = trusted_device()
    if device and email_tag(email) in device["emails"]:
        return f"device:{device['id']}", True
    return address_client(), False


def remember_device(email):
    """After a correct password, trust this browser for email: other clients' failures never lock it out."""
    device = trusted_device() or {"id": secrets.token_urlsafe(12), "emails": []}
    tags = [tag for tag in device["emails"] if tag != email_tag(email)] + [email_tag(email)]
    value = device_serializer().dumps({"id": device["id"], "emails": tags[-5:]})

    @after_this_request
    def set_device_cookie(response):
        response.set_cookie(DEVICE_COOKIE, value, max_age=app.config["DEVICE_COOKIE_DAYS"] * 86400, httponly=True,
                            samesite="Lax", secure=app.config["SESSION_COOKIE_SECURE"])
        return response


def password_guess_refused(email):
    """Why a guess at email's password from this client will not be checked now ("wait" or "reset"), or None.

    Each client gets LOGIN_CLIENT_LIMIT failures per email per window; a client not known to the account also
    gets no more once its address has failed LOGIN_IP_LIMIT times, or once the email has failed
    LOGIN_DAILY_LIMIT times in a day from anywhere. Asked before bcrypt runs, so a flood of guesses costs a
    query, not a CPU.
    """
    client, trusted = password_client(email)
    counts = accounts.login_failure_counts(email, client, client_ip())
    if counts["by_client"] >= app.config["LOGIN_CLIENT_LIMIT"]:
        return "wait"
    if not trusted and counts["by_address"] >= app.config["LOGIN_IP_LIMIT"]:
        return "wait"
    if not trusted and counts["by_email"] >= app.config["LOGIN_DAILY_LIMIT"]:
        return "reset"
    return None


def record_password_failure(email):
    client, trusted = password_client(email)
    accounts.record_login_failure(email, client_ip(), client, trusted)


def forgive_password_failures(email):
    """A correct password forgives this client's failures for email; other clients' still count."""
    accounts.forgive_login_failures(email, password_client(email)[0])


def throttled_page(template, refusal, **context):
    """The page of a refused guess: 429, with Retry-After when waiting helps."""
    response = make_response(render_template(template, **context), 429)
    if refusal == "wait":
        response.headers["Retry-After"] = str(app.config["LOGIN_WINDOW_SECONDS"])
    return response


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


class NewPasswordForm(Form):
    password = PasswordField("Password", validators=[
        DataRequired(), Length(min=8, message="Password must be at least 8 characters."), bcrypt_compatible])
    confirm = PasswordField("Confirm password", validators=[
        DataRequired(), EqualTo("password", message="The two passwords do not match.")])


class CustomerNameForm(Form):
    name = StringField("First name", filters=[strip_text], validators=[DataRequired(), Length(max=100)])


class ProducerNameForm(Form):
    business = StringField("Business name", filters=[strip_text], validators=[DataRequired(), Length(max=150)])


class OperatorNameForm(Form):
    name = StringField("Name", filters=[strip_text], validators=[DataRequired(), Length(max=100)])


class CustomerSignupForm(CustomerNameForm, NewPasswordForm):
    email = email_field()


class ProducerSignupForm(ProducerNameForm, NewPasswordForm):
    email = email_field()


class LoginForm(Form):
    email = EmailField("Email", filters=[normalise_email], validators=[DataRequired(), Length(max=254)])
    password = current_password_field()


class ForgotPasswordForm(Form):
    email = email_field()


class PasswordChangeForm(NewPasswordForm):
    current_password = current_password_field("Current password")
    password = PasswordField("New password", validators=NewPasswordForm.password.kwargs["validators"])


class EmailChangeForm(Form):
    email = email_field()
    current_password = PasswordField("Current password", id="email-current-password",
                                     validators=[DataRequired(), Length(max=1000)])


class RemindersForm(Form):
    reminders = BooleanField("Email me a reminder the day before I collect or receive an order")


class ConfirmForm(Form):
    """A button with nothing but its CSRF token: log out."""


RolePages = namedtuple("RolePages", "home signup_form name_form name_field")
# Each role's pages: where it lands after logging in, its signup form, and the form and field of its name.
ROLE_PAGES = {"customer": RolePages("products", CustomerSignupForm, CustomerNameForm, "name"),
              "producer": RolePages("dashboard", ProducerSignupForm, ProducerNameForm, "business"),
              "operator": RolePages("admin", None, OperatorNameForm, "name")}


def guest_addition(kept=None):
    """What a guest asked to add to their cart on the way to logging in or signing up: ?add=<product id>&quantity=
    from a product page, else kept (asked for earlier, in the session). With a problem, it says why it cannot."""
    product_id, quantity = request.args.get("add", ""), request.args.get("quantity", "1")
    if not product_id:
        return kept
    if not (product_id.isdecimal() and 0 < int(product_id) < 2**32):
        return {"problem": "That product cannot be found."}
    amount = measures.parse_decimal(quantity)
    if amount is None or not 0 < amount <= MAX_STOCK:
        return {"problem": f"The quantity must be more than 0 and at most {MAX_STOCK:,}.", "product_id": int(product_id)}
    return {"product_id": int(product_id), "quantity": measures.plain(amount)}


@app.template_global()
def guest_addition_notice():
    """For the login and signup pages: what the guest is about to add, as a notice, and the ?add=&quantity=
    to carry between the two pages; None when they came for no product."""
    addition = guest_addition()
    if addition is None:
        return None
    args = {key: request.args[key] for key in ("add", "quantity") if key in request.args}
    if "problem" in addition:
        return {"message": addition["problem"], "category": "error", "args": args,
                "product_id": addition.get("product_id")}
    product = catalogue.listed_product(addition["product_id"])
    if product is None:
        return {"message": "The product you chose is no longer available.", "category": "warning", "args": {}}
    return {"message": f"Log in or create an account, and "
                       f"{measures.amount_of(product, Decimal(addition['quantity']))} goes into your cart.",
            "category": "info", "args": args}


def signup_status(role):
    """A new customer is active at once; a new producer awaits the co-op's approval unless PRODUCER_APPROVAL is off."""
    if role == "producer" and app.config["PRODUCER_APPROVAL"]:
        return "pending"
    return "approved" if role == "producer" else "active"


@app.route("/signup/<any(customer, producer):role>", methods=["GET", "POST"])
def signup(role):
    """Create a customer's or a producer's account and log it in."""
    form = ROLE_PAGES[role].signup_form()
    if form.validate_on_submit():
        client = address_client()
        if accounts.over_hourly_limit("signup_client", client, app.config["SIGNUP_CLIENT_LIMIT"]):
            flash("Too many accounts have been made from this network in the last hour. Please try again later.",
                  "error")
            return render_template("auth/signup.html", form=form, role=role), 429
        accounts.record_signup_attempt(client)
        display_name = form[ROLE_PAGES[role].name_field].data
        try:
            account_id = accounts.create_account(role, display_name, form.email.data,
                                                 accounts.hash_password(form.password.data), signup_status(role))
        except db.IntegrityError:
            form.email.errors.append("An account with this email already exists. Log in instead.")
        else:
            pending = guest_addition(start_session(role, {"id": account_id, "session_version": 1}))
            flash(f"Welcome to noeari, {display_name}! Your account is ready.", "success")
            if role == "customer" and pending and "problem" not in pending:
                return add_pending_to_cart(account_id, pending)
            if session.pop("basket_merged", None):
                return redirect(url_for("cart"))
            return redirect(url_for(ROLE_PAGES[role].home))
    return render_template("auth/signup.html", form=form, role=role), form_http_status(form)


@app.route("/login/<any(customer, producer, operator):role>", methods=["GET", "POST"])
def login(role):
    """Log in to a customer's, a producer's or an operator's account; go on to ?next= when it is a local path."""
    form = LoginForm()
    if form.validate_on_submit():
        refusal = password_guess_refused(form.email.data)
        if refusal:
            flash(THROTTLE_MESSAGES[refusal], "error")
            return throttled_page("auth/login.html", refusal, form=form, role=role)
        account = accounts.account_by_email(role, form.email.data)
        if accounts.password_matches(form.password.data, account["password_hash"] if account else None):
            forgive_password_failures(form.email.data)
            remember_device(form.email.data)
            if account["status"] in accounts.BLOCKED_STATES:
                flash(f"This account is {account['status']}, so it cannot log in. To talk about it, contact the "
                      f"co-op at {app.config['SUPPORT_EMAIL']}.", "error")
                return render_template("auth/login.html", form=form, role=role), 403
            pending = guest_addition(start_session(role, account))
            flash(f"Welcome back, {account['name']}. You are logged in.", "success")
            if role == "customer" and pending and "problem" not in pending:
                return add_pending_to_cart(account["id"], pending)
            if session.pop("basket_merged", None):
                return redirect_to_next(request.args.get("next"), url_for("cart"))
            return redirect_to_next(request.args.get("next"), url_for(ROLE_PAGES[role].home))
        record_password_failure(form.email.data)
        flash("Incorrect email or password.", "error")
    return render_template("auth/login.html", form=form, role=role), form_http_status(form)


@app.route("/logout", methods=["GET", "POST"])
def logout():
    """GET asks for confirmation; only the CSRF-protected POST logs out."""
    form = ConfirmForm()
    if form.validate_on_submit():
        if g.user:
            # A new session version makes every copy of this session's cookie worthless.
            accounts.end_sessions(g.user["role"], g.user["id"])
        session.clear()
        flash("You have been logged out.", "success")
        return redirect(url_for("index"))
    return render_template("auth/logout.html", form=form)


def no_referrer(response):
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@app.route("/password/forgot/<role>", methods=["GET", "POST"])
def forgot_password(role):
    """Ask for a reset link. Known and unknown emails get the same answer from the same work: a request is
    recorded, and the worker emails a link only when the email has an account."""
    if role not in accounts.ACCOUNT_SQL:
        abort(404)
    form = ForgotPasswordForm()
    if form.validate_on_submit():
        if not accounts.request_password_reset(role, form.email.data, address_client()):
            flash("Several links have been asked for already, for this email or from this network. Check your "
                  "inbox (and spam folder), or try again in an hour.", "error")
            return render_template("auth/forgot.html", form=form, role=role), 429
        flash("If an account uses that email, we have sent it a link to choose a new password. "
              "The link works for one hour.", "success")
        return redirect(url_for("forgot_password", role=role))
    return render_template("auth/forgot.html", form=form, role=role), form_http_status(form)


@app.route("/password/reset/<token>", methods=["GET", "POST"])
def reset_password(token):
    """Choose a new password with a link from the reset email. The page sends no Referer: its URL is a key."""
    after_this_request(no_referrer)
    found = accounts.account_for_reset_token(token)
    if found is None:
        return render_template("auth/reset_invalid.html"), 400
    role, account = found
    form = NewPasswordForm()
    if form.validate_on_submit():
        if not accounts.set_password_by_reset(role, account, accounts.hash_password(form.password.data)):
            return render_template("auth/reset_invalid.html"), 400
        session.clear()
        flash("Your password has been changed, and every session was logged out. Log in with the new one.",
              "success")
        return redirect(url_for("login", role=role))
    return render_template("auth/reset.html", form=form), form_http_status(form)


ACCOUNT_FORMS = {"password": PasswordChangeForm, "email": EmailChangeForm}


@app.route("/account", methods=["GET", "POST"])
@account_login_required
def account():
    """Change the display name, the password or the email of the logged-in account."""
    role, account_id = g.user["role"], g.user["id"]
    action = request.form.get("action") if request.method == "POST" else None
    form_classes = dict(ACCOUNT_FORMS, name=ROLE_PAGES[role].name_form)
    if role == "customer":
        form_classes["reminders"] = RemindersForm
    if request.method == "POST" and action not in form_classes:
        abort(400, "Choose what to change: name, password or email.")
    forms = {
        "name": ROLE_PAGES[role].name_form(formdata=None, data={"name": g.user["name"], "business": g.user["name"]}),
        "password": PasswordChangeForm(formdata=None),
        "email": EmailChangeForm(formdata=None, data={"email": g.user["email"]}),
    }
    if role == "customer":
        forms["reminders"] = RemindersForm(formdata=None, data={"reminders": bool(g.user["reminders"])})
    if not action:
        return render_template("auth/account.html", forms=forms, role=role,
                               api_tokens=tokens.own_tokens(role, account_id))
    forms[action] = form = form_classes[action]()
    if form.validate():
        # The current password is guarded like the login form, so a stolen session cannot guess it.
        refusal = password_guess_refused(g.user["email"]) if "current_password" in form else None
        if refusal:
            form.current_password.errors.append(THROTTLE_MESSAGES[refusal])
            return throttled_page("auth/account.html", refusal, forms=forms, role=role)
        message = change_account(role, account_id, action, form)
        if message:
            flash(message, "success")
            return redirect(url_for("account"))
    return render_template("auth/account.html", forms=forms, role=role,
                           api_tokens=tokens.own_tokens(role, account_id)), form_http_status(form)


@app.route("/account/tokens/<int:token_id>/revoke", methods=["POST"])
@account_login_required
def revoke_api_token(token_id):
    """Revoke one of the account's API tokens: a program using it is refused from now on."""
    if not tokens.revoke(g.user["role"], g.user["id"], token_id):
        abort(404)
    flash("That API token is revoked: programs using it can no longer act for you.", "success")
    return redirect(url_for("account"))


def change_account(role, account_id, action, form):
    """Apply one account change; return the confirmation, or None with the form's errors set."""
    if action == "name":
        accounts.rename_account(role, account_id, form[ROLE_PAGES[role].name_field].data)
        return "Your name has been saved."
    if action == "reminders":
        accounts.set_reminders(account_id, form.reminders.data)
        return "You will get reminders." if form.reminders.data else "You will get no more reminders."
    credentials = accounts.credentials(role, account_id)
    if not accounts.password_matches(form.current_password.data, credentials["password_hash"]):
        record_password_failure(credentials["email"])
        form.current_password.errors.append("That is not your current password.")
        return None
    forgive_password_failures(credentials["email"])
    if action == "email":
        try:
            accounts.change_email(role, account_id, form.email.data)
        except db.IntegrityError:
            form.email.errors.append("Another account already uses this email.")
            return None
        # Every other session ends; this one carries on with the new version.
        session["session_version"] = credentials["session_version"] + 1
        return f"Your email is now {form.email.data}."
    accounts.change_password(role, account_id, accounts.hash_password(form.password.data),
                             credentials["password_hash"])
    # Every other session ends; this one carries on with the new version.
    session["session_version"] = credentials["session_version"] + 1
    return "Your password has been changed. Other devices have been logged out."


# --- Catalogue --------------------------------------------------------------

LIST_PAGE_SIZE = 25
MAX_STOCK = measures.MAX_QUANTITY


@app.template_global()
def item_url(endpoint, item_id):
    """url_for(endpoint, <its one id>=item_id), exactly, for the links on every card and row: the path around
    the id is built by url_for once per request, then each link only puts its id in."""
    parts = g.setdefault("item_url_parts", {})
    around = parts.get(endpoint)
    if around is None:
        [argument] = next(app.url_map.iter_rules(endpoint)).arguments
        around = parts[endpoint] = url_for(endpoint, **{argument: ITEM_URL_MARK}).split(str(ITEM_URL_MARK))
    return str(int(item_id)).join(around)


ITEM_URL_MARK = 987654321987  # an id no path holds otherwise


def load_offers(producer_ids, now=None):
    """{producer_id: Offer} for the given producers; a cached page that shows them goes stale when they change."""
    offers, expires = catalogue.load_offers(producer_ids, now)
    if expires is not None:
        page_expires_at(expires)
    return offers


@app.template_filter("stock_badge")
def stock_badge_filter(product):
    """In stock / low / out of stock, as a badge: on every catalogue card, so a filter, not a macro."""
    available = product["quantity_available"]
    if available <= 0:
        return Markup('<span class="badge badge-out">Out of stock</span>')
    if available <= product["reorder_threshold"]:
        return Markup('<span class="badge badge-low">Low stock · {} left</span>').format(
            measures.how_much(product, available))
    return Markup('<span class="badge badge-in">In stock</span>')


@app.route("/")
def index():
    """Home page: what the marketplace is, with the newest products that can be ordered now."""
    newest = catalogue.newest_products()
    return render_template("shop/index.html", products=newest, categories=catalogue.CATEGORIES)


def catalogue_filters():
    """The catalogue's ?q=&category=&producer=&sort=&in_stock= choices; anything unusable falls back to its default."""
    producer = request.args.get("producer", "")
    category = request.args.get("category", "")
    sort = request.args.get("sort", "relevance")
    return {
        "q": request.args.get("q", "")[:200].strip(),
        "category": category if category in catalogue.CATEGORIES else "",
        "producer": int(producer) if producer.isdecimal() and 0 < int(producer) < 2**32 else None,
        "sort": sort if sort in catalogue.CATALOGUE_SORTS else "relevance",
        "in_stock": 1 if request.args.get("in_stock") == "1" else None,
    }


def render_catalogue(template, filters, endpoint, in_path=(), grid_args=None, **context):
    """Render a catalogue page around its card grid, which comes from the shared cache when it can; page links
    keep every filter that is not already in the path."""
    def grid():
        rows, total, page = catalogue.catalogue_page(filters, page_number())
        link_args = {key: value for key, value in filters.items()
                     if value and key not in in_path and not (key == "sort" and value == "relevance")}
        return render_template("shop/_catalogue.html", products=rows, total=total, filters=filters,
                               **paginate(total, catalogue.PRODUCTS_PER_PAGE, page), endpoint=endpoint,
                               link_args=dict(link_args, **(grid_args or {})),
                               card_level=3 if in_path else 2, show_producer=not in_path)
    return render_template(template, grid=shared_grid(grid), filters=filters, categories=catalogue.CATEGORIES,
                           sorts=catalogue.CATALOGUE_SORTS, **context)


@app.route("/products")
def products():
    """The catalogue: search, filter by category or producer, sort, 24 a page."""
    return render_catalogue("shop/products.html", catalogue_filters(), "products")


@app.route("/producers", endpoint="producers")
def producer_list():
    """Every producer, with how many products each has on sale."""
    rows, total, page = catalogue.producer_page(page_number(), LIST_PAGE_SIZE)
    return render_template("shop/producers.html", producers=rows, **paginate(total, LIST_PAGE_SIZE, page))


@app.route("/producers/<int:producer_id>")
def producer_page(producer_id):
    """A producer's public page: their available products, a page at a time."""
    producer = catalogue.approved_producer(producer_id)
    if producer is None:
        return producer_preview(producer_id)
    filters = dict(catalogue_filters(), q="", category="", producer=producer_id)
    return render_catalogue("shop/producer.html", filters, "producer_page", in_path=("producer",),
                            grid_args={"producer_id": producer_id}, producer=producer,
                            offer=load_offers([producer_id])[producer_id])


def may_preview(producer_id):
    """Whether the viewer may see a producer's pages before they are public: the producer, or an operator."""
    return g.user is not None and (g.user["role"] == "operator"
                                   or (g.user["role"] == "producer" and g.user["id"] == producer_id))


def producer_preview(producer_id):
    """A producer's page as it will be once approved, for them and the co-op only; anyone else gets a 404."""
    producer = catalogue.preview_producer(producer_id) if may_preview(producer_id) else None
    if producer is None:
        abort(404)
    products = catalogue.preview_products(producer_id)
    return render_template("shop/producer.html", producer=producer, preview=True, products=products,
                           total=len(products), page=1, pages=1, link_args={}, categories=catalogue.CATEGORIES,
                           sorts=catalogue.CATALOGUE_SORTS,
                           filters=dict(catalogue_filters(), q="", category="", producer=producer_id),
                           offer=load_offers([producer_id])[producer_id])


def get_available_product(product_id):
    """An available product with its producer and stock, or abort with 404."""
    product = catalogue.listed_product(product_id)
    if product is None:
        abort(404)
    return product


class QuantityField(StringField):
    """An exact decimal quantity (2, 0.75, 12.5): digits and at most one point, never a float."""

    def process_formdata(self, valuelist):
        if valuelist:
            self.data = measures.parse_decimal(valuelist[0])
            if self.data is None and valuelist[0].strip():
                raise ValueError("Enter the quantity as a number, like 2 or 0.75.")

    def _value(self):
        return measures.plain(self.data) if isinstance(self.data, Decimal) else (self.raw_data or [""])[0]


def quantity_range(form, field):
    """From 0 to MAX_STOCK; a quantity that was not a number has said so already."""
    if field.process_errors:
        raise StopValidation()
    if field.data is None or not 0 <= field.data <= MAX_STOCK:
        raise ValidationError(f"Quantity must be a number from 0 to {MAX_STOCK:,}.")


def more_than_zero(form, field):
    if field.data == 0:  # below 0 is NumberRange's to say
        raise ValidationError("Quantity must be more than 0.")


def quantity_field(label, minimum, default=None):
    """A quantity from 0 up (minimum 0), or above 0 (minimum 1); with a default, a form that leaves it out gets
    the default. Whether the product is bought in whole units or steps is the route's check
    (measures.quantity_problem)."""
    validators = [quantity_range]
    if minimum:
        validators.append(more_than_zero)
    if default is None:
        validators.insert(0, InputRequired("Enter a quantity."))
    return QuantityField(label, default=None if default is None else Decimal(default), validators=validators)


def refuse_quantity(form, product, quantity, field="quantity"):
    """Put measures' reason that quantity of product cannot be bought on the form's field; True when refused."""
    problem = measures.quantity_problem(product, quantity)
    if problem:
        form[field].errors = list(form[field].errors) + [problem]
    return bool(problem)


class CartAddForm(Form):
    product_id = id_field("Product")
    quantity = quantity_field("Quantity", 1, default=1)


@app.route("/products/<int:product_id>")
def product_page(product_id):
    """One available product, with an add-to-cart form."""
    product = catalogue.listed_product(product_id)
    if product is None:
        preview = catalogue.preview_product(product_id)
        if preview is None or not may_preview(preview["producer_id"]):
            abort(404)
        return render_template("shop/product.html", product=preview, form=None, preview=True,
                               offer=load_offers([preview["producer_id"]])[preview["producer_id"]])
    # The add form carries no CSRF token, so the page can be cached: /cart/add checks where it came from.
    form = CartAddForm(product_id=product_id, meta={"csrf": False}, quantity=measures.parse_decimal(
        request.args.get("quantity")) or measures.least_quantity(product))
    return render_product(product, form)


def render_product(product, form):
    """The product page, with how its producer's customers get their food; for a customer with an order from
    that producer they may still change, a way to add it to that order."""
    open_orders = []
    if g.user is not None and g.user["role"] == "customer":
        open_orders = [order for order in orders.open_orders_with(g.user["id"], product["producer_id"])
                       if changes.still_open(order)]
    return render_template("shop/product.html", product=product, form=form, open_orders=open_orders,
                           offer=load_offers([product["producer_id"]])[product["producer_id"]])


@app.route("/robots.txt")
def robots_txt():
    """Search engines may read the catalogue, not anyone's account."""
    private = ["/cart", "/checkout", "/orders", "/account", "/dashboard", "/admin", "/password", "/logout"]
    return Response("User-agent: *\n" + "".join(f"Disallow: {path}\n" for path in private) + "Allow: /\n",
                    mimetype="text/plain")


@app.route("/uploads/<name>")
def uploaded_file(name):
    """A stored photo. A name always means the same bytes, so browsers and nginx may keep it for good."""
    photo = images.fetch(name)
    if photo is None:
        abort(404)
    response = Response(photo["data"], mimetype=photo["content_type"])
    response.set_etag(photo["sha256"])
    response.cache_control.public = True
    response.cache_control.max_age = 365 * 24 * 3600
    response.cache_control.immutable = True
    return response.make_conditional(request)


# --- Cart and checkout ------------------------------------------------------

class CartUpdateForm(Form):
    product_id = id_field("Product")
    quantity = quantity_field("Quantity", 0)


WHEN_VALUE = re.compile(r"\d{1,10}@(\d{4}-\d{2}-\d{2}|arranged)\Z")
HUB_WHEN_VALUE = re.compile(r"\d{1,10}@\d{4}-\d{2}-\d{2}\Z")
PHONE_TEXT = re.compile(r"\+?[0-9 ()\-]{6,40}")


def phone_number(form, field):
    if field.data and not PHONE_TEXT.fullmatch(field.data):
        raise ValidationError("Enter a phone number with digits, spaces and an optional + at the start.")


class CheckoutForm(Form):
    """The delivery details; checkout_form() adds one when_<producer_id> choice per producer group."""
    delivery_address = TextAreaField("Delivery address", filters=[strip_text],
                                     validators=[Length(max=500, message="Keep the address under 500 characters.")])
    postcode = StringField("Postcode", filters=[strip_text], validators=[Length(max=12)])
    phone = StringField("Phone (optional)", filters=[strip_text], validators=[phone_number])
    checkout_key = HiddenField(validators=[Optional(), Regexp(checkout.CHECKOUT_KEY)])

    def validate(self, extra_validators=None):
        valid = super().validate(extra_validators)
        chosen = [group["choice"] for group in self.groups if group["choice"]]
        if any(occurrence.option["kind"] == "delivery" for occurrence in chosen):
            if not self.delivery_address.data:
                self.delivery_address.errors.append("Enter a delivery address, or choose collection.")
                valid = False
            if not fulfilment.full_postcode(self.postcode.data):
                self.postcode.errors.append("Enter the full postcode of the delivery address, like BS1 4DJ.")
                valid = False
            else:
                problems = checkout.delivery_problems(self.groups, self.postcode.data)
                self.postcode.errors.extend(problems)
                valid = valid and not problems
        return valid


def checkout_form(groups, hub_time=None, key=None):
    """The checkout form for these groups: a when_<producer_id> radio group for each producer that can be
    ordered from now, preselected when it offers one occurrence; and, when some deliver to a co-op hub, a
    hub_when radio group for one pick-up for all of them, which makes their own choices needless (hub_time,
    as submitted_hub_time gives it). key: its one-time key, when made already."""
    fields, data = {}, {"checkout_key": key or checkout.new_checkout_key()}
    times = checkout.hub_times(groups)
    if times:
        fields["hub_when"] = RadioField("One pick-up for your whole basket", validate_choice=False, default="",
                                        choices=[SelectChoice("", "Choose for each producer below")]
                                        + [SelectChoice(time["key"], time["when"]) for time in times],
                                        validators=[Optional(), Regexp(HUB_WHEN_VALUE, message="Choose a pick-up time.")])
    for group in groups:
        if not group["offer"].occurrences:
            continue
        name = f"when_{group['producer_id']}"
        refusal = f"Choose when and where to get your order from {group['business_name']}."
        # A hub time chosen (or one no longer on offer, hub_time False) stands for the producers there.
        at_hub = hub_time is False or (hub_time is not None and group["producer_id"] in hub_time["keys"])
        fields[name] = RadioField(
            f"When and where to get your order from {group['business_name']}", validate_choice=False,
            choices=[SelectChoice(o.key, o.key) for o in group["offer"].occurrences],
            validators=[Optional() if at_hub else InputRequired(refusal), Regexp(WHEN_VALUE, message=refusal)])
        if group["choice"]:
            data[name] = group["choice"].key
    form = type("CheckoutForm", (CheckoutForm,), fields)(data=data)
    form.groups, form.hub_times = groups, times
    return form


def submitted_choices():
    """{producer_id: key} from the checkout form's when_<producer_id> fields that hold a well-formed choice."""
    return {int(name[5:]): value for name, value in request.form.items()
            if re.fullmatch(r"when_\d{1,10}", name) and WHEN_VALUE.fullmatch(value)}


def submitted_hub_time(groups):
    """The hub time chosen for the whole basket: None when none was, False when it is not one on offer."""
    key = request.form.get("hub_when") or ""
    if not key:
        return None
    return checkout.find_hub_time(groups, key) or False


def render_cart(form=None, groups=None, http_status=200):
    """The cart: a customer's, with the checkout form; or a guest's basket, with the way to log in and check out.
    A customer's cart as it first shows (no form sent) is kept whole, as a producer's pages are: under its lines'
    values, its producers' offers and its fees (cart_key)."""
    if groups is None:
        lines = (checkout.basket_lines(session.get("basket") or {}) if g.user is None
                 else checkout.cart_lines(g.user["id"]))
        groups = checkout.cart_groups(lines, customer_id=g.user and g.user["id"])
    grand_total, fees_unknown = checkout.cart_summary(groups)
    if form is not None or g.user is None or not app.config["ROW_CACHE_MB"]:
        return render_template("shop/cart.html", groups=groups, form=form or checkout_form(groups),
                               grand_total=grand_total, fees_unknown=fees_unknown), http_status
    key = checkout.new_checkout_key()
    fresh = {TOKEN_MARK: generate_csrf(), CHECKOUT_KEY_MARK: key}
    page_key = repr(("cart", g.user, request.full_path, cart_key(groups)))
    return render_kept_blocks("shop/cart.html", page_key, lambda: (page_key, dict(
        groups=groups, form=checkout_form(groups, key=key), grand_total=grand_total, fees_unknown=fees_unknown)),
        fresh), http_status


CHECKOUT_KEY_MARK = "\x00checkout-key\x00"


def cart_key(groups):
    """What a cart's page shows of its groups, as values: each line's, and in place of its producer's offer and
    the chosen time, the offer's stamp (each offer its worker makes has its own) and the time's key."""
    return [{name: (value.stamp if name == "offer" else value.key if name == "choice" and value else value)
             for name, value in group.items()} for group in groups]


def customer_or_guest(view):
    """A cart page: a customer's cart, or a guest's basket; anyone else is asked to log in as a customer."""
    @functools.wraps(view)
    def wrapped(**kwargs):
        if g.user is not None and g.user["role"] != "customer":
            flash("Please log in with a customer account to buy.", "error")
            return redirect(url_for("login", role="customer", next=url_for("cart")))
        return view(**kwargs)
    return wrapped


@app.route("/cart")
@customer_or_guest
def cart():
    return render_cart()


def same_site_request():
    """Whether this POST comes from one of this site's own pages: the form that adds to a cart carries no
    token, so that catalogue pages stay cacheable, and is guarded by the browser's Origin (or Sec-Fetch-Site,
    or Referer) instead, as OWASP allows. Off where CSRF protection is off, as in tests that post directly."""
    if not app.config.get("WTF_CSRF_ENABLED", True):
        return True
    site = request.host_url.rstrip("/")
    origin = request.headers.get("Origin")
    if origin:
        return origin == site
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site:
        return fetch_site in ("same-origin", "none")
    return (request.referrer or "").startswith(site + "/")


@app.route("/cart/add", methods=["POST"])
@csrf.exempt
@customer_or_guest
def cart_add():
    """Add some of a product to the cart, never more than is in stock: a customer's cart, or a guest's basket,
    who stays on the page they added from."""
    if not same_site_request():
        abort(400, "This form was sent from another site, so nothing was added. Add it from noeari's own page.")
    form = posted_form(CartAddForm, "product_id", lambda form: render_product(
        get_available_product(form.product_id.data), form), flash_errors=False, meta={"csrf": False})
    product = get_available_product(form.product_id.data)
    if refuse_quantity(form, product, form.quantity.data):
        return render_product(product, form), 400
    if g.user is None:
        return add_to_guest_basket(product, form)
    in_cart, new_quantity = checkout.add_to_cart(g.user["id"], product, form.quantity.data)
    added, left = new_quantity - in_cart, measures.how_much(product, product["quantity_available"])
    if added <= 0:
        if product["quantity_available"] <= 0:
            flash(f"Sorry, {product['name']} is out of stock.", "error")
        else:
            flash(f"Only {left} of {product['name']} are in stock, and your cart already holds them all.", "error")
        return render_product(product, form), 409
    if added < form.quantity.data:
        flash(f"Only {left} of {product['name']} are in stock, so {measures.how_much(product, added)} "
              f"could be added; your cart now holds {measures.how_much(product, new_quantity)}.", "warning")
    else:
        flash(f"Added {measures.amount_of(product, added)} to your cart.", "success")
    return redirect(url_for("cart"))


@app.route("/cart/update", methods=["POST"])
@customer_or_guest
def cart_update():
    """Change a cart line's quantity; 0 removes the line."""
    form = posted_form(CartUpdateForm)
    if form.errors:
        return render_cart(http_status=400)
    if g.user is None:
        return update_guest_basket(form.product_id.data, form.quantity.data)
    customer_id, product_id, wanted = g.user["id"], form.product_id.data, form.quantity.data
    line = checkout.cart_line(customer_id, product_id)
    if line is None:
        abort(404)
    if wanted > 0 and line["problem"] and line["problem"].kind == "unavailable":
        flash(f"{line['name']} is no longer available; you can only remove it.", "error")
        return render_cart(http_status=409)
    if wanted > 0 and measures.quantity_problem(line, wanted):
        flash(measures.quantity_problem(line, wanted) + " Your cart is as it was.", "error")
        return render_cart(http_status=400)
    new_quantity = measures.fit(line, wanted, line["quantity_available"])
    checkout.set_cart_quantity(customer_id, product_id, new_quantity)
    flash(*checkout.cart_change_message(line, wanted, new_quantity))
    return redirect(url_for("cart"))


def update_guest_basket(product_id, wanted):
    """Change a line of a guest's basket, capped at the stock; 0 removes it."""
    found = checkout.set_basket_quantity(session.get("basket") or {}, product_id, wanted)
    if found is None:
        abort(404)
    basket, line, now = found
    if wanted > 0 and measures.quantity_problem(line, wanted):
        flash(measures.quantity_problem(line, wanted) + " Your basket is as it was.", "error")
        return render_cart(http_status=400)
    session["basket"] = basket
    message, category = checkout.cart_change_message(line, wanted, now)
    flash(message.replace("your cart", "your basket"), category)
    return redirect(url_for("cart"))


def add_to_guest_basket(product, form):
    """Put a product in a guest's basket, in their session, and take them back where they were."""
    basket, before, now = checkout.add_to_basket(session.get("basket") or {}, product, form.quantity.data)
    back = request.form.get("next") if is_local_url(request.form.get("next")) else url_for(
        "product_page", product_id=product["product_id"])
    if now == before:
        flash(f"{product['name']} could not be added: "
              + ("your basket is full." if len(basket) >= checkout.BASKET_LINES and str(product["product_id"]) not in basket
                 else f"your basket holds all of the {measures.how_much(product, product['quantity_available'])} "
                 "there are."), "error")
        return redirect(back)
    session["basket"] = basket
    capped = now - before < form.quantity.data
    flash(f"Added {measures.amount_of(product, now - before)} to your basket"
          + (f" (only {measures.how_much(product, product['quantity_available'])} in stock)" if capped else "")
          + ". Log in or sign up when you "
          "are ready to check out.", "warning" if capped else "success")
    return redirect(back)


def add_pending_to_cart(customer_id, pending):
    """Add what the customer chose as a guest, now they have logged in, and show them their cart."""
    product = catalogue.listed_product(pending["product_id"])
    if product is None:
        flash("The product you chose before logging in is no longer available.", "warning")
        return redirect(url_for("cart"))
    in_cart, new_quantity = checkout.add_to_cart(customer_id, product, Decimal(pending["quantity"]))
    added = new_quantity - in_cart
    if added > 0:
        flash(f"Added {measures.amount_of(product, added)} to your cart, as you asked before logging in.", "success")
    else:
        flash(f"{product['name']} is out of stock, so it could not be added to your cart.", "warning")
    return redirect(url_for("cart"))


@app.route("/checkout", methods=["POST"], endpoint="checkout")
@customer_login_required
def place_cart():
    """Place the cart as one order per producer, each for the collection or delivery time chosen for it."""
    customer_id, choices = g.user["id"], submitted_choices()
    lines = checkout.cart_lines(customer_id)
    offers = checkout.offers_for(lines)
    groups = checkout.cart_groups(lines, choices, customer_id, offers)
    hub_time = submitted_hub_time(groups)
    if hub_time:
        choices = {**choices, **hub_time["keys"]}
        groups = checkout.cart_groups(lines, choices, customer_id, offers)
    form = checkout_form(groups, hub_time)
    valid = form.validate()
    if hub_time is False:
        (form.hub_when.errors if "hub_when" in form else form.form_errors).append(
            "That pick-up time has just filled up or is no longer open: choose another.")
        if valid:
            return render_cart(form, groups, http_status=409)
    if not valid:
        # Every problem at once: the form's, then what the cart would meet at checkout.
        known = {error for field in form for error in field.errors}
        form.form_errors.extend(problem for problem in checkout.checkout_problems(
            groups, choices, checkout.tidy_postcode(form.postcode.data)) if problem not in known)
        return render_cart(form, groups, http_status=400)
    details = {"delivery_address": mail.address_lines(form.delivery_address.data) or None,
               "postcode": checkout.tidy_postcode(form.postcode.data), "phone": form.phone.data}
    try:
        placed = checkout.place_orders(customer_id, choices, details, form.checkout_key.data, offers)
    except checkout.CheckoutRefused as refusal:
        form.form_errors.extend(refusal.problems + ["Nothing was ordered. Change your cart and try again."])
        return render_cart(form, checkout.cart_groups(checkout.cart_lines(customer_id), choices, customer_id),
                           http_status=409)
    except db.Busy:
        flash("Checkout is very busy right now and nothing was ordered. Please try again.", "error")
        return render_cart(form, groups, http_status=503)
    if placed.repeated:
        flash("This checkout was sent twice; it was placed once, and these are its orders.", "info")
    for problem in placed.held:
        flash(f"Not ordered yet, and still in your cart: {problem}", "warning")
    if placed.paying:
        return redirect(url_for("pay_checkout", key=placed.key))
    return redirect(url_for("checkout_done", key=placed.key))


def origin(url):
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class CardForm(Form):
    card_token = StringField("Card", validators=[
        DataRequired("Enter your card details."), Regexp(r"^tok_[A-Za-z0-9_]{1,60}$", message="Enter your card details.")])


def render_pay(key, form=None, http_status=200, intent=None):
    """The card step of a checkout: its orders waiting, the total, and the card form (Stripe.js)."""
    payment = payments.checkout_payment(g.user["id"], key) if checkout.CHECKOUT_KEY.fullmatch(key) else None
    if payment is None:
        abort(404)
    if payment["status"] in ("paid", "authorized") and intent is None:
        return redirect(url_for("checkout_done", key=key))
    config = app.config
    g.content_security_policy = (f"{CONTENT_SECURITY_POLICY}; script-src 'self' {origin(config['STRIPE_JS_URL'])}; "
                                 f"connect-src 'self' {origin(config['STRIPE_API_BASE'])}; "
                                 f"frame-src {origin(config['STRIPE_JS_URL'])}")
    return render_template("shop/pay.html", payment=payment, key=key, form=form or CardForm(formdata=None),
                           intent=intent), http_status


@app.route("/checkout/<key>/pay", methods=["GET", "POST"])
@customer_login_required
def pay_checkout(key):
    """Pay a checkout's card-paid orders: each card submitted is one attempt, never charged twice."""
    if request.method == "GET":
        return render_pay(key)
    form = CardForm()
    if not form.validate():
        return render_pay(key, form, 400)
    try:
        intent = payments.charge(g.user["id"], key, form.card_token.data)
    except payments.PaymentRefused as refusal:
        form.card_token.errors = [refusal.problem]
        return render_pay(key, form, 402)
    except stripe.StripeError:
        form.card_token.errors = ["The card service did not answer, and nothing was charged. Please try again."]
        return render_pay(key, form, 503)
    if intent is None:
        abort(404)
    if intent.status == "requires_action":
        return render_pay(key, intent=intent)
    return redirect(url_for("checkout_done", key=key))


@app.route("/checkout/<key>/return", methods=["POST"])
@customer_login_required
def pay_return(key):
    """Back from the card's own check (3-D Secure): the orders are placed if Stripe says it was paid."""
    try:
        payment = payments.confirm_return(g.user["id"], key) if checkout.CHECKOUT_KEY.fullmatch(key) else None
    except stripe.StripeError:
        flash("The card service did not answer. If your card was charged, your orders will show as paid shortly.",
              "error")
        return redirect(url_for("pay_checkout", key=key))
    if payment is None:
        abort(404)
    if payment["status"] not in ("paid", "authorized"):
        form = CardForm(formdata=None)
        form.card_token.errors = ["The payment was not completed, and nothing was charged. Try again or use another card."]
        return render_pay(key, form, 402)
    return redirect(url_for("checkout_done", key=key))


@app.route("/stripe/webhook", methods=["POST"])
@csrf.exempt
def stripe_webhook():
    """Stripe's events, verified by their signature, each kept and handled once."""
    try:
        outcome = payments.receive_event(request.get_data(), request.headers.get("Stripe-Signature", ""))
    except payments.BadSignature:
        return Response('{"title": "The signature does not verify."}', status=400,
                        mimetype="application/problem+json")
    return {"outcome": outcome}


@app.route("/checkout/<key>")
@customer_login_required
def checkout_done(key):
    """What one checkout placed: each order with its producer, place, time, fee, total, and how to pay."""
    placed = orders.checkout_orders(g.user["id"], key) if checkout.CHECKOUT_KEY.fullmatch(key) else []
    if not placed:
        abort(404)
    payment = payments.checkout_payment(g.user["id"], key) if any(
        order["payment_method"] == "card" for order in placed) else None
    if payment and payment["status"] == "awaiting":
        return redirect(url_for("pay_checkout", key=key))
    if payment and payment["status"] == "released":
        placed = [order for order in placed if order["order_id"] not in payments.waiting_orders(payment["payment_id"])]
        flash("Your card payment did not come through in time, so those orders were let go; their items are still "
              "in your cart.", "warning")
        if not placed:
            return redirect(url_for("cart"))
    return render_template("shop/placed.html", orders=placed,
                           total=sum((order["total"] for order in placed), Decimal("0.00")))


# --- Orders -----------------------------------------------------------------

def get_own_order(order_id):
    """One of the logged-in user's orders with both parties' names, its lines and history, or abort with 404."""
    order = orders.load_own_order(g.user["role"], g.user["id"], order_id)
    if order is None:
        abort(404)
    return order


@app.route("/orders")
@customer_login_required
def customer_orders():
    """The customer's orders, newest first."""
    page = page_number()
    rows, total = orders.order_page("customer", g.user["id"], page)
    return render_template("shop/orders.html", orders=rows, baskets=hubs.upcoming_baskets(g.user["id"]),
                           **paginate(total, orders.ORDERS_PER_PAGE, page))


def render_customer_order(order_id, line_form=None, add_form=None, http_status=200):
    """The customer's order page; while they may change it, with its forms and their producer's products."""
    order = get_own_order(order_id)
    problem = changes.customer_edit_problem(order)
    products = catalogue.producer_listing(order["producer_id"]) if problem is None else []
    times = changes.move_choices(order) if problem is None and order["option_id"] and not order["basket_id"] else []
    return render_template("shop/order.html", order=order, edit_problem=problem, products=products, times=times,
                           add_form=add_form or OrderAddForm(formdata=None)), http_status


@app.route("/orders/<int:order_id>")
@customer_login_required
def customer_order(order_id):
    return render_customer_order(order_id)


class OrderLineForm(Form):
    quantity = quantity_field("Quantity", 0)


class OrderAddForm(Form):
    product_id = id_field("Product")
    quantity = quantity_field("Quantity", 1, default=1)


def change_order(order_id, form_class, change, message):
    """A customer's change to their order: read form_class, apply change(form) (in changes.py), and answer with
    the order page at 400 or 409 saying why (nothing changed), or back to it with message(result, form)."""
    form = posted_form(form_class)
    if form.errors:
        return render_customer_order(order_id, add_form=form if form_class is OrderAddForm else None, http_status=400)
    try:
        result = change(form)
    except changes.ChangeRefused as refusal:
        flash(refusal.problem, "error")
        return render_customer_order(order_id, http_status=409)
    said = message(result, form)
    if said:
        flash(said, "success")
    return redirect(url_for("customer_order", order_id=order_id))


def line_message(order_id, line, form):
    if form.quantity.data == 0:
        return f"{line['name']} was removed from order #{order_id}."
    if form.quantity.data != line["quantity"]:
        return f"Order #{order_id} now holds {measures.amount_of(line, form.quantity.data)}."
    return None


@app.route("/orders/<int:order_id>/lines/<int:product_id>", methods=["POST"])
@customer_login_required
def change_order_line(order_id, product_id):
    """Change how many of a product the order holds, until ordering closes; 0 removes the line."""
    return change_order(order_id, OrderLineForm,
                        lambda form: changes.change_line(g.user["id"], order_id, product_id, form.quantity.data)[1],
                        lambda line, form: line_message(order_id, line, form))


class OrderWhenForm(Form):
    when = StringField("New time", validators=[InputRequired("Choose a time."),
                                               Regexp(WHEN_VALUE, message="Choose one of the times listed.")])


@app.route("/orders/<int:order_id>/when", methods=["POST"])
@customer_login_required
def move_order(order_id):
    """Move the order to another open time of its producer, until ordering closes."""
    return change_order(order_id, OrderWhenForm, lambda form: changes.move(g.user["id"], order_id, form.when.data),
                        lambda occurrence, form: f"Order #{order_id} is now for {occurrence.option['name']}, "
                                                 f"{occurrence.when}.")


def render_basket(basket_id, form=None, http_status=200):
    """A customer's basket at a co-op pick-up: its place and time, each producer's order in it, and the way to
    move it while its orders can change."""
    basket = hubs.customer_basket(g.user["id"], basket_id)
    if basket is None:
        abort(404)
    problem = hubs.basket_move_problem(basket)
    return render_template("shop/basket.html", basket=basket, move_problem=problem,
                           times=hubs.basket_times(basket) if problem is None else [],
                           form=form or BasketMoveForm(formdata=None)), http_status


@app.route("/baskets/<int:basket_id>")
@customer_login_required
def customer_basket(basket_id):
    return render_basket(basket_id)


class BasketMoveForm(Form):
    when = StringField("Move the basket to", validators=[InputRequired("Choose a time."),
                                                         Regexp(HUB_WHEN_VALUE, message="Choose one of the times listed.")])


@app.route("/baskets/<int:basket_id>/when", methods=["POST"])
@customer_login_required
def move_basket(basket_id):
    """Move the whole basket, each order in it, to another time at its pick-up, until ordering closes."""
    form = posted_form(BasketMoveForm)
    if form.errors:
        return render_basket(basket_id, form, http_status=400)
    try:
        basket = hubs.move_basket(g.user["id"], basket_id, form.when.data)
    except hubs.BasketRefused as refusal:
        flash(refusal.problem, "error")
        return render_basket(basket_id, form, http_status=409)
    if basket is None:
        abort(404)
    flash(f"Your basket is now for {basket['when']} at {basket['name']}; each producer has been told.", "success")
    return redirect(url_for("customer_basket", basket_id=basket_id))


@app.route("/orders/<int:order_id>/add", methods=["POST"])
@customer_login_required
def add_to_order(order_id):
    """Add a product of the same producer to the order, until ordering closes."""
    return change_order(order_id, OrderAddForm,
                        lambda form: changes.add_line(g.user["id"], order_id, form.product_id.data, form.quantity.data),
                        lambda product, form: f"Added {measures.amount_of(product, form.quantity.data)} to order "
                                              f"#{order_id}.")


@app.route("/orders/<int:order_id>/cancel", methods=["POST"])
@customer_login_required
def cancel_order(order_id):
    """Cancel one of the customer's orders until ordering closes, unless the producer has it ready."""
    order, changed = orders.change_order_status("customer", g.user["id"], order_id, "cancelled")
    if not changed:
        cutoff = orders.order_cutoff(order)
        if order["status"] == "pending" and cutoff is not None:
            flash(f"Ordering for {orders.order_when(order)} closed at {fulfilment.format_stored(cutoff)}, so order "
                  f"#{order_id} can no longer be cancelled here. Please contact the producer.", "error")
        else:
            flash(f"Order #{order_id} is {orders.status_label(order['status'], order['order_type'])} and can no "
                  "longer be cancelled here. Please contact the producer.", "error")
        return render_customer_order(order_id, http_status=409)
    flash(f"Order #{order_id} has been cancelled, and the producer has been told.", "success")
    return redirect(url_for("customer_order", order_id=order_id))


@app.route("/account/balance")
@customer_login_required
def customer_balance():
    """The customer's credit with the co-op and what they owe for orders, with every movement of either."""
    customer_id = g.user["id"]
    return render_template("shop/balance.html", credit=ledger.balance("credit", customer_id),
                           owed=-ledger.balance("receivable", customer_id), history=ledger.customer_history(customer_id))


# --- Dashboard --------------------------------------------------------------

def get_own_product(product_id):
    """The logged-in producer's product (not archived) with its stock, or abort with 404."""
    product = producers.own_product(g.user["id"], product_id)
    if product is None:
        abort(404)
    return product


@app.route("/dashboard")
@producer_login_required
def dashboard():
    """The producer's overview: order counts, newest pending orders, restocking, and products."""
    page = page_number()

    def load():
        found = producers.overview(g.user["id"], page, LIST_PAGE_SIZE)
        return dict(found, **paginate(found["figures"]["products"], LIST_PAGE_SIZE, page))
    return render_kept("dashboard/index.html", load, statuses=orders.ORDER_STATUSES)


def money_amount(minimum, maximum, what="an amount"):
    """A validator for an amount of money from minimum to maximum, with at most two decimals."""
    low, high = Decimal(minimum), Decimal(maximum)

    def check(form, field):
        value = field.data
        if value is None:
            return
        if not value.is_finite() or not low <= value <= high:
            raise ValidationError(f"Enter {what} from {low:.2f} to {high:.2f}.")
        two_decimals(form, field)
    return check


def two_decimals(form, field):
    """A validator for a decimal with at most two decimals (a price, a percentage)."""
    if field.data is not None and field.data.is_finite() and field.data.as_tuple().exponent < -2:
        raise ValidationError("Use at most two decimals, like 3.50.")


def encoded_photo(form, field):
    """Check an uploaded photo and keep it re-encoded on form.encoded_image (None when there is no upload)."""
    form.encoded_image = None
    if field.data and getattr(field.data, "filename", ""):
        try:
            form.encoded_image = images.reencode(field.data.read(images.MAX_IMAGE_BYTES + 1))
        except images.ImageRefused as refusal:
            raise ValidationError(refusal.args[0]) from None


def photo_field(label):
    return FileField(label, description="JPEG, PNG or WebP, up to 5 MB.", validators=[encoded_photo])


class ProductForm(Form):
    name = StringField("Name", filters=[strip_text], validators=[DataRequired(), Length(max=255)])
    description = TextAreaField("Description", filters=[strip_text], validators=[Length(max=5000)])
    category = SelectField("Category", choices=catalogue.CATEGORIES)
    sold_by = RadioField("How it is sold", default="unit",
                         choices=[SelectChoice(code, label) for code, label in measures.SOLD_BY.items()])
    price = DecimalField("Price", places=2, description="A unit's price; per kg, 100 g, litre or count when sold "
                         "by measure; per kg when sold by the item and weighed.",
                         validators=[InputRequired("Enter a price."), money_amount("0.01", "9999.99", "a price")])
    vat_rate = SelectField("VAT rate", choices=invoices.vat_choices, default="zero",
                           description="Prices include it; invoices show it per line. Most food is zero-rated.")
    unit = StringField("Unit", filters=[strip_text], description="For example jar, dozen, loaf, whole chicken.",
                       validators=[DataRequired(), Length(max=30)])
    measure = SelectField("Sold per", choices=[SelectChoice(code, measure.label)
                                                for code, measure in measures.MEASURES.items()], default="kg")
    step = QuantityField("Bought in steps of", description="In the measure: 0.25 for quarter kilos, 100 for 100 g.",
                         validators=[Optional()])
    min_quantity = QuantityField("At least", description="Leave blank for one step.", validators=[Optional()])
    max_quantity = QuantityField("At most", description="Leave blank for no limit.", validators=[Optional()])
    estimated_weight = QuantityField("Estimated weight of one item (kg)", description="Like 1.8.",
                                     validators=[Optional()])
    tolerance_percent = QuantityField("Most a customer pays over the estimate (%)", default=Decimal(10),
                                      description="A heavier item costs them no more than this over its estimate.",
                                      validators=[Optional()])
    quantity_available = quantity_field("Stock on hand", 0)
    quantity_seen = HiddenField()
    reorder_threshold = quantity_field("Reorder when stock falls to", 0)
    is_available = BooleanField("Show in the catalogue")
    image = photo_field("Photo")

    def validate(self, extra_validators=None):
        valid = super().validate(extra_validators)
        if not valid:
            return False
        for name, problem in measures.selling_problems(product_fields(self)).items():
            self[name].errors = list(self[name].errors) + [problem]
        rules = dict(product_fields(self), **measures.selling_values(product_fields(self)))
        for name in ("quantity_available", "reorder_threshold"):
            problem = measures.stock_problem(rules, self[name].data)
            if problem:
                self[name].errors = list(self[name].errors) + [problem]
        return not any(self[name].errors for name in self._fields)


PRODUCT_FIELDS = ("name", "description", "category", "price", "unit", "is_available", "quantity_available",
                  "reorder_threshold", "sold_by", "measure", "step", "min_quantity", "max_quantity",
                  "estimated_weight", "tolerance_percent", "vat_rate")


def product_fields(form):
    """The product's fields from its form, as producers.py takes them."""
    return {name: form[name].data for name in PRODUCT_FIELDS}


@app.route("/dashboard/products/new", methods=["GET", "POST"])
@producer_login_required
def new_product():
    """Create a product with its stock row, and optionally a photo."""
    form = ProductForm(data={"is_available": True, "reorder_threshold": Decimal(5), "quantity_available": Decimal(0),
                             "sold_by": "unit", "measure": "kg", "tolerance_percent": Decimal(10),
                             "vat_rate": "zero"})
    if form.validate_on_submit():
        producers.add_product(g.user, product_fields(form), form.encoded_image)
        flash(f"{form.name.data} has been added to your shop.", "success")
        return redirect(url_for("dashboard"))
    return render_template("dashboard/product_form.html", form=form, product=None), form_http_status(form)


@app.route("/dashboard/products/<int:product_id>/edit", methods=["GET", "POST"])
@producer_login_required
def edit_product(product_id):
    """Edit one of the producer's products; stock changes only if the producer changed the number."""
    product = get_own_product(product_id)
    form = ProductForm(data=dict(product, quantity_seen=measures.plain(product["quantity_available"]),
                                 measure=product["measure"] or "kg"))
    if form.validate_on_submit():
        producers.save_product(g.user, product, product_fields(form), form.quantity_seen.data, form.encoded_image)
        flash(f"{form.name.data} has been saved.", "success")
        return redirect(url_for("dashboard"))
    return render_template("dashboard/product_form.html", form=form, product=product), form_http_status(form)


def delete_or_archive(kind, row_id):
    """Delete or archive one of the logged-in producer's products or options, or abort with 404."""
    found = producers.delete_or_archive(g.user["id"], kind, row_id)
    if found is None:
        abort(404)
    return found


@app.route("/dashboard/products/<int:product_id>/delete", methods=["POST"])
@producer_login_required
def delete_product(product_id):
    """Delete a product nobody ordered; archive one that was ordered, so order history keeps it."""
    product, archived = delete_or_archive("product", product_id)
    if archived:
        flash(f"{product['name']} has been ordered before, so it was archived instead of deleted: it is gone "
              "from the catalogue and from carts, and stays in order history.", "success")
    else:
        flash(f"{product['name']} was deleted.", "success")
    return redirect(url_for("dashboard"))


@app.route("/dashboard/products/<int:product_id>/availability", methods=["POST"])
@producer_login_required
def toggle_availability(product_id):
    """Show or hide a product in the catalogue, then go back to the dashboard page it was changed on."""
    product = get_own_product(product_id)
    producers.toggle_availability(g.user["id"], product_id)
    shown = not product["is_available"]
    flash(f"{product['name']} is now {'shown in' if shown else 'hidden from'} the catalogue.", "success")
    return redirect_to_next(request.form.get("next"), url_for("dashboard"))


class StockForm(Form):
    product_id = id_field("Product")
    quantity = quantity_field("Quantity available", 0)


@app.route("/dashboard/update-stock", methods=["POST"])
@producer_login_required
def update_stock():
    """Set how many of one of the producer's own products are in stock."""
    form = posted_form(StockForm, "product_id", lambda form: render_template(
        "dashboard/stock.html", product=get_own_product(form.product_id.data)))
    product = get_own_product(form.product_id.data)
    problem = measures.stock_problem(product, form.quantity.data)
    if problem:
        flash(problem, "error")
        return render_template("dashboard/stock.html", product=product), 400
    producers.set_stock(product["product_id"], form.quantity.data)
    flash(f"Stock of {product['name']} is now {measures.how_much(product, form.quantity.data)}.", "success")
    if not product["is_available"]:
        flash(f"{product['name']} is still hidden from the catalogue: choose Show in its row to put it on sale.",
              "warning")
    return redirect(url_for("dashboard"))


class OrderStatusForm(Form):
    order_id = id_field("Order")
    status = SelectField("New status", choices=orders.ORDER_STATUSES)


@app.route("/dashboard/update-order-status", methods=["POST"])
@producer_login_required
def update_order_status():
    """Move an order holding the producer's products to its next status; a refusal answers on the order's page."""
    form = posted_form(OrderStatusForm, "order_id", lambda form: render_producer_order(form.order_id.data)[0])
    new_status = form.status.data
    order, changed = orders.change_order_status("producer", g.user["id"], form.order_id.data, new_status)
    label = orders.status_label
    if not changed:
        if new_status == "completed" and order["fulfilment_date"] and order["fulfilment_date"] > fulfilment.local_today():
            flash(f"Order #{order['order_id']} is for {fulfilment.format_date(order['fulfilment_date'], 'weekday')}: it "
                  f"cannot be marked {label(new_status, order['order_type']).lower()} before that day.", "error")
        else:
            flash(f"Order #{order['order_id']} is {label(order['status'], order['order_type'])}; "
                  f"it cannot move to {label(new_status, order['order_type'])}.", "error")
        return render_producer_order(order["order_id"], http_status=409)
    flash(f"Order #{order['order_id']} is now {label(new_status, order['order_type'])}.", "success")
    return redirect_to_next(request.form.get("next"), url_for("dashboard"))


def status_filter():
    """The ?status= filter when it names a status, else None (all orders)."""
    status = request.args.get("status", "")
    return status if status in orders.ORDER_STATUSES else None


@app.route("/dashboard/orders")
@producer_login_required
def producer_orders():
    """The producer's orders, newest first, filtered by status, 25 a page."""
    page, status = page_number(), status_filter()
    rows, total = orders.order_page("producer", g.user["id"], page, per_page=LIST_PAGE_SIZE, status=status)
    return render_template("dashboard/orders.html", orders=rows, **paginate(total, LIST_PAGE_SIZE, page),
                           status=status, statuses=orders.ORDER_STATUSES)


@app.route("/dashboard/orders/<int:order_id>")
@producer_login_required
def producer_order(order_id):
    """One of the producer's orders: lines, total, address, history and the next steps."""
    return render_producer_order(order_id)


def render_producer_order(order_id, shortage_form=None, http_status=200, weight_problems=None):
    order = get_own_order(order_id)
    return render_template("dashboard/order.html", order=order, shortage_form=shortage_form or ShortageForm(formdata=None),
                           can_short=order["status"] in changes.PRODUCER_EDITABLE,
                           can_refund=order["status"] in changes.REFUNDABLE,
                           can_weigh=order["status"] in changes.WEIGHABLE, weight_problems=weight_problems or {},
                           entered=request.form if weight_problems else {}), http_status


class ShortageForm(Form):
    quantity = quantity_field("Quantity supplied", 0)
    reason = StringField("Why, for the customer", filters=[strip_text], validators=[
        DataRequired("Say why, so the customer knows."), Length(max=200)])


def lower_line(order_id, product_id, change, message):
    """A producer's shortage or refund of a line: read ShortageForm, apply change (in changes.py), and answer
    with the order page at 400 or 409 saying why (nothing changed), or back to it with message(line, quantity)."""
    form = posted_form(ShortageForm, flash_errors=False)
    if form.errors:
        return render_producer_order(order_id, shortage_form=form, http_status=400)
    try:
        line = change(g.user["id"], order_id, product_id, form.quantity.data, form.reason.data)
    except changes.ChangeRefused as refusal:
        flash(refusal.problem, "error")
        return render_producer_order(order_id, http_status=409)
    flash(message(line, form.quantity.data), "success")
    return redirect(url_for("producer_order", order_id=order_id))


@app.route("/dashboard/orders/<int:order_id>/lines/<int:product_id>", methods=["POST"])
@producer_login_required
def record_shortage(order_id, product_id):
    """Supply less of a line than was ordered (down to 0), saying why: stock, total and fee follow."""
    return lower_line(order_id, product_id, changes.record_shortage, lambda line, quantity: (
        f"Order #{order_id} now supplies {measures.how_much(line, quantity)} of "
        f"{measures.amount_of(line, line['quantity'])}; the customer has been told."))


@app.route("/dashboard/orders/<int:order_id>/refunds/<int:product_id>", methods=["POST"])
@producer_login_required
def refund_line(order_id, product_id):
    """After handing an order over, charge for less of a line (down to 0), saying why: the difference goes to
    the customer's credit and a credit note is issued."""
    return lower_line(order_id, product_id, changes.refund_line, lambda line, quantity: (
        f"Order #{order_id} now charges for {measures.how_much(line, quantity)} of "
        f"{measures.amount_of(line, line['quantity'])}; the difference is in the customer's credit, and they have "
        "been sent a credit note."))


class WeightsForm(Form):
    """The actual weights of weighed lines, in inputs named weight-<order_id>-<product_id> (read by
    posted_weights), and the lines whose weight over the tolerance the producer confirms."""
    confirm = SelectMultipleField("Confirm", validate_choice=False)


WEIGHT_INPUT = re.compile(r"weight-(\d{1,10})-(\d{1,10})\Z")
WEIGHT_KEY = re.compile(r"(\d{1,10})-(\d{1,10})\Z")


def posted_weights():
    """The weights filled in, {(order_id, product_id): kg}, and {"<order_id>-<product_id>": sentence} for those
    that are not numbers. Blank inputs are lines not weighed yet."""
    weights, problems = {}, {}
    for name, text in request.form.items():
        match = WEIGHT_INPUT.match(name)
        if match and text.strip():
            number = measures.parse_decimal(text)
            if number is None:
                problems[f"{match[1]}-{match[2]}"] = measures.WeightCheck(
                    "Enter the weight in kg as a number, like 1.85.", False)
            else:
                weights[int(match[1]), int(match[2])] = number
    return weights, problems


def save_weights(lines, render, back):
    """Record the weights posted for lines (the weighed lines of the page, as (order_id, product_id)): answer with
    render(problems, status) saying what is wrong (nothing recorded), or back to the page."""
    form = posted_form(WeightsForm)
    if form.errors:
        return render({}, 400)
    weights, problems = posted_weights()
    if not set(weights) <= set(lines):
        abort(error_page(400, "Those weights are not for lines on this page; go back and try again."))
    confirmed = {(int(match[1]), int(match[2])) for match in map(WEIGHT_KEY.match, form.confirm.data or []) if match}
    if not problems and not weights:
        flash("Enter at least one weight.", "error")
        return render({}, 400)
    try:
        if problems:
            raise changes.WeightsRefused(problems)
        changed = changes.record_weights(g.user["id"], weights, confirmed)
    except changes.WeightsRefused as refusal:
        flash("Nothing was saved: check the weights marked below.", "error")
        return render({key if isinstance(key, str) else f"{key[0]}-{key[1]}": check
                       for key, check in refusal.problems.items()}, 400)
    except changes.ChangeRefused as refusal:
        flash(refusal.problem, "error")
        return render({}, 409)
    flash(f"Recorded {len(changed)} weight{'' if len(changed) == 1 else 's'}; each line is repriced. A customer "
          "is emailed their final total once all their order's weighed items have weights." if changed
          else "The weights were already recorded; nothing changed.", "success")
    return redirect(back)


@app.route("/dashboard/orders/<int:order_id>/weights", methods=["POST"])
@producer_login_required
def order_weights(order_id):
    """Enter or correct the actual weights of the order's weighed lines, until it is handed over."""
    order = get_own_order(order_id)
    lines = [(order_id, line["product_id"]) for line in order["lines"] if line["sold_by"] == "weighed"]
    return save_weights(lines, lambda problems, status: render_producer_order(
        order_id, http_status=status, weight_problems=problems), url_for("producer_order", order_id=order_id))


def csv_safe(value):
    """Neutralise a cell a spreadsheet would run as a formula."""
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def csv_response(filename, columns, rows):
    """A spreadsheet download of rows under a header of columns, streamed about 32 KB at a time; text cells
    that a spreadsheet would run as a formula are neutralised."""
    def chunks():
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(columns)
        for row in rows:
            writer.writerow([csv_safe(value) if isinstance(value, str) else value for value in row])
            if buffer.tell() > 32_768:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue()
    return Response(chunks(), mimetype="text/csv", headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def order_filters():
    """The ?status=, ?from= and ?to= filters of an order list (the days orders were placed on, in TIMEZONE),
    as orders.order_filter takes them."""
    return {"status": status_filter(), "placed_from": date_arg("from"), "placed_to": date_arg("to")}


def date_arg(name):
    """The ?name=YYYY-MM-DD date, None when empty; abort with 400 when malformed or out of range."""
    value = request.args.get(name, "")
    return checked_date(value, f"{name!r} date") if value else None


@app.route("/dashboard/orders.csv")
@producer_login_required
def orders_csv():
    """Download one row per order line, streamed straight from the database."""
    rows = orders.producer_csv_rows(g.user["id"], **order_filters())
    return csv_response(f"noeari-orders-{fulfilment.local_today().isoformat()}.csv", orders.PRODUCER_CSV_COLUMNS, rows)


# --- Profile and fulfilment -------------------------------------------------

def website_url(form, field):
    """An http or https web address."""
    parts = urlsplit(field.data or "")
    if field.data and (parts.scheme not in ("http", "https") or not parts.netloc or re.search(r"\s", field.data)):
        raise ValidationError("Enter a web address that starts with http:// or https://.")


class ProfileForm(Form):
    description = TextAreaField("About you", filters=[strip_text], validators=[Length(max=2000)],
                                description="What you grow or make, and how. Up to 2,000 characters.")
    town = StringField("Town", filters=[strip_text], validators=[Length(max=100)])
    phone = StringField("Phone", filters=[strip_text], validators=[phone_number])
    public_email = EmailField("Email for customers", filters=[normalise_email],
                              validators=[Optional(), Length(max=254), Email("Enter a valid email address.")])
    website = StringField("Website", filters=[strip_text], validators=[Length(max=255), website_url],
                          description="Starting with https://")
    payment_info = TextAreaField("How customers pay", filters=[strip_text], validators=[Length(max=500)],
                                 description="For example “Cash or card at collection; bank transfer on delivery”.")
    legal_name = StringField("Legal name, for invoices", filters=[strip_text], validators=[Length(max=150)],
                             description="Leave blank to use your business name.")
    address = TextAreaField("Business address, for invoices", filters=[strip_text], validators=[Length(max=500)])
    vat_number = StringField("VAT number", filters=[strip_text], validators=[
        Length(max=20), Regexp(r"^$|^[A-Z]{2}[A-Z0-9 ]{2,17}$", message="Write it as it is registered, like GB123456789.")],
        description="Only if you are registered for VAT.")
    invoice_prefix = StringField("Invoice number prefix", filters=[strip_text], validators=[
        Length(max=12), Regexp(r"^[A-Z0-9]*$", message="Use capital letters and digits only, like HARTLEY.")],
        description="Your invoices are numbered PREFIX-2026-00001; blank uses your business name.")
    image = photo_field("Photo or logo")


@app.route("/dashboard/profile", methods=["GET", "POST"])
@producer_login_required
def producer_profile():
    """What customers see about the producer: description, town, contact details, how to pay, a photo."""
    producer = producers.profile(g.user["id"])
    form = ProfileForm(data=producer)
    if form.validate_on_submit():
        producers.save_profile(g.user["id"], producer, {column: form[column].data for column in producers.PROFILE_COLUMNS},
                               form.encoded_image)
        flash("Your profile has been saved.", "success")
        return redirect(url_for("producer_profile"))
    return render_template("dashboard/profile.html", form=form, producer=producer), form_http_status(form)


def money_field(label, minimum, maximum, required=True, description=None):
    validators = [InputRequired("Enter an amount.") if required else Optional(), money_amount(minimum, maximum)]
    return DecimalField(label, places=2, validators=validators, description=description)


class OptionForm(Form):
    kind = RadioField("Kind", choices=[SelectChoice("collection", "Collection: customers come to you"),
                                       SelectChoice("delivery", "Delivery: you bring the order")],
                      validators=[InputRequired("Choose collection or delivery.")])
    name = StringField("Name", filters=[strip_text], validators=[DataRequired(), Length(max=100)],
                       description="For example “Farm gate” or “Saturday market stall”.")
    address = TextAreaField("Collection address", filters=[strip_text], validators=[Length(max=500)],
                            description="For collection only.")
    postcodes = TextAreaField("Postcode areas", filters=[strip_text], validators=[Length(
        max=1000, message="Keep the postcode areas under 1,000 characters.")],
                              description="For delivery only. Separate them with commas, like BS1, BS2, BA.")
    instructions = TextAreaField("Instructions for customers", filters=[strip_text], validators=[Length(max=1000)],
                                 description="Where to park, which door, what to bring.")
    fee = money_field("Fee", "0", "999.99", description="0 for none.")
    minimum_order = money_field("Minimum order", "0", "9999.99", description="0 for none.")
    free_over = money_field("No fee for orders of", "0.01", "9999.99", required=False,
                            description="Leave blank to always charge the fee.")
    cutoff_hours = IntegerField("Ordering closes, hours before the start", default=24, validators=[
        InputRequired("Enter how many hours before the start ordering closes."),
        NumberRange(min=0, max=336, message="Enter a whole number of hours from 0 to 336 (two weeks).")])
    capacity = IntegerField("Orders per slot", validators=[Optional(), NumberRange(
        min=1, max=10_000, message="Enter a whole number of orders from 1 to 10,000, or leave it blank.")],
                            description="Leave blank for no limit.")
    payment_method = RadioField("How customers pay", default="collection", choices=lambda: payment_choices())
    is_active = BooleanField("Taking orders with this option")

    def validate_address(self, field):
        if self.kind.data == "collection" and not field.data:
            raise ValidationError("Enter the address where customers collect.")

    def validate_postcodes(self, field):
        if self.kind.data != "delivery":
            return
        try:
            self.postcode_list = fulfilment.parse_postcodes(field.data)
        except ValueError as refusal:
            raise ValidationError(str(refusal)) from None
        if not self.postcode_list:
            raise ValidationError("List the postcode areas you deliver to, like BS1, BS2, BA.")
        if len(self.postcode_list) > 100:
            raise ValidationError("List at most 100 postcode areas.")


def payment_choices():
    """The ways an option's customers may pay: card only when the co-op takes cards."""
    return [SelectChoice(method, label) for method, label in ledger.PAYMENT_METHODS.items()
            if method != "card" or payments.enabled()]


class JoinHubForm(Form):
    drop_off = StringField("When you bring your orders", filters=[strip_text], validators=[
        DataRequired("Say when you bring your orders, like “by 09:00 on the day”."), Length(max=100)],
        description="Shown to the co-op, like “by 09:00 on the day”.")
    payment_method = RadioField("How customers pay", default="collection", choices=payment_choices)


@app.route("/dashboard/hubs/<int:hub_id>/join", methods=["POST"])
@producer_login_required
def join_hub(hub_id):
    """Deliver to a co-op pick-up from now: its times become one of the producer's options."""
    form = posted_form(JoinHubForm)
    if form.errors:
        return render_fulfilment(http_status=400)
    if hubs.join(g.user["id"], hub_id, form.drop_off.data, form.payment_method.data) is None:
        abort(404)
    flash("You deliver to this co-op pick-up now: customers can choose its times for your products.", "success")
    return redirect(url_for("fulfilment_options"))


@app.route("/dashboard/hubs/<int:hub_id>/leave", methods=["POST"])
@producer_login_required
def leave_hub(hub_id):
    """Stop delivering to a co-op pick-up; orders placed for it keep their place, time and lists."""
    if not hubs.leave(g.user["id"], hub_id):
        abort(404)
    flash("You no longer deliver to that pick-up. Orders already placed for it stay as they are.", "success")
    return redirect(url_for("fulfilment_options"))


class HubProductsForm(Form):
    offered = SelectMultipleField("Products you bring here", coerce=int, validate_choice=True)


def render_hub_products(hub_id, form=None, http_status=200):
    """The producer's products at a co-op pick-up they deliver to, to choose which they bring there."""
    found = hubs.hub_products(g.user["id"], hub_id)
    if found is None:
        abort(404)
    if form is None:
        form = HubProductsForm(formdata=None, data={"offered": [p["product_id"] for p in found["products"]
                                                                 if p["offered"]]})
    return render_template("dashboard/hub_products.html", hub_id=hub_id, place=found, form=form), http_status


@app.route("/dashboard/hubs/<int:hub_id>/products", methods=["GET", "POST"])
@producer_login_required
def hub_products(hub_id):
    """Which of the producer's products customers can collect at a co-op pick-up (all, unless they say)."""
    if request.method == "GET":
        return render_hub_products(hub_id)
    found = hubs.hub_products(g.user["id"], hub_id)
    if found is None:
        abort(404)
    form = HubProductsForm()
    form.offered.choices = [(product["product_id"], product["name"]) for product in found["products"]]
    if not form.validate():
        return render_hub_products(hub_id, form, http_status=400)
    offered = hubs.offer_products(g.user["id"], hub_id, form.offered.data or [])
    if offered is None:
        abort(404)
    flash(f"You bring {offered} of your {len(found['products'])} products to {found['name']}; customers with "
          "the others in their cart choose another time or place for them.", "success")
    return redirect(url_for("fulfilment_options"))


def option_values(form):
    """The option's columns from its form; a collection keeps no postcodes and a delivery no address."""
    delivery = form.kind.data == "delivery"
    values = {field: form[field].data for field in producers.OPTION_FIELDS if field != "postcodes"}
    return dict(values, address=None if delivery else form.address.data, instructions=form.instructions.data or "",
                postcodes=", ".join(form.postcode_list) if delivery else None, is_active=int(form.is_active.data))


def get_own_option(option_id, editing=False):
    """One of the logged-in producer's options (not archived) with its slots, or abort with 404; when editing,
    abort with 409 for their place at a co-op pick-up, whose place and times the co-op sets."""
    option = producers.own_option(g.user["id"], option_id)
    if option is None:
        abort(404)
    if editing and option["hub_id"] is not None:
        abort(error_page(409, f"{option['name']} is your place at a co-op pick-up: the co-op sets its place and "
                              "times. To stop delivering there, leave it on your collection and delivery page.",
                         "Set by the co-op"))
    return option


class ClosedDaysForm(Form):
    """Days to close, from today on and up to two years ahead: a producer's, or a co-op pick-up's."""
    start_date = DateField("First closed day", validators=[InputRequired("Enter the first closed day."), date_in_range])
    end_date = DateField("Last closed day", validators=[InputRequired("Enter the last closed day."), date_in_range])
    note = StringField("Note", filters=[strip_text], validators=[Length(max=200)],
                       description="For example “Summer holiday”; customers do not see it.")

    def validate_end_date(self, field):
        today, start = fulfilment.local_today(), self.start_date.data
        if start is None or field.data is None:
            return
        if field.data < start:
            raise ValidationError("The last closed day cannot be before the first.")
        if field.data < today:
            raise ValidationError("Those days are over already: choose days from today on.")
        if field.data > today + datetime.timedelta(days=2 * 366):
            raise ValidationError("Closed days can be set up to two years ahead.")


class ClosureForm(ClosedDaysForm):
    orders_action = RadioField("Orders on those days", validators=[Optional()], choices=[
        SelectChoice("move", "Move them to another time"), SelectChoice("cancel", "Cancel them")])
    move_collection = StringField("Move collections to", validators=[Optional(), Regexp(WHEN_VALUE)])
    move_delivery = StringField("Move deliveries to", validators=[Optional(), Regexp(WHEN_VALUE)])


def render_fulfilment(closure_form=None, http_status=200, affected=()):
    """The producer's options with their slots, and their closed dates ahead; with the orders a closure being
    added would leave on closed days (affected), the open times they may move to."""
    producer_id = g.user["id"]
    offer = load_offers([producer_id])[producer_id] if producers.has_options(producer_id) else catalogue.Offer([], [])
    times = {}
    if affected:
        form = closure_form
        for occurrence in changes.open_times_outside(producer_id, form.start_date.data, form.end_date.data):
            times.setdefault(occurrence.option["kind"], []).append(occurrence)
    return render_template("dashboard/fulfilment.html", offer=offer, closures=producers.closures_ahead(producer_id),
                           hubs=hubs.producer_hubs(producer_id), join_form=JoinHubForm(formdata=None),
                           closure_form=closure_form or ClosureForm(), weekdays=fulfilment.WEEKDAYS,
                           affected=affected, times=times,
                           kinds=sorted({order["order_type"] for order in affected})), http_status


@app.route("/dashboard/fulfilment")
@producer_login_required
def fulfilment_options():
    return render_fulfilment()


@app.route("/dashboard/fulfilment/new", methods=["GET", "POST"])
@producer_login_required
def new_option():
    """A new collection point or delivery zone; its weekly times are added on its own page."""
    form = OptionForm(data={"kind": "collection", "fee": Decimal("0.00"), "minimum_order": Decimal("0.00"),
                            "cutoff_hours": 24, "is_active": True})
    if form.validate_on_submit():
        option_id = producers.add_option(g.user["id"], option_values(form))
        flash(f"{form.name.data} is set up. Add its weekly times below, or add none to take orders by arrangement.",
              "success")
        return redirect(url_for("edit_option", option_id=option_id))
    return render_template("dashboard/option_form.html", form=form, option=None), form_http_status(form)


def clock_time(form, field):
    if not re.fullmatch(r"([01][0-9]|2[0-3]):[0-5][0-9]", field.data or ""):
        raise ValidationError("Enter a time as HH:MM, from 00:00 to 23:59.")


class DayField(SelectField):
    """A day of the week, 0 = Monday to 6 = Sunday; anything else is refused with words that say so."""

    def __init__(self, label, **kwargs):
        super().__init__(label, choices=[SelectChoice(n, day) for n, day in enumerate(fulfilment.WEEKDAYS)], coerce=int,
                         **kwargs)

    def process_formdata(self, valuelist):
        try:
            super().process_formdata(valuelist)
        except ValueError:
            self.data = None

    def pre_validate(self, form):
        if self.data not in range(7):
            raise ValidationError("Choose a day from Monday (0) to Sunday (6).")


class SlotForm(Form):
    weekday = DayField("Day")
    start = StringField("From", filters=[strip_text], validators=[InputRequired("Enter a start time."), clock_time])
    end = StringField("Until", filters=[strip_text], validators=[InputRequired("Enter an end time."), clock_time])

    def validate_end(self, field):
        if not self.start.errors and not field.errors and field.data <= self.start.data:
            raise ValidationError("The end must be after the start, on the same day.")


def render_option(option, form, slot_form=None, http_status=200):
    return render_template("dashboard/option_form.html", option=option, form=form,
                           slot_form=slot_form or SlotForm(formdata=None), weekdays=fulfilment.WEEKDAYS), http_status


@app.route("/dashboard/fulfilment/<int:option_id>/edit", methods=["GET", "POST"])
@producer_login_required
def edit_option(option_id):
    """Edit an option; orders placed already keep what they were promised."""
    option = get_own_option(option_id, editing=True)
    form = OptionForm(data=option)
    if form.validate_on_submit():
        producers.save_option(g.user["id"], option_id, option_values(form))
        flash(f"{form.name.data} has been saved.", "success")
        return redirect(url_for("fulfilment_options"))
    return render_option(option, form, http_status=form_http_status(form))


@app.route("/dashboard/fulfilment/<int:option_id>/delete", methods=["POST"])
@producer_login_required
def delete_option(option_id):
    """Delete an option no order used; archive one that was used, so its orders keep what they were promised."""
    get_own_option(option_id, editing=True)
    option, archived = delete_or_archive("option", option_id)
    flash(f"{option['name']} was used by orders, so it was archived: customers no longer see it, and its orders "
          "keep what they were promised." if archived else f"{option['name']} was deleted.", "success")
    return redirect(url_for("fulfilment_options"))


@app.route("/dashboard/fulfilment/<int:option_id>/slots", methods=["POST"])
@producer_login_required
def add_slot(option_id):
    """Add a weekly time to an option."""
    option = get_own_option(option_id, editing=True)
    slot_form = SlotForm()
    if not slot_form.validate():
        return render_option(option, OptionForm(formdata=None, data=option), slot_form, http_status=400)
    producers.add_slot(option_id, slot_form.weekday.data, slot_form.start.data, slot_form.end.data)
    flash(f"{option['name']} now runs {fulfilment.WEEKDAYS[slot_form.weekday.data]}s "
          f"{slot_form.start.data}–{slot_form.end.data}.", "success")
    return redirect(url_for("edit_option", option_id=option_id))


@app.route("/dashboard/fulfilment/<int:option_id>/slots/<int:slot_id>/delete", methods=["POST"])
@producer_login_required
def delete_slot(option_id, slot_id):
    """Remove a weekly time; orders already placed for it keep their date and time."""
    option = get_own_option(option_id, editing=True)
    if not producers.delete_slot(option_id, slot_id):
        abort(404)
    flash(f"That time was removed from {option['name']}.", "success")
    return redirect(url_for("edit_option", option_id=option_id))


@app.route("/dashboard/closures", methods=["POST"])
@producer_login_required
def add_closure():
    """Close for some days: no slot is offered on them."""
    form = ClosureForm()
    if not form.validate():
        return render_fulfilment(form, http_status=400)
    start, end = form.start_date.data, form.end_date.data
    keys = {"collection": form.move_collection.data, "delivery": form.move_delivery.data}
    try:
        settled = changes.close_days(g.user["id"], start, end, form.note.data, form.orders_action.data, keys)
    except changes.ChangeRefused as refusal:
        flash(refusal.problem, "error")
        return render_fulfilment(form, http_status=409, affected=changes.orders_on_days(g.user["id"], start, end))
    flash(f"Closed from {fulfilment.format_date(start, 'weekday')} to {fulfilment.format_date(end, 'weekday')}: "
          "no collection or delivery is offered on those days.", "success")
    if settled:
        numbers = ", ".join(f"#{order['order_id']}" for order in settled)
        done = "moved" if form.orders_action.data == "move" else "cancelled"
        flash(f"{numbers} {done}; each customer has been emailed.", "success")
    return redirect(url_for("fulfilment_options"))


@app.route("/dashboard/closures/<int:closure_id>/delete", methods=["POST"])
@producer_login_required
def delete_closure(closure_id):
    if not producers.delete_closure(g.user["id"], closure_id):
        abort(404)
    flash("Those days are open again.", "success")
    return redirect(url_for("fulfilment_options"))


# --- The producer's week ----------------------------------------------------

@app.route("/dashboard/schedule")
@producer_login_required
def schedule():
    """The days ahead with orders: each occurrence with its order count and goods, and orders by arrangement."""
    occurrences, arranged = producers.schedule(g.user["id"])
    return render_template("dashboard/schedule.html", occurrences=occurrences, arranged=arranged)


@app.route("/dashboard/schedule/<date:day>")
@producer_login_required
def schedule_day(day):
    """The day's packing lists: what to pick and pack, then each order with its customer's details."""
    return render_kept("dashboard/day.html", lambda: dict(day_values(day), bulk_form=BulkStatusForm(formdata=None)),
                       day=day, weighable=changes.WEIGHABLE, weight_problems={}, entered={})


def render_day(day, bulk_form, weight_problems=None, http_status=200):
    """The day's packing list again, after a form on it was refused."""
    return render_template("dashboard/day.html", day=day, **day_values(day), bulk_form=bulk_form,
                           weighable=changes.WEIGHABLE, weight_problems=weight_problems or {},
                           entered=request.form if weight_problems else {}), http_status


def day_values(day):
    """What the day's packing list shows: its orders (also grouped by window), what to pick, and the cancelled."""
    rows, picks, cancelled = day_packing_list(day)
    return {"orders": rows, "picks": picks, "cancelled": cancelled,
            "groups": [(when, list(same)) for when, same in itertools.groupby(rows, key=orders.order_when)]}


@app.route("/dashboard/schedule/<date:day>/weights", methods=["POST"])
@producer_login_required
def schedule_day_weights(day):
    """Enter the actual weights of the day's weighed lines in one submit, in the order the producer packs."""
    rows, _, _ = day_packing_list(day)
    lines = [(order["order_id"], line["product_id"]) for order in rows for line in order["lines"]
             if line["sold_by"] == "weighed"]
    return save_weights(lines, lambda problems, status: render_day(
        day, BulkStatusForm(formdata=None), problems, status), url_for("schedule_day", day=day))


class BulkStatusForm(Form):
    """The day's list with a box per order: the chosen ones move to one status, each as if moved alone."""
    order_id = SelectMultipleField("Orders", coerce=int, validate_choice=False,
                                   validators=[DataRequired("Choose at least one order.")])
    status = SelectField("New status", choices=[SelectChoice(status, orders.STATUS_LABELS[status])
                                                for status in orders.ORDER_STATUSES if status != "pending"])


@app.route("/dashboard/schedule/<date:day>/status", methods=["POST"])
@producer_login_required
def schedule_day_status(day):
    """Set the status of several of the day's orders in one submit; each change is checked, recorded and
    emailed on its own, and the answer says which moved and which could not."""
    rows, _, _ = day_packing_list(day)
    form = BulkStatusForm()
    listed = {order["order_id"] for order in rows}
    problems = [] if form.validate() else [f"{field.label.text}: {error}" for field in form for error in field.errors]
    if not problems and not set(form.order_id.data) <= listed:
        problems = ["Orders: choose orders from this day’s list."]
    if problems:
        for problem in problems:
            flash(problem, "error")
        return render_day(day, form, http_status=400)
    moved, refused = ([f"#{order_id}" for order_id in ids]
                      for ids in orders.change_statuses(g.user["id"], form.order_id.data, form.status.data))
    label = orders.STATUS_LABELS[form.status.data]
    if moved:
        flash(f"{', '.join(moved)} {'is' if len(moved) == 1 else 'are'} now {label.lower()}.", "success")
    if refused:
        flash(f"{', '.join(refused)} could not move to {label.lower()} from where {'it is' if len(refused) == 1 else 'they are'}"
              " (or not before its day); nothing else changed for them.", "error")
    return redirect(url_for("schedule_day", day=day))


def day_packing_list(day):
    """The logged-in producer's packing list for day, or abort with 404 when no order is for it."""
    found = orders.packing_list(g.user["id"], day)
    if found is None:
        abort(404)
    return found


@app.route("/dashboard/schedule/<date:day>.csv")
@producer_login_required
def schedule_day_csv(day):
    """The day's packing lists as a spreadsheet: one row per product to pick, then one per order line."""
    rows, picks, _ = day_packing_list(day)
    return csv_response(f"noeari-packing-{day.isoformat()}.csv", orders.PACKING_CSV_COLUMNS,
                        orders.packing_csv_rows(day, rows, picks))


class PaidForm(Form):
    paid = RadioField("Paid", choices=[SelectChoice("1", "Paid"), SelectChoice("0", "Not paid")],
                      validators=[InputRequired("Say whether the order is paid (1) or not (0).")])


@app.route("/dashboard/orders/<int:order_id>/paid", methods=["POST"])
@producer_login_required
def mark_paid(order_id):
    """Record that the customer paid on collection or delivery, or clear it."""
    form = posted_form(PaidForm)
    if form.errors:
        return render_producer_order(order_id, http_status=400)
    paid = form.paid.data == "1"
    order, changed = orders.record_payment(g.user["id"], order_id, paid)
    if order["status"] == "cancelled":
        flash(f"Order #{order_id} is cancelled, so there is nothing to pay.", "error")
        return render_producer_order(order_id, http_status=409)
    if order["payment_method"] in ledger.PAID_THROUGH_COOP:
        flash(f"Order #{order_id} is paid to the co-op ({ledger.PAYMENT_METHODS[order['payment_method']].lower()}): "
              "there is nothing to record.", "error")
        return render_producer_order(order_id, http_status=409)
    if changed:
        flash(f"Order #{order_id} is marked {'paid' if paid else 'not paid'}.", "success")
    else:
        flash(f"Order #{order_id} was marked {'paid' if paid else 'not paid'} already.", "success")
    return redirect_to_next(request.form.get("next"), url_for("producer_order", order_id=order_id))


# --- The operator -----------------------------------------------------------

@app.cli.command("create-operator")
@click.argument("email")
@click.option("--name", required=True, help="The operator's name, shown in the audit.")
def create_operator_command(email, name):
    """Make an operator account; the password is prompted for, or read from OPERATOR_PASSWORD."""
    password = os.environ.get("OPERATOR_PASSWORD") or click.prompt("Password", hide_input=True,
                                                                    confirmation_prompt=True)
    form = OperatorAccountForm(formdata=None, data={"email": normalise_email(email), "name": name.strip(),
                                                    "password": password, "confirm": password}, meta={"csrf": False})
    if not form.validate():
        raise click.ClickException(" ".join(f"{form[field].label.text}: {errors[0]}"
                                            for field, errors in form.errors.items()))
    try:
        accounts.create_operator(form.name.data, form.email.data, accounts.hash_password(form.password.data))
    except db.IntegrityError:
        raise click.ClickException(f"An operator with the email {form.email.data} exists already.") from None
    click.echo(f"Operator {form.email.data} created; they log in at /login/operator.")


class OperatorAccountForm(OperatorNameForm, NewPasswordForm):
    email = email_field()


class NoteForm(Form):
    note = TextAreaField("Note (optional)", filters=[strip_text], validators=[Length(max=500)],
                         description="Why: kept in the audit, and sent to a producer you suspend.")


ADMIN_PAGE_SIZE = 50


@app.template_global()
def bar_chart(buckets, measure, height=120, bar=30, gap=10):
    """Bars for one measure of weekly buckets, scaled to the tallest: [(x, y, height, bucket)], and the width."""
    tallest = max((bucket[measure] for bucket in buckets), default=0) or 1
    bars = []
    for n, bucket in enumerate(buckets):
        size = round(float(bucket[measure]) / float(tallest) * height, 1)
        bars.append((n * (bar + gap), round(height - size, 1), size, bucket))
    return bars, len(buckets) * (bar + gap) - gap


@app.route("/admin")
@operator_login_required
def admin():
    """The marketplace at a glance: 12 weeks of orders, producers to approve, accounts, and failed email."""
    figures, pending = accounts.marketplace_figures()
    return render_template("admin/index.html", figures=figures, pending=pending, weeks=orders.weekly_figures(),
                           health=worker.health())


@app.route("/admin/producers")
@operator_login_required
def admin_producers():
    """Every producer with their state; ?state= narrows it to one."""
    state = request.args.get("state") if request.args.get("state") in accounts.ROLES["producer"].states else None
    page = page_number()
    rows, total = accounts.producer_page(state, page, ADMIN_PAGE_SIZE)
    return render_template("admin/producers.html", producers=rows, state=state, states=accounts.ROLES["producer"].states,
                           **paginate(total, ADMIN_PAGE_SIZE, page))


class FeeForm(Form):
    fee_percent = DecimalField("The co-op's fee on their orders (%)", places=2, validators=[
        Optional(), NumberRange(min=0, max=100, message="Enter a percentage from 0 to 100, or leave it blank."),
        two_decimals],
        description="A percentage of each order's goods. Leave it blank for the co-op's rate; new orders take it.")


def render_admin_account(kind, account_id, form=None, http_status=200, **kwargs):
    """A producer's or customer's page for the operator: who they are, their state, actions and audit."""
    account = accounts.account_summary(kind, account_id)
    if account is None:
        abort(404)
    possible = [action for action, (allowed, _) in accounts.ROLES[kind].actions.items() if account["status"] in allowed]
    last_operator = kind == "operator" and "disable" in possible and accounts.is_only_active_operator(account_id)
    if last_operator:
        possible.remove("disable")
    fee_form = FeeForm(formdata=None, data={"fee_percent": account.get("fee_percent")}) if kind == "producer" else None
    return render_template("admin/account.html", kind=kind, account=account, possible=possible,
                           last_operator=last_operator, fee_form=kwargs.get("fee_form") or fee_form,
                           audit=accounts.audit_of(kind, account_id), form=form or NoteForm(formdata=None),
                           states=accounts.ROLES[kind].states, audit_labels=accounts.AUDIT_LABELS), http_status


@app.route("/admin/producers/<int:producer_id>")
@operator_login_required
def admin_producer(producer_id):
    return render_admin_account("producer", producer_id)


@app.route("/admin/producers/<int:producer_id>/fee", methods=["POST"])
@operator_login_required
def admin_producer_fee(producer_id):
    """Set a producer's own co-op fee rate, or clear it for the co-op's."""
    form = FeeForm()
    if not form.validate():
        return render_admin_account("producer", producer_id, http_status=400, fee_form=form)
    if not accounts.set_fee_percent(producer_id, form.fee_percent.data, g.user["id"]):
        abort(404)
    flash("Their new orders take the co-op's rate." if form.fee_percent.data is None else
          f"Their new orders pay the co-op {form.fee_percent.data}% of goods.", "success")
    return redirect(url_for("admin_producer", producer_id=producer_id))


@app.route("/admin/customers")
@operator_login_required
def admin_customers():
    """Find customers by email or name."""
    q, page = request.args.get("q", "")[:100].strip(), page_number()
    rows, total = accounts.customer_page(q, page, ADMIN_PAGE_SIZE)
    return render_template("admin/customers.html", customers=rows, q=q, total=total,
                           **paginate(total, ADMIN_PAGE_SIZE, page))


@app.route("/admin/customers/<int:customer_id>")
@operator_login_required
def admin_customer(customer_id):
    return render_admin_account("customer", customer_id)


class TopUpForm(Form):
    amount = money_field("Amount received", "0.01", "99999.99")
    reference = StringField("Payment reference", filters=[strip_text], validators=[
        DataRequired("Enter the payment's reference, as the bank statement shows it."), Length(max=100)],
        description="As the bank statement or receipt shows it: the same reference is never counted twice.")


def render_customer_balance(customer_id, form=None, http_status=200):
    account = accounts.account_summary("customer", customer_id)
    if account is None:
        abort(404)
    return render_template("admin/customer_balance.html", account=account, form=form or TopUpForm(formdata=None),
                           credit=ledger.balance("credit", customer_id),
                           owed=-ledger.balance("receivable", customer_id),
                           history=ledger.customer_history(customer_id)), http_status


@app.route("/admin/customers/<int:customer_id>/balance", methods=["GET", "POST"])
@operator_login_required
def admin_customer_balance(customer_id):
    """A customer's credit and its history; the operator records a top-up received, with its reference."""
    if request.method == "GET":
        return render_customer_balance(customer_id)
    form = TopUpForm()
    if not form.validate():
        return render_customer_balance(customer_id, form, 400)
    if accounts.account_summary("customer", customer_id) is None:
        abort(404)
    try:
        ledger.top_up(customer_id, form.amount.data, form.reference.data, g.user["id"])
    except ledger.DuplicateReference:
        form.reference.errors.append(f"A top-up with reference {form.reference.data} is recorded already: "
                                     "nothing was added.")
        return render_customer_balance(customer_id, form, 409)
    flash(f"Recorded {fulfilment.format_money(form.amount.data)} for the customer's credit "
          f"(reference {form.reference.data}).", "success")
    return redirect(url_for("admin_customer_balance", customer_id=customer_id))


@app.route("/admin/operators")
@operator_login_required
def admin_operators():
    """Every operator with their state, and the newest actions of all of them."""
    return render_template("admin/operators.html", operators=accounts.operators(), audit=accounts.recent_audit(),
                           audit_labels=accounts.AUDIT_LABELS)


@app.route("/admin/operators/<int:operator_id>")
@operator_login_required
def admin_operator(operator_id):
    return render_admin_account("operator", operator_id)


@app.route("/admin/<any(producer, customer, operator):kind>s/<int:account_id>"
           "/<any(approve, suspend, reinstate, disable, enable):action>", methods=["POST"])
@operator_login_required
def admin_account_action(kind, account_id, action):
    """Approve, suspend or reinstate a producer; suspend or reinstate a customer; disable or enable an operator
    (never the last active one). Kept in the audit."""
    if action not in accounts.ROLES[kind].actions:
        abort(404)
    form = NoteForm()
    if not form.validate():
        return render_admin_account(kind, account_id, form, http_status=400)
    try:
        account, changed = accounts.change_account_state(g.user["id"], kind, account_id, action, form.note.data or "")
    except accounts.LastOperator:  # the page says why
        return render_admin_account(kind, account_id, http_status=409)
    if not changed:
        flash(f"{account['name']} is {accounts.ROLES[kind].states[account['status']].lower()}, so they cannot be "
              f"{action}d.", "error")
        return render_admin_account(kind, account_id, http_status=409)
    flash(f"{account['name']} is now {accounts.ROLES[kind].states[accounts.ROLES[kind].actions[action][1]].lower()}.", "success")
    if kind == "operator" and account_id == g.user["id"]:
        return redirect(url_for("login", role="operator"))  # their own session ended with it
    return redirect(url_for(f"admin_{kind}", **{f"{kind}_id": account_id}))


def admin_order_filters():
    """The ?status=&producer=&from=&to= filters of every order, as orders.order_filter takes them."""
    producer = request.args.get("producer", "")
    return dict(order_filters(),
                producer_id=int(producer) if producer.isdecimal() and 0 < int(producer) < 2**32 else None)


@app.route("/admin/orders")
@operator_login_required
def admin_orders():
    """Every order, newest first, filtered by status, producer and the dates they were placed on."""
    filters, page = admin_order_filters(), page_number()
    rows, total = orders.all_orders_page(page, ADMIN_PAGE_SIZE, **filters)
    return render_template("admin/orders.html", orders=rows, total=total, statuses=orders.ORDER_STATUSES,
                           **paginate(total, ADMIN_PAGE_SIZE, page), producers=accounts.producer_names(),
                           link_args={key: request.args[key] for key in ("status", "producer", "from", "to")
                                      if request.args.get(key)})


@app.route("/admin/orders/<int:order_id>")
@operator_login_required
def admin_order(order_id):
    """Any order, as its customer and producer see it, for the co-op."""
    order = orders.load_order(order_id)
    if order is None:
        abort(404)
    return render_template("admin/order.html", order=order)


@app.route("/admin/orders.csv")
@operator_login_required
def admin_orders_csv():
    """The same orders as a spreadsheet, one row per order, streamed."""
    return csv_response(f"noeari-all-orders-{fulfilment.local_today().isoformat()}.csv",
                        orders.ALL_ORDERS_CSV_COLUMNS, orders.all_orders_csv_rows(**admin_order_filters()))


@app.route("/admin/emails")
@operator_login_required
def admin_emails():
    """The outbox, failures first: who, what, when, how many tries and the last error; never a message's body,
    which may hold a reset link."""
    page, failed = page_number(), request.args.get("failed") == "1"
    emails, total = mail.outbox_page(page, ADMIN_PAGE_SIZE, failed_only=failed)
    return render_template("admin/emails.html", emails=emails, failed=failed, total=total,
                           **paginate(total, ADMIN_PAGE_SIZE, page))


@app.route("/admin/emails/<int:email_id>/retry", methods=["POST"])
@operator_login_required
def admin_retry_email(email_id):
    if not accounts.retry_email(g.user["id"], email_id):
        if not mail.exists(email_id):
            abort(404)
        flash("That email has not failed, so there is nothing to retry.", "error")
        return redirect(url_for("admin_emails"))
    flash(f"Email #{email_id} will be sent again by the worker.", "success")
    return redirect(url_for("admin_emails"))


class HubForm(Form):
    name = StringField("Name", filters=[strip_text], validators=[DataRequired("Name the pick-up."), Length(max=100)])
    address = TextAreaField("Address", filters=[strip_text], validators=[DataRequired("Give its address."),
                                                                         Length(max=500)])
    instructions = TextAreaField("Instructions for customers", filters=[strip_text], validators=[Length(max=1000)])
    contact = StringField("Contact on the day", filters=[strip_text], validators=[Length(max=200)],
                          description="A name and a phone number, for producers and customers.")
    cutoff_hours = IntegerField("Ordering closes, hours before the start", default=24, validators=[
        InputRequired("Enter how many hours before the start ordering closes."),
        NumberRange(min=0, max=336, message="Enter a whole number of hours from 0 to 336 (two weeks).")])
    capacity = IntegerField("Baskets per time", validators=[Optional(), NumberRange(
        min=1, max=10_000, message="Enter a whole number of baskets from 1 to 10,000, or leave it blank.")],
                            description="Leave blank for no limit.")
    fee = money_field("Fee per basket", "0", "999.99", description="0 for none.")
    is_active = BooleanField("Open for orders")


def hub_values(form):
    return {field: form[field].data for field in hubs.HUB_FIELDS} | {"is_active": int(form.is_active.data),
                                                                      "instructions": form.instructions.data or "",
                                                                      "contact": form.contact.data or ""}


@app.route("/admin/hubs", methods=["GET", "POST"])
@operator_login_required
def admin_hubs():
    """The co-op's pick-ups, and a new one."""
    form = HubForm(data={"cutoff_hours": 24, "fee": Decimal("0.00"), "is_active": True})
    http_status = form_http_status(form)
    if form.validate_on_submit():
        try:
            hub_id = hubs.create_hub(hub_values(form))
        except hubs.HubNameTaken:
            form.name.errors.append("Another pick-up has this name.")
            http_status = 409
        else:
            flash(f"{form.name.data} is set up: add its weekly times, then producers can join it.", "success")
            return redirect(url_for("admin_hub", hub_id=hub_id))
    return render_template("admin/hubs.html", hubs=hubs.all_hubs(), form=form,
                           weekdays=fulfilment.WEEKDAYS), http_status


def render_hub(hub_id, form=None, slot_form=None, closure_form=None, http_status=200):
    found = hubs.hub(hub_id)
    if found is None:
        abort(404)
    closed = hubs.closures(hub_id)
    return render_template("admin/hub.html", hub=found, form=form or HubForm(formdata=None, data=found),
                           days=hubs.next_days(found, closed), closures=closed,
                           closure_form=closure_form or ClosedDaysForm(formdata=None),
                           slot_form=slot_form or SlotForm(formdata=None), weekdays=fulfilment.WEEKDAYS), http_status


@app.route("/admin/hubs/<int:hub_id>", methods=["GET", "POST"])
@operator_login_required
def admin_hub(hub_id):
    """A pick-up: its details, weekly times and the producers who deliver to it."""
    if request.method == "GET":
        return render_hub(hub_id)
    form = HubForm()
    if not form.validate():
        return render_hub(hub_id, form, http_status=400)
    if hubs.hub(hub_id) is None:
        abort(404)
    try:
        hubs.save_hub(hub_id, hub_values(form))
    except hubs.HubNameTaken:
        form.name.errors.append("Another pick-up has this name.")
        return render_hub(hub_id, form, http_status=409)
    flash(f"{form.name.data} has been saved; orders placed already keep what they were promised.", "success")
    return redirect(url_for("admin_hub", hub_id=hub_id))


@app.route("/admin/hubs/<int:hub_id>/slots", methods=["POST"])
@operator_login_required
def admin_hub_slot(hub_id):
    """Add a weekly time to a pick-up, for every producer who delivers to it."""
    slot_form = SlotForm()
    if not slot_form.validate():
        return render_hub(hub_id, slot_form=slot_form, http_status=400)
    if hubs.hub(hub_id) is None:
        abort(404)
    hubs.add_slot(hub_id, slot_form.weekday.data, slot_form.start.data, slot_form.end.data)
    flash(f"The pick-up now runs {fulfilment.WEEKDAYS[slot_form.weekday.data]}s "
          f"{slot_form.start.data}–{slot_form.end.data}.", "success")
    return redirect(url_for("admin_hub", hub_id=hub_id))


@app.route("/admin/hubs/<int:hub_id>/closures", methods=["POST"])
@operator_login_required
def admin_hub_close(hub_id):
    """Close a pick-up on days: none of its times is offered then. Refused while baskets are booked then."""
    closure_form = ClosedDaysForm()
    if not closure_form.validate():
        return render_hub(hub_id, closure_form=closure_form, http_status=400)
    if hubs.hub(hub_id) is None:
        abort(404)
    start, end = closure_form.start_date.data, closure_form.end_date.data
    try:
        hubs.close_days(hub_id, start, end, closure_form.note.data)
    except hubs.BasketsBooked as booked:
        closure_form.form_errors.append(
            f"{booked.count} basket{'s are' if booked.count > 1 else ' is'} booked on those days: their customers "
            "can move them, or the producers cancel them, before the days are closed. Nothing was closed.")
        return render_hub(hub_id, closure_form=closure_form, http_status=409)
    flash(f"The pick-up is closed {fulfilment.format_date(start, 'weekday')}"
          + (f" to {fulfilment.format_date(end, 'weekday')}" if end != start else "") + ".", "success")
    return redirect(url_for("admin_hub", hub_id=hub_id))


@app.route("/admin/hubs/<int:hub_id>/closures/<int:closure_id>/delete", methods=["POST"])
@operator_login_required
def admin_hub_reopen(hub_id, closure_id):
    """Open a pick-up's closed days again."""
    if not hubs.open_days(hub_id, closure_id):
        abort(404)
    flash("Those days are open again.", "success")
    return redirect(url_for("admin_hub", hub_id=hub_id))


def render_hub_day(hub_id, day, http_status=200):
    found = hubs.hub(hub_id)
    if found is None:
        abort(404)
    bags, drops = hubs.hub_day(hub_id, day)
    return render_template("admin/hub_day.html", hub=found, day=day, bags=bags, drops=drops), http_status


@app.route("/admin/hubs/<int:hub_id>/days/<date:day>")
@operator_login_required
def admin_hub_day(hub_id, day):
    """A pick-up's day: each customer's bag across producers, with check-in; and what each producer brings."""
    return render_hub_day(hub_id, day)


@app.route("/admin/hubs/<int:hub_id>/days/<date:day>.csv")
@operator_login_required
def admin_hub_day_csv(hub_id, day):
    if hubs.hub(hub_id) is None:
        abort(404)
    rows = list(hubs.bag_csv_rows(hubs.hub_day(hub_id, day)[0]))
    return csv_response(f"noeari-pick-up-{hub_id}-{day.isoformat()}.csv", hubs.BAG_CSV_HEADER, rows)


class CheckInForm(Form):
    customer_id = id_field("Customer")


@app.route("/admin/hubs/<int:hub_id>/days/<date:day>/check-in", methods=["POST"])
@operator_login_required
def admin_hub_check_in(hub_id, day):
    """A customer collected their basket: each of their orders at the pick-up that day is handed over."""
    form = posted_form(CheckInForm)
    if form.errors:
        return render_hub_day(hub_id, day, 400)
    if hubs.hub(hub_id) is None:
        abort(404)
    done = hubs.check_in(hub_id, day, form.customer_id.data, g.user["id"])
    if not done:
        flash("Nothing of theirs was left to hand over: it was collected already, or they have no order here.",
              "error")
        return render_hub_day(hub_id, day, 409)
    flash(f"Handed over: order{'s' if len(done) > 1 else ''} {', '.join(f'#{n}' for n in done)}; their invoices "
          "are on their way.", "success")
    return redirect(url_for("admin_hub_day", hub_id=hub_id, day=day))


@app.route("/admin/hubs/<int:hub_id>/slots/<int:hub_slot_id>/delete", methods=["POST"])
@operator_login_required
def admin_hub_slot_delete(hub_id, hub_slot_id):
    """Remove a weekly time from a pick-up; orders already placed for it keep their date and time."""
    if not hubs.delete_slot(hub_id, hub_slot_id):
        abort(404)
    flash("That time was removed; orders already placed for it keep their date and time.", "success")
    return redirect(url_for("admin_hub", hub_id=hub_id))


# --- Money ------------------------------------------------------------------

def period_key():
    """The ?period= week (2026-W48) or month (2026-11), this month when absent; abort with 400 otherwise."""
    key = request.args.get("period", "") or statements.this_month()
    try:
        return statements.period(key).key
    except statements.PeriodRefused:
        abort(400, f"The period {key[:20]!r} is not a week (like 2026-W48) or a month (like 2026-11).")


def get_document(invoice_id):
    """An invoice or credit note the logged-in account is party to (the operator sees all), or abort with 404."""
    document = invoices.document(invoice_id, g.user["role"], g.user["id"])
    if document is None:
        abort(404)
    return document


@app.route("/invoices/<int:invoice_id>")
@account_login_required
def invoice_page(invoice_id):
    """An invoice or credit note as issued, ready to print on A4."""
    return render_template("documents/invoice.html", document=get_document(invoice_id))


@app.route("/invoices/<int:invoice_id>.pdf")
@account_login_required
def invoice_pdf(invoice_id):
    """The same document as a PDF."""
    document = get_document(invoice_id)
    html = render_template("documents/invoice.html", document=document)
    return Response(invoices.pdf(html, request.url_root, app.static_folder), mimetype="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="{document["number"]}.pdf"'})


def render_statement(template, producer_id, **context):
    key = period_key()
    return render_template(template, found=statements.statement(producer_id, key), key=key,
                           periods=statements.recent_periods(), **context)


@app.route("/dashboard/statement")
@producer_login_required
def producer_statement():
    """The producer's statement for a week or a month, and what the co-op owes them (or they owe it) now."""
    return render_statement("dashboard/statement.html", g.user["id"],
                            documents=invoices.producer_documents(g.user["id"], 20))


def statement_csv(producer_id):
    key = period_key()
    rows = list(statements.statement_csv_rows(statements.statement(producer_id, key), fulfilment.zone()))
    return csv_response(f"noeari-statement-{producer_id}-{key}.csv", rows[0], rows[1:])


@app.route("/dashboard/statement.csv")
@producer_login_required
def producer_statement_csv():
    return statement_csv(g.user["id"])


@app.route("/admin/statements")
@operator_login_required
def admin_statements():
    """Every producer's net for a period and what is due to or from each now."""
    key = period_key()
    return render_template("admin/statements.html", key=key, span=statements.period(key),
                           producers=statements.statement_producers(key), periods=statements.recent_periods())


class PayoutForm(Form):
    direction = RadioField("What happened", default="payout", choices=[
        SelectChoice("payout", "The co-op paid the producer"),
        SelectChoice("fees", "The producer paid the co-op fees they owed")],
        validators=[InputRequired("Choose what happened.")])
    amount = money_field("Amount", "0.01", "999999.99")
    reference = StringField("Transfer reference", filters=[strip_text], validators=[
        DataRequired("Enter the transfer's reference, as the bank shows it."), Length(max=100)],
        description="The same reference is never recorded twice.")


def admin_producer_name(producer_id):
    account = accounts.account_summary("producer", producer_id)
    if account is None:
        abort(404)
    return account


@app.route("/admin/producers/<int:producer_id>/statement")
@operator_login_required
def admin_statement(producer_id):
    """A producer's statement as the operator sees it, with the payout form."""
    return render_statement("admin/statement.html", producer_id, account=admin_producer_name(producer_id),
                            form=PayoutForm(formdata=None))


@app.route("/admin/producers/<int:producer_id>/statement.csv")
@operator_login_required
def admin_statement_csv(producer_id):
    admin_producer_name(producer_id)
    return statement_csv(producer_id)


@app.route("/admin/producers/<int:producer_id>/payouts", methods=["POST"])
@operator_login_required
def admin_payout(producer_id):
    """Record a payout to a producer (or fees received from them) against their statement."""
    account = admin_producer_name(producer_id)
    form = PayoutForm()
    if not form.validate():
        return render_statement("admin/statement.html", producer_id, account=account, form=form), 400
    amount = form.amount.data if form.direction.data == "payout" else -form.amount.data
    note = (f"Paid to {account['name']}" if amount > 0 else f"Fees received from {account['name']}") + \
        f", for {statements.period(period_key()).label}"
    try:
        ledger.payout(producer_id, amount, form.reference.data, note, g.user["id"])
    except ledger.PayoutRefused as refused:
        form.amount.errors.append(
            f"The co-op holds {fulfilment.format_money(max(refused.args[0], 0))} for {account['name']} now: "
            "record at most that."
            if amount > 0 else f"{account['name']} owes the co-op {fulfilment.format_money(max(-refused.args[0], 0))} "
                               "in fees now: record at most that.")
        return render_statement("admin/statement.html", producer_id, account=account, form=form), 409
    except ledger.DuplicateReference:
        form.reference.errors.append(f"A payout with reference {form.reference.data} is recorded already: "
                                     "nothing was added.")
        return render_statement("admin/statement.html", producer_id, account=account, form=form), 409
    flash(f"Recorded {fulfilment.format_money(form.amount.data)} "
          f"{'paid to' if amount > 0 else 'received from'} {account['name']}.", "success")
    return redirect(url_for("admin_statement", producer_id=producer_id, period=period_key()))


class BankImportForm(Form):
    statement = FileField("Bank statement file", description="A CSV export (date, amount, reference columns) or a "
                          "camt.053 XML statement, up to 5 MB.")


class BankLineForm(Form):
    order_id = IntegerField("Order number", validators=[Optional(), NumberRange(min=1, max=4294967295,
                                                                                message="Enter an order number.")])
    customer_id = IntegerField("Customer number (for their credit)", validators=[
        Optional(), NumberRange(min=1, max=4294967295, message="Enter a customer number.")])
    note = StringField("Or set it aside, saying why", filters=[strip_text], validators=[Length(max=200)])

    def validate(self, extra_validators=None):
        if not super().validate(extra_validators):
            return False
        chosen = [field for field in (self.order_id.data, self.customer_id.data, self.note.data) if field]
        if len(chosen) != 1:
            self.order_id.errors.append("Give an order number, a customer number, or a note: one of them.")
            return False
        return True


def render_bank(form=None, line_form=None, http_status=200, summary=None):
    return render_template("admin/bank.html", form=form or BankImportForm(formdata=None),
                           line_form=line_form or BankLineForm(formdata=None), unmatched=bank.lines("unmatched"),
                           matched=bank.lines("matched", 20), imports=bank.imports(), summary=summary), http_status


@app.route("/admin/bank", methods=["GET", "POST"])
@operator_login_required
def admin_bank():
    """Import a bank statement: lines are matched by payment reference, the rest listed to assign by hand."""
    if request.method == "GET":
        return render_bank()
    form = BankImportForm()
    upload = form.statement.data if form.validate() else None
    if not upload or not getattr(upload, "filename", ""):
        form.statement.errors = list(form.statement.errors) + ["Choose the statement file to import."]
        return render_bank(form, http_status=400)
    try:
        summary = bank.import_file(upload.filename, upload.read(images.MAX_IMAGE_BYTES + 1), g.user["id"])
    except bank.AlreadyImported as already:
        form.statement.errors = [f"This file was imported on {fulfilment.format_stored(already.imported['imported_at'])}: "
                                 "nothing was added."]
        return render_bank(form, http_status=409)
    except bank.BankFileRefused as refusal:
        form.statement.errors = [refusal.problem]
        return render_bank(form, http_status=400)
    flash(f"Read {summary['lines_read']} lines: {summary['lines_new']} new, {summary['matched']} matched by their "
          f"reference, {summary['lines_new'] - summary['matched']} left to assign.", "success")
    return redirect(url_for("admin_bank"))


@app.route("/admin/bank/lines/<int:line_id>", methods=["POST"])
@operator_login_required
def admin_bank_line(line_id):
    """Assign an unmatched line to an order or a customer's credit, or set it aside with a note."""
    form = BankLineForm()
    if not form.validate():
        return render_bank(line_form=form, http_status=400)
    try:
        line = bank.assign(line_id, g.user["id"], form.order_id.data, form.customer_id.data, form.note.data or "")
    except bank.LineSettled:
        flash("That line is settled already: nothing was changed.", "error")
        return render_bank(http_status=409)
    if line is None:
        form.order_id.errors.append("There is no such order or customer, or the line is money paid out.")
        return render_bank(line_form=form, http_status=404)
    flash(f"The line of {fulfilment.format_money(line['amount'])} is "
          f"{'set aside' if form.note.data else 'recorded'}.", "success")
    return redirect(url_for("admin_bank"))


@app.route("/admin/payments")
@operator_login_required
def admin_payments():
    """Card payments, newest first, with any disagreement between Stripe, the ledger and the orders first."""
    rows = payments.recent()
    return render_template("admin/payments.html", payments=rows, problems=[row for row in rows if row["problem"]])


@app.route("/admin/accounts")
@operator_login_required
def admin_accounts():
    """The accounts by period: the ledger and the VAT summary per producer, to read and to download."""
    key = period_key()
    span = statements.period(key)
    return render_template("admin/accounts.html", key=key, span=span, vat=invoices.vat_summary(span),
                           periods=statements.recent_periods(), problems=ledger.problems(),
                           balances=ledger.coop_balances())


@app.route("/admin/accounts/ledger.csv")
@operator_login_required
def admin_ledger_csv():
    key = period_key()
    header, *rows = statements.ledger_csv_rows(key)  # read within the request: the rows go out after it
    return csv_response(f"noeari-ledger-{key}.csv", header, rows)


@app.route("/admin/accounts/vat.csv")
@operator_login_required
def admin_vat_csv():
    key = period_key()
    header, *rows = invoices.vat_csv_rows(statements.period(key))
    return csv_response(f"noeari-vat-{key}.csv", header, rows)


# --- Email and jobs ---------------------------------------------------------

worker.init_app(app, jobs=jobs.JOBS)


# --- Health -----------------------------------------------------------------

MIGRATIONS_SHIPPED = len(db.migration_files())  # read once: the files change only with a deploy, which restarts


@app.route("/healthz")
def healthz():
    """For a load balancer, every second: 200 when the database answers and its schema is current, else 503
    naming what is wrong. "degraded" (still 200) names what a person must see to: no worker, failed or stuck
    email. With the email backlog and when a worker was last seen. No session, no secrets."""
    try:
        migrations = db.applied_migration_count()
        state = worker.health()
    except db.MySQLdb.Error as exc:
        return {"status": "failing", "problems": [f"database unreachable ({exc.args[0] if exc.args else 'error'})"]}, 503
    missing = MIGRATIONS_SHIPPED - migrations
    problems = [f"{missing} migrations not applied"] if missing else []
    status = "failing" if problems else "degraded" if state["warnings"] else "ok"
    body = {"status": status, "database": "ok", "migrations": "current" if not problems else "pending",
            **state, "problems": problems}
    return body, 503 if problems else 200


@app.cli.command("write-unavailable-page")
@click.argument("path", type=click.Path(dir_okay=False))
def write_unavailable_page_command(path):
    """Write the page nginx shows, in the site's own look, when no app server answers (502, 503, 504)."""
    with app.test_request_context("/"):
        g.user = None
        page = render_template("errors/error.html", code=None, title="Temporarily unavailable", message=(
            "noeari is restarting or too busy to answer just now. Please try again in a minute. If you were "
            "sending a form, such as an order, check whether it went through before you send it again."))
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(page)


# --- Webhooks -----------------------------------------------------------------
# A producer's endpoints at /dashboard/webhooks, the operator's at /admin/webhooks: one page and form for both.

class WebhookForm(Form):
    url = StringField("Endpoint URL", filters=[strip_text], validators=[InputRequired(), Length(max=500)],
                      description="Where noeari POSTs each event as JSON: an http:// or https:// address on the "
                                  "public internet.")
    events = SelectMultipleField("Events to send",
                                 choices=[SelectChoice(name, text) for name, text in webhooks.EVENTS.items()],
                                 validators=[InputRequired("Choose at least one event.")])
    secret = StringField("Signing secret (optional)", filters=[strip_text],
                         validators=[Optional(), Regexp(r"[\x21-\x7e]{16,100}", message="16 to 100 letters, "
                                                        "digits or symbols, no spaces.")],
                         description="Each delivery is signed with it. Leave it empty and noeari makes one.")


WEBHOOK_PAGES = {"producer": ("dashboard/webhooks.html", "producer_webhooks"),
                 "operator": ("admin/webhooks.html", "operator_webhooks")}


def webhooks_page(role):
    """The account's webhook endpoints with their recent deliveries, and the form to add one."""
    template, endpoint = WEBHOOK_PAGES[role]
    form = WebhookForm() if request.method == "POST" else WebhookForm(formdata=None)
    if request.method == "POST" and form.validate():
        try:
            added = webhooks.register(role, g.user["id"], form.url.data, form.events.data, form.secret.data or None)
        except webhooks.EndpointRefused as refusal:
            form[refusal.field].errors.append(refusal.message)
        else:
            flash(f"Events now go to {added['url']}, signed with the secret shown under it.", "success")
            return redirect(url_for(endpoint))
    return render_template(template, form=form, endpoints=webhooks.endpoints(role, g.user["id"]),
                           events=webhooks.EVENTS), form_http_status(form)


def remove_webhook(role, endpoint_id):
    if not webhooks.remove(role, g.user["id"], endpoint_id):
        abort(404)
    flash("That endpoint is removed: no more events go to it.", "success")
    return redirect(url_for(WEBHOOK_PAGES[role][1]))


@app.route("/dashboard/webhooks", methods=["GET", "POST"])
@producer_login_required
def producer_webhooks():
    """The producer's webhook endpoints: events about their own orders and products."""
    return webhooks_page("producer")


@app.route("/dashboard/webhooks/<int:endpoint_id>/delete", methods=["POST"])
@producer_login_required
def remove_producer_webhook(endpoint_id):
    return remove_webhook("producer", endpoint_id)


@app.route("/admin/webhooks", methods=["GET", "POST"])
@operator_login_required
def operator_webhooks():
    """The operator's webhook endpoints: events about every producer's orders and products."""
    return webhooks_page("operator")


@app.route("/admin/webhooks/<int:endpoint_id>/delete", methods=["POST"])
@operator_login_required
def remove_operator_webhook(endpoint_id):
    return remove_webhook("operator", endpoint_id)


# --- The JSON API -------------------------------------------------------------
# /api/v1 lives in api.py, a blueprint over the same area modules, which takes this module's forms and
# throttles: so it is imported here, once they are all defined. Its answers carry no session and need no CSRF
# token (a bearer token authenticates them). Its readable document is an HTML page, so it is here.

import api  # noqa: E402

app.register_blueprint(api.bp)
csrf.exempt(api.bp)


class SessionInterface(SecureCookieSessionInterface):
    """The browser's session cookie, which an API call neither reads nor refreshes."""

    def should_set_cookie(self, app, session):
        return request.blueprint != "api" and super().should_set_cookie(app, session)


app.session_interface = SessionInterface()


@app.route("/api/docs")
def api_docs():
    """The API's operations and shapes, read from its OpenAPI document, for people."""
    return render_template("shop/api_docs.html", document=api_document.build(app.config["BASE_URL"]))
