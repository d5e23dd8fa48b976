"""The JSON API, /api/v1: a second face over the same area modules as the HTML pages, so both apply the same
rules. A blueprint that app.py registers; it takes the site's forms and throttles from app.py, which imports
this module after defining them.

Every answer is JSON; every error is RFC 9457 problem+json. Callers authenticate with a bearer token from
POST /api/v1/tokens: no cookie, no session and no CSRF token counts here. Bodies may be JSON objects or form
data alike. Money is a decimal string with its currency; times are UTC, ISO 8601.
"""
import base64
import datetime
import functools
import json
import re
from decimal import Decimal, InvalidOperation

from flask import Blueprint, current_app, g, jsonify, request, url_for
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import HTTPException

import accounts
import api_document
import app as site
import catalogue
import changes
import checkout
import db
import dfc
import fulfilment
import images
import mail
import measures
import orders
import producers
import shapes
import tokens
import webhooks

bp = Blueprint("api", __name__, url_prefix="/api")
PROBLEM_TYPE = "about:blank"
PAGE_SIZE = catalogue.PRODUCTS_PER_PAGE


# --- Problems (RFC 9457) ------------------------------------------------------

class Problem(Exception):
    """An answer of problem+json: status, a short title, the detail for this occurrence, field errors."""

    def __init__(self, status, title, detail=None, errors=None, headers=None):
        super().__init__(title)
        self.status, self.title, self.detail, self.errors, self.headers = status, title, detail, errors, headers or {}


def problem_response(status, title, detail=None, errors=None, headers=None):
    body = {"type": PROBLEM_TYPE, "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if errors:
        body["errors"] = errors
    response = current_app.response_class(json.dumps(body), status=status, mimetype="application/problem+json")
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


@bp.errorhandler(Problem)
def answer_problem(exc):
    return problem_response(exc.status, exc.title, exc.detail, exc.errors, exc.headers)


def http_problem(exc):
    """Any HTTP error under /api (a route not found, a method not allowed, a body too large) as problem+json."""
    headers = {name: value for name, value in exc.get_headers() if name.lower() != "content-type"}
    detail = exc.description if exc.description != type(exc).description else None
    return problem_response(exc.code, exc.name, detail, headers=headers)


@bp.errorhandler(HTTPException)
def answer_http_error(exc):
    return http_problem(exc)


@bp.errorhandler(orders.OrderNotFound)
def answer_not_theirs(exc):
    return problem_response(404, "Not Found", "You have no order with that id.")


@bp.errorhandler(db.Busy)
def answer_busy(exc):
    return problem_response(503, "Service Unavailable", "Many changes to the same rows at once: nothing was "
                            "changed. Try again.", headers={"Retry-After": "1"})


@bp.errorhandler(db.OperationalError)
def answer_database_down(exc):
    if not db.is_connection_error(exc):
        current_app.logger.exception("Database error: %s", exc)
        return problem_response(500, "Internal Server Error")
    return problem_response(503, "Service Unavailable", "The database cannot be reached. Try again shortly.",
                            headers={"Retry-After": "30"})


def invalid(form):
    """A form's field errors as a 400 problem with the field list."""
    return Problem(400, "Bad Request", "Some fields are not valid.",
                   errors=[{"field": name, "message": message} for name, messages in form.errors.items()
                           for message in messages])


# --- Request bodies and tokens -----------------------------------------------------

JSON_TYPES = ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string"), (list, "array"),
              (dict, "object"), (type(None), "null"))


def json_type(value):
    return next(name for kind, name in JSON_TYPES if isinstance(value, kind))


@functools.lru_cache(maxsize=None)
def documented_types(rule, method):
    """The JSON types the OpenAPI document allows for each field of this operation's body."""
    path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule)
    operation = api_document.PATHS.get(path, {}).get(method.lower(), {})
    schema = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
    return {name: set(field["type"]) if isinstance(field["type"], list) else {field["type"]}
            for name, field in api_document.properties(schema).items() if "type" in field} if schema else {}


def body():
    """The request's fields as a MultiDict, from a JSON object or form data alike. A JSON field of a type the
    document does not allow it (a name that is false, a quantity that is an object) is refused."""
    if request.mimetype == "application/json":
        data = request.get_json(silent=True)
        if not isinstance(data, dict):
            raise Problem(400, "Bad Request", "The body must be a JSON object.")
        types = documented_types(request.url_rule.rule, request.method) if request.url_rule else {}
        wrong = [{"field": name, "message": f"One of: {', '.join(sorted(types[name] - {'null'}))}."}
                 for name, value in data.items() if name in types and json_type(value) not in types[name]
                 and not (json_type(value) == "integer" and "number" in types[name])]
        if wrong:
            raise Problem(400, "Bad Request", "Some fields are not of the type the document gives them.", errors=wrong)
        fields = MultiDict()
        for name, value in data.items():
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, (dict, list)) or (item is None and isinstance(value, list)):
                    raise Problem(400, "Bad Request", f"{name} must be a string or a number.")
                if item is not None:
                    fields.add(name, str(item).lower() if isinstance(item, bool) else str(item))
        return fields
    return request.form


def form(form_class, **defaults):
    """form_class filled from the body (no CSRF token: the API has no cookies to forge); Problem when invalid."""
    fields = body().copy()
    for name, value in defaults.items():
        fields.setdefault(name, value)
    filled = form_class(formdata=fields, meta={"csrf": False})
    if not filled.validate():
        raise invalid(filled)
    return filled


RATE = tokens.RateMeter()


@bp.before_request
def load_token_holder():
    """Put the account of the request's bearer token, if it is live, on g.api_user; a browser's session never
    counts here."""
    g.user, g.api_user = None, None
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return
    found = tokens.holder(token.strip(), fulfilment.utc_now())
    if found is None:
        raise Problem(401, "Unauthorized", "The token is unknown, expired or revoked.",
                      headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    role, account_id, token_id = found
    account = accounts.account_by_id(role, account_id)
    if account is None or account["status"] in accounts.BLOCKED_STATES:
        raise Problem(401, "Unauthorized", "The token's account cannot use noeari now.",
                      headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    now = fulfilment.utc_now()
    if RATE.count(token_id, now, current_app.config["API_RATE_BATCH"]) > current_app.config["API_RATE_PER_MINUTE"]:
        raise Problem(429, "Too Many Requests", f"This token may make {current_app.config['API_RATE_PER_MINUTE']}"
                      " requests a minute.", headers={"Retry-After": str(60 - now.second)})
    g.api_user = dict(account, role=role, token_id=token_id)


def requires(*roles):
    """A view for a token of one of these roles: 401 without a token, 403 with another role's."""
    def decorate(view):
        @functools.wraps(view)
        def wrapped(**kwargs):
            if g.api_user is None:
                raise Problem(401, "Unauthorized", "Send a bearer token from POST /api/v1/tokens.",
                              headers={"WWW-Authenticate": "Bearer"})
            if g.api_user["role"] not in roles:
                raise Problem(403, "Forbidden", f"This needs a {' or '.join(roles)} token.")
            return view(**kwargs)
        return wrapped
    return decorate


@bp.after_request
def no_shared_cache(response):
    """An API answer is not kept by shared caches (nor does it set a cookie: app.py's SessionInterface)."""
    response.headers.setdefault("Cache-Control", "no-store" if g.get("api_user") else "no-cache")
    return response


# --- Shapes -------------------------------------------------------------------

def product_shape(row):
    return {"id": row["product_id"], "name": row["name"], "description": row["description"],
            "category": row["category"], "price": shapes.money(row["price"]), "unit": row["unit"],
            "unit_price": measures.unit_price(row), "sold_by": row["sold_by"], "measure": row["measure"],
            "quantity_available": measures.plain(row["quantity_available"]),
            "in_stock": row["quantity_available"] > 0,
            "producer": {"id": row["producer_id"], "name": row["business_name"]},
            "image_url": row["image_url"], "url": url_for("product_page", product_id=row["product_id"], _external=True)}


def occurrence_shape(occurrence):
    return {"key": occurrence.key, "option_id": occurrence.option["option_id"], "kind": occurrence.option["kind"],
            "place": occurrence.option["name"], "date": occurrence.day.isoformat() if occurrence.day else None,
            "start": f"{occurrence.start:%H:%M}" if occurrence.start else None,
            "end": f"{occurrence.end:%H:%M}" if occurrence.end else None,
            "timezone": current_app.config["TIMEZONE"],
            "ordering_closes_at": shapes.instant(occurrence.cutoff), "hub": occurrence.option["hub_id"] is not None}


def token_shape(row):
    return {"id": row["token_id"], "name": row["name"], "created_at": shapes.utc(row["created_at"]),
            "expires_at": shapes.utc(row["expires_at"]), "last_used_at": shapes.utc(row["last_used_at"])}


def account_shape(account):
    shape = {"id": account["id"], "role": account["role"], "name": account["name"], "email": account["email"],
             "status": account["status"]}
    if account["role"] == "customer":
        shape["reminders"] = bool(account["reminders"])
    return shape


def conditional(payload, status=200):
    """A JSON answer with an ETag, and 304 when the caller has it already."""
    response = jsonify(payload)
    response.status_code = status
    response.add_etag()
    return response.make_conditional(request)


# --- Cursors ------------------------------------------------------------------------

def encode_cursor(page):
    return base64.urlsafe_b64encode(json.dumps({"page": page}).encode()).decode().rstrip("=")


def cursor_page():
    """The page a ?cursor= names (1 without one); Problem for one this API did not make."""
    cursor = single("cursor")
    if not cursor:
        return 1
    try:
        page = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))["page"]
    except (ValueError, TypeError, KeyError):
        page = None
    if not isinstance(page, int) or not 1 < page < 100_000:
        raise Problem(400, "Bad Request", "The cursor is not one this API gave: start again without it.")
    return page


def next_link(endpoint, page, pages, **args):
    if page >= pages:
        return None
    kept = {name: value for name, value in request.args.items() if name != "cursor"}
    return url_for(endpoint, **kept, **args, cursor=encode_cursor(page + 1), _external=True)


# --- Accounts and tokens -------------------------------------------------------

@bp.post("/v1/customers")
def sign_up():
    """Sign a customer up: 201 with the customer; then POST /api/v1/tokens logs in."""
    filled = form(site.CustomerSignupForm, confirm=body().get("password", ""))
    client = site.address_client()
    if accounts.over_hourly_limit("signup_client", client, current_app.config["SIGNUP_CLIENT_LIMIT"]):
        raise Problem(429, "Too Many Requests", "Too many accounts from this network in the last hour.",
                      headers={"Retry-After": "3600"})
    accounts.record_signup_attempt(client)
    try:
        account_id = accounts.create_account("customer", filled.name.data, filled.email.data,
                                             accounts.hash_password(filled.password.data), "active")
    except db.IntegrityError:
        raise Problem(409, "Conflict", "An account with this email already exists.",
                      errors=[{"field": "email", "message": "An account with this email already exists."}]) from None
    account = dict(accounts.account_by_id("customer", account_id), role="customer")
    return jsonify(account_shape(account)), 201, {"Location": url_for("api.me", _external=True)}


class TokenForm(site.LoginForm):
    role = site.SelectField("Role", choices=["customer", "producer", "operator"])
    name = site.StringField("Name", filters=[site.strip_text], validators=[site.Length(max=100)])


@bp.post("/v1/tokens")
def create_token():
    """Exchange an account's email and password for a bearer token: 201 with the token, shown once."""
    filled = form(TokenForm)
    email, role = filled.email.data, filled.role.data
    refusal = site.password_guess_refused(email)
    if refusal:
        raise Problem(429, "Too Many Requests", site.THROTTLE_MESSAGES[refusal],
                      headers={"Retry-After": str(current_app.config["LOGIN_WINDOW_SECONDS"])}
                      if refusal == "wait" else None)
    account = accounts.account_by_email(role, email)
    if not accounts.password_matches(filled.password.data, account["password_hash"] if account else None):
        site.record_password_failure(email)
        raise Problem(401, "Unauthorized", "Incorrect email or password.")
    site.forgive_password_failures(email)
    if account["status"] in accounts.BLOCKED_STATES:
        raise Problem(403, "Forbidden", f"This account is {account['status']}.")
    token, row = tokens.issue(role, account["id"], filled.name.data or "API token",
                              current_app.config["API_TOKEN_DAYS"], fulfilment.utc_now())
    return jsonify(dict(token_shape(row), token=token)), 201


@bp.get("/v1/tokens")
@requires("customer", "producer", "operator")
def list_tokens():
    """The caller's live tokens (never the tokens themselves)."""
    return jsonify({"items": [token_shape(row) for row in tokens.own_tokens(g.api_user["role"], g.api_user["id"])]})


@bp.delete("/v1/tokens/<int:token_id>")
@requires("customer", "producer", "operator")
def revoke_token(token_id):
    """Revoke one of the caller's tokens (this one too): 204."""
    if not tokens.revoke(g.api_user["role"], g.api_user["id"], token_id):
        raise Problem(404, "Not Found", "You have no such live token.")
    return "", 204


@bp.get("/v1/me")
@requires("customer", "producer", "operator")
def me():
    """The account the token is for."""
    return jsonify(account_shape(g.api_user))


@bp.patch("/v1/me")
@requires("customer", "producer", "operator")
def change_me():
    """Change the account's name (a producer's: the business name) and a customer's day-before reminders; the
    email and password change on the account page, which asks for the current password."""
    user, fields = g.api_user, body()
    if not fields:
        raise Problem(400, "Bad Request", "Send name or reminders, or both.")
    wrong = [{"field": name, "message": "Change it on the account page, which asks for your current password."
              if name in ("email", "password") else "Not a field this takes."}
             for name in fields if name not in ("name", "reminders")]
    wrong += [{"field": name, "message": "Give it once."} for name in ("name", "reminders")
              if len(fields.getlist(name)) > 1]
    if "reminders" in fields and user["role"] != "customer":
        wrong.append({"field": "reminders", "message": "Only customers get reminders."})
    if wrong:
        raise Problem(400, "Bad Request", "Some fields are not valid.", errors=wrong)
    pages = site.ROLE_PAGES[user["role"]]
    named = reminded = None
    if "name" in fields:
        named = pages.name_form(formdata=MultiDict({pages.name_field: fields["name"]}), meta={"csrf": False})
        if not named.validate():
            raise Problem(400, "Bad Request", "Some fields are not valid.", errors=[
                {"field": "name", "message": message} for message in named[pages.name_field].errors])
    if "reminders" in fields:
        reminded = site.RemindersForm(formdata=MultiDict({"reminders": fields["reminders"]}), meta={"csrf": False})
        if fields["reminders"] not in ("true", "false", "1", "0"):
            raise Problem(400, "Bad Request", "Some fields are not valid.",
                          errors=[{"field": "reminders", "message": "true or false."}])
        reminded.validate()
    accounts.change_profile(user["role"], user["id"], named[pages.name_field].data if named else None,
                            (fields["reminders"] in ("true", "1")) if reminded else None)
    return jsonify(account_shape(dict(accounts.account_by_id(user["role"], user["id"]), role=user["role"])))


# --- The catalogue, for anyone ------------------------------------------------------

def single(name):
    """A query parameter given at most once: its value, or "" without one; Problem when repeated."""
    values = request.args.getlist(name)
    if len(values) > 1:
        raise Problem(400, "Bad Request", f"Give {name} once.", errors=[{"field": name, "message": "Given twice."}])
    return values[0] if values else ""


def query_date(name, value):
    """A YYYY-MM-DD query parameter as a date; Problem when it is not one."""
    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            raise ValueError(value)
        return datetime.date.fromisoformat(value)
    except ValueError:
        raise Problem(400, "Bad Request", "Some query parameters are not valid.",
                      errors=[{"field": name, "message": "A date, YYYY-MM-DD."}]) from None


def catalogue_filters():
    """The catalogue's filters, as the HTML catalogue takes them, but refused (400) rather than ignored when
    they are not ones it knows: a program should hear that its query was not what it meant."""
    found = {name: single(name) for name in ("q", "category", "producer", "sort", "in_stock")}
    given = set(request.args)
    wrong = [(name, message) for name, bad, message in [
        ("q", len(found["q"]) > 200, "At most 200 characters."),
        ("category", found["category"] not in catalogue.CATEGORIES, "Not one of the categories."),
        ("producer", not (found["producer"].isdecimal() and 0 < int(found["producer"]) < 2**32),
         "A producer's id, a whole number."),
        ("sort", found["sort"] not in catalogue.CATALOGUE_SORTS, "Not one of the sorts."),
        ("in_stock", found["in_stock"] not in ("0", "1"), "1 or 0."),
    ] if bad and name in given]
    if wrong:
        raise Problem(400, "Bad Request", "Some query parameters are not valid.",
                      errors=[{"field": name, "message": message} for name, message in wrong])
    return {"q": found["q"].strip(), "category": found["category"],
            "producer": int(found["producer"]) if found["producer"] else None,
            "sort": found["sort"] or "relevance", "in_stock": 1 if found["in_stock"] == "1" else None}


@bp.get("/v1/products")
def list_products():
    """Products on sale, as the catalogue: ?q=, ?category=, ?producer=, ?sort=, ?in_stock=1; 24 a page."""
    filters = catalogue_filters()
    page = cursor_page()

    def answer():
        rows, total, shown = catalogue.catalogue_page(filters, page)
        pages = max(1, -(-total // PAGE_SIZE))
        return json.dumps({"items": [product_shape(row) for row in rows], "total": total,
                           "next": next_link("api.list_products", shown, pages) if shown == page else None},
                          separators=(",", ":"))
    return conditional_text(shared_answer(answer))


CATALOGUE_PARAMETERS = {"q", "category", "producer", "sort", "in_stock", "cursor"}


def shared_answer(render):
    """A catalogue read's JSON, the same for every caller: from the site's shared cache at the catalogue
    version, keyed by the host (its links name it) and the full URL, or render() it and keep it."""
    if not current_app.config["PAGE_CACHE_MB"] or set(request.args) - CATALOGUE_PARAMETERS:
        return render()
    return site.page_cache.get_or_keep(catalogue.version(), f"api:{request.host_url}{request.full_path}",
                                       fulfilment.utc_now().timestamp(), lambda: (render(), None))


def conditional_text(body):
    """A JSON text as an answer with an ETag, and 304 when the caller has it already."""
    response = current_app.response_class(body, mimetype="application/json")
    response.add_etag()
    return response.make_conditional(request)


@bp.get("/v1/products/<int:product_id>")
def get_product(product_id):
    found = catalogue.listed_product(product_id)
    if found is None:
        raise Problem(404, "Not Found", "No product on sale has that id.")
    return conditional(product_shape(found))


@bp.get("/v1/producers")
def list_producers():
    """The co-op's approved producers, with how many products each has on sale."""
    page = cursor_page()
    rows, total, shown = catalogue.producer_page(page, site.LIST_PAGE_SIZE)
    pages = max(1, -(-total // site.LIST_PAGE_SIZE))
    return conditional({"items": [{"id": row["producer_id"], "name": row["business_name"], "town": row["town"],
                                   "products_on_sale": row["product_count"]} for row in rows],
                        "total": total, "next": next_link("api.list_producers", shown, pages) if shown == page else None})


@bp.get("/v1/producers/<int:producer_id>")
def get_producer(producer_id):
    """An approved producer, their collection and delivery options, and the times open to order now."""
    found = catalogue.approved_producer(producer_id)
    if found is None:
        raise Problem(404, "Not Found", "No approved producer has that id.")
    offer = catalogue.load_offers([producer_id])[0][producer_id]
    return conditional({
        "id": producer_id, "name": found["business_name"], "description": found["description"],
        "town": found["town"], "website": found["website"], "payment_info": found["payment_info"],
        "options": [{"id": option["option_id"], "kind": option["kind"], "name": option["name"],
                     "summary": option["summary"], "fee": shapes.money(option["fee"]),
                     "minimum_order": shapes.money(option["minimum_order"]), "payment_method": option["payment_method"],
                     "hub": option["hub_id"] is not None} for option in offer.options if option["is_active"]],
        "open_times": [occurrence_shape(occurrence) for occurrence in offer.occurrences]})


# --- Quantities -----------------------------------------------------------------------

def decimal_field(fields, name, signed=False):
    """A field as an exact Decimal of at most 3 places and at most measures.MAX_QUANTITY (either way when
    signed); Problem naming it otherwise."""
    raw = fields.get(name, "")
    try:
        value = Decimal(raw.strip())
    except (InvalidOperation, AttributeError):
        value = None
    # The size first: quantizing a number as large as 1e308 to 3 places fails.
    if (value is None or not value.is_finite() or abs(value) > measures.MAX_QUANTITY
            or value != value.quantize(Decimal("0.001")) or (value < 0 and not signed)):
        low = f"-{measures.MAX_QUANTITY:,}" if signed else "0"
        raise Problem(400, "Bad Request", "Some fields are not valid.", errors=[
            {"field": name, "message": f"A number from {low} to {measures.MAX_QUANTITY:,}, with at most 3 decimals."}])
    return value


# --- The customer's cart and checkout -------------------------------------------------

def cart_shape(customer_id):
    groups = checkout.cart_groups(checkout.cart_lines(customer_id), customer_id=customer_id)
    total, fees_unknown = checkout.cart_summary(groups)
    return {"groups": [{
        "producer": {"id": group["producer_id"], "name": group["business_name"]},
        "lines": [{"product_id": line["product_id"], "name": line["name"],
                   "quantity": measures.plain(line["quantity"]), "unit_price": measures.unit_price(line),
                   "line_total": shapes.money(line["line_total"]), "estimated": measures.is_estimate(line),
                   "problem": line["problem"].message if line["problem"] else None} for line in group["lines"]],
        "goods": shapes.money(group["goods"]),
        "open_times": [occurrence_shape(occurrence) for occurrence in group["offer"].occurrences]}
        for group in groups], "total": shapes.money(total), "fees_to_choose": fees_unknown,
        "hub_times": [{"key": time["key"], "place": time["name"], "when": time["when"], "fee": shapes.money(time["fee"]),
                       "producers": time["at"]} for time in checkout.hub_times(groups)]}


@bp.get("/v1/cart")
@requires("customer")
def cart():
    """The cart per producer, with each producer's open times to choose from at checkout."""
    return jsonify(cart_shape(g.api_user["id"]))


@bp.put("/v1/cart/lines/<int:product_id>")
@requires("customer")
def set_cart_line(product_id):
    """Set how much of a product the cart holds, capped at the stock; 0 removes it."""
    wanted = decimal_field(body(), "quantity")
    customer_id = g.api_user["id"]
    line = checkout.cart_line(customer_id, product_id)
    product = line or catalogue.listed_product(product_id)
    if product is None:
        raise Problem(404, "Not Found", "No product on sale has that id.")
    if wanted > 0 and line and line["problem"] and line["problem"].kind == "unavailable":
        raise Problem(409, "Conflict", f"{line['name']} is no longer available; you can only remove it.")
    if wanted > 0 and measures.quantity_problem(product, wanted):
        raise Problem(400, "Bad Request", measures.quantity_problem(product, wanted),
                      errors=[{"field": "quantity", "message": measures.quantity_problem(product, wanted)}])
    if line is None:
        now = checkout.add_to_cart(customer_id, product, wanted)[1] if wanted else Decimal(0)
    else:
        now = measures.fit(line, wanted, line["quantity_available"])
        checkout.set_cart_quantity(customer_id, product_id, now)
    return jsonify({"product_id": product_id, "quantity": measures.plain(now), "capped": now < wanted})


@bp.delete("/v1/cart/lines/<int:product_id>")
@requires("customer")
def remove_cart_line(product_id):
    if checkout.cart_line(g.api_user["id"], product_id) is None:
        raise Problem(404, "Not Found", "Your cart holds no such product.")
    checkout.set_cart_quantity(g.api_user["id"], product_id, 0)
    return "", 204


@bp.post("/v1/checkout")
@requires("customer")
def place_cart():
    """Place the cart as one order per producer, each for the time chosen for it (when_<producer_id>, a key
    from the cart's open_times) or one hub time for all at a pick-up (hub_when). The Idempotency-Key header
    makes a repeat return the first answer, and place nothing."""
    key = request.headers.get("Idempotency-Key", "")
    if not checkout.CHECKOUT_KEY.fullmatch(key):
        raise Problem(400, "Bad Request", "Send an Idempotency-Key header of 16 to 43 letters, digits, - or _.",
                      errors=[{"field": "Idempotency-Key", "message": "Missing or malformed."}])
    fields, customer_id = body(), g.api_user["id"]
    choices = {int(name[5:]): value for name, value in fields.items()
               if re.fullmatch(r"when_\d{1,10}", name) and site.WHEN_VALUE.fullmatch(value)}
    lines = checkout.cart_lines(customer_id)
    offers = checkout.offers_for(lines)
    groups = checkout.cart_groups(lines, choices, customer_id, offers)
    if fields.get("hub_when"):
        time = checkout.find_hub_time(groups, fields["hub_when"])
        if time is None:
            raise Problem(409, "Conflict", "That pick-up time has just filled up or is no longer open.")
        choices = {**choices, **time["keys"]}
        groups = checkout.cart_groups(lines, choices, customer_id, offers)
    if orders.checkout_order_ids(customer_id, key):
        return placed_answer(customer_id, key)
    details = site.CheckoutForm(formdata=fields, meta={"csrf": False})
    details.groups = groups
    missing = [{"field": f"when_{group['producer_id']}", "message": "Choose one of the producer's open_times."}
               for group in groups if group["offer"].occurrences and group["producer_id"] not in choices]
    if not details.validate() or missing:
        raise Problem(400, "Bad Request", "Some fields are not valid.", errors=missing + [
            {"field": name, "message": message} for name, messages in details.errors.items() for message in messages])
    try:
        checkout.place_orders(customer_id, choices, {
            "delivery_address": mail.address_lines(details.delivery_address.data) or None,
            "postcode": checkout.tidy_postcode(details.postcode.data), "phone": details.phone.data}, key, offers)
    except checkout.CheckoutRefused as refusal:
        raise Problem(409, "Conflict", " ".join(refusal.problems) + " Nothing was ordered.") from None
    return placed_answer(customer_id, key)


def placed_answer(customer_id, key):
    placed = orders.checkout_orders(customer_id, key)
    return jsonify({"orders": [orders.order_json(order) for order in placed],
                    "pay_url": url_for("pay_checkout", key=key, _external=True)
                    if any(order["status"] == "awaiting_payment" for order in placed) else None}), 201


# --- Orders, for each role its own ---------------------------------------------------

def own_order(order_id):
    """The caller's order (an operator's: any), whole; Problem 404 when it is not theirs."""
    user = g.api_user
    found = (orders.load_order(order_id) if user["role"] == "operator"
             else orders.load_own_order(user["role"], user["id"], order_id))
    if found is None:
        raise Problem(404, "Not Found", "You have no order with that id.")
    return found


@bp.get("/v1/orders")
@requires("customer", "producer", "operator")
def list_orders():
    """The caller's orders (an operator's: everyone's), newest first, 25 a page; ?status= and ?date= (the day
    they are collected or delivered) narrow them."""
    status, day = single("status"), single("date")
    if "status" in request.args and status not in orders.STATUS_LABELS:
        raise Problem(400, "Bad Request", "Not one of the statuses.", errors=[{"field": "status",
                                                                            "message": "Not one of the statuses."}])
    day = query_date("date", day) if "date" in request.args else None
    page, user = cursor_page(), g.api_user
    if user["role"] == "operator":
        rows, total = orders.all_orders_page(page, site.LIST_PAGE_SIZE, status=status or None, day=day)
    else:
        rows, total = orders.order_page(user["role"], user["id"], page, site.LIST_PAGE_SIZE, status or None, day)
    pages = max(1, -(-total // site.LIST_PAGE_SIZE))
    return jsonify({"items": [orders.order_json(row) for row in rows],
                    "total": total, "next": next_link("api.list_orders", page, pages)})


@bp.get("/v1/orders/<int:order_id>")
@requires("customer", "producer", "operator")
def get_order(order_id):
    return jsonify(orders.order_json(own_order(order_id)))


@bp.post("/v1/orders/<int:order_id>/cancel")
@requires("customer", "producer")
def cancel_order(order_id):
    """Cancel the caller's order, while the rules let them (a customer: until ordering closes)."""
    user = g.api_user
    order, changed = orders.change_order_status(user["role"], user["id"], order_id, "cancelled")
    if not changed:
        raise Problem(409, "Conflict", f"Order #{order_id} is {orders.status_label(order['status']).lower()}"
                      " and can no longer be cancelled here.")
    return jsonify(orders.order_json(own_order(order_id)))


@bp.post("/v1/orders/<int:order_id>/status")
@requires("producer")
def set_order_status(order_id):
    """Move one of the producer's orders on: confirmed, ready, out for delivery, completed or cancelled."""
    status = body().get("status", "")
    if status not in orders.STATUS_LABELS:
        raise Problem(400, "Bad Request", "Not one of the statuses.",
                      errors=[{"field": "status", "message": "Not one of the statuses."}])
    order, changed = orders.change_order_status("producer", g.api_user["id"], order_id, status)
    if not changed:
        raise Problem(409, "Conflict", f"Order #{order_id} cannot go from {order['status']} to {status}.")
    return jsonify(orders.order_json(own_order(order_id)))


@bp.put("/v1/orders/<int:order_id>/lines/<int:product_id>")
@requires("customer")
def change_order_line(order_id, product_id):
    """Set a line of the customer's order (0 removes it) until ordering closes."""
    quantity = decimal_field(body(), "quantity")
    try:
        changes.change_line(g.api_user["id"], order_id, product_id, quantity)
    except changes.ChangeRefused as refusal:
        raise Problem(409, "Conflict", refusal.problem) from None
    return jsonify(orders.order_json(own_order(order_id)))


# --- The operator: producers and customers ----------------------------------------------

def account_row_shape(kind, row):
    return {"id": row[accounts.ROLES[kind].key], "name": row[accounts.ROLES[kind].name], "email": row["email"],
            "status": row["status"], "joined_at": shapes.utc(row["date_joined"])}


@bp.get("/v1/admin/producers")
@requires("operator")
def admin_producers():
    """Every producer (?status= narrows them), by name, 25 a page."""
    status = single("status")
    if "status" in request.args and status not in accounts.ROLES["producer"].states:
        raise Problem(400, "Bad Request", "Not one of the producers' states.",
                      errors=[{"field": "status", "message": "Not one of the producers' states."}])
    page = cursor_page()
    rows, total = accounts.producer_page(status or None, page, site.LIST_PAGE_SIZE)
    pages = max(1, -(-total // site.LIST_PAGE_SIZE))
    return jsonify({"items": [account_row_shape("producer", row) for row in rows], "total": total,
                    "next": next_link("api.admin_producers", page, pages)})


@bp.get("/v1/admin/customers")
@requires("operator")
def admin_customers():
    """The customers whose email or first name holds ?q= (all without it), by email, 25 a page."""
    text = single("q")
    if len(text) > 200:
        raise Problem(400, "Bad Request", "At most 200 characters.",
                      errors=[{"field": "q", "message": "At most 200 characters."}])
    page = cursor_page()
    rows, total = accounts.customer_page(text.strip(), page, site.LIST_PAGE_SIZE)
    pages = max(1, -(-total // site.LIST_PAGE_SIZE))
    return jsonify({"items": [account_row_shape("customer", row) for row in rows], "total": total,
                    "next": next_link("api.admin_customers", page, pages)})


def change_state(kind, account_id, action):
    """As the operator, an action on an account (kept in the audit, as on their pages)."""
    if action not in accounts.ROLES[kind].actions:
        raise Problem(404, "Not Found", f"A {kind} can be {', '.join(accounts.ROLES[kind].actions)}d, nothing else.")
    filled = form(site.NoteForm)
    try:
        account, changed = accounts.change_account_state(g.api_user["id"], kind, account_id, action,
                                                         filled.note.data or "")
    except accounts.AccountNotFound:
        raise Problem(404, "Not Found", f"No {kind} has that id.") from None
    if not changed:
        raise Problem(409, "Conflict", f"{account['name']} is {accounts.ROLES[kind].states[account['status']].lower()},"
                      f" so they cannot be {action}d.")
    row = accounts.account_by_id(kind, account_id)
    return jsonify({"id": account_id, "name": row["name"], "email": row["email"], "status": row["status"]})


@bp.post("/v1/admin/producers/<int:producer_id>/<action>")
@requires("operator")
def admin_producer_action(producer_id, action):
    """Approve, suspend or reinstate a producer; a suspension revokes their API tokens too."""
    return change_state("producer", producer_id, action)


@bp.post("/v1/admin/customers/<int:customer_id>/<action>")
@requires("operator")
def admin_customer_action(customer_id, action):
    """Suspend or reinstate a customer."""
    return change_state("customer", customer_id, action)


@bp.post("/v1/orders/<int:order_id>/when")
@requires("customer")
def move_order(order_id):
    """Move the customer's order to another open time of its producer (a key of their open_times), until
    ordering closes."""
    key = body().get("when", "")
    if not site.WHEN_VALUE.fullmatch(key):
        raise Problem(400, "Bad Request", "Some fields are not valid.",
                      errors=[{"field": "when", "message": "A key from the producer's open_times."}])
    try:
        changes.move(g.api_user["id"], order_id, key)
    except changes.ChangeRefused as refusal:
        raise Problem(409, "Conflict", refusal.problem) from None
    return jsonify(orders.order_json(own_order(order_id)))


class ShortageForm(site.ShortageForm):
    product_id = site.id_field("Product")


@bp.post("/v1/orders/<int:order_id>/shortages")
@requires("producer")
def record_shortage(order_id):
    """Supply less of a line of one of the producer's orders than was ordered, saying why: the difference goes
    back to stock, the customer is told, and any paid difference goes to their credit."""
    filled = form(ShortageForm)
    try:
        changes.record_shortage(g.api_user["id"], order_id, filled.product_id.data, filled.quantity.data,
                                filled.reason.data)
    except changes.ChangeRefused as refusal:
        raise Problem(409, "Conflict", refusal.problem) from None
    return jsonify(orders.order_json(own_order(order_id)))


@bp.get("/v1/packing-lists/<day>")
@requires("producer")
def packing_list(day):
    """The producer's orders for a day with their lines, and how much of each product to pick across them."""
    day = site.checked_date(day)  # after the token: a stranger learns nothing, not even that a date is bad
    found = orders.packing_list(g.api_user["id"], day)
    rows, picks, cancelled = found if found else ([], [], 0)
    return jsonify({"date": day.isoformat(), "orders": [orders.order_json(dict(row, producer_id=g.api_user["id"],
                                                                         business_name=g.api_user["name"]))
                                                        for row in rows],
                    "picks": [{"product_id": pick["product_id"], "name": pick["name"], "unit": pick["unit"],
                               "quantity": measures.plain(pick["quantity"]),
                               "line": measures.line_text(pick)} for pick in picks],
                    "cancelled": cancelled})


# --- The producer's stock -----------------------------------------------------------

@bp.put("/v1/products/<int:product_id>/stock")
@requires("producer")
def set_stock(product_id):
    """Set how much of one of the producer's products is in stock."""
    quantity = decimal_field(body(), "quantity")
    if producers.own_product(g.api_user["id"], product_id) is None:
        raise Problem(404, "Not Found", "You have no product with that id.")
    producers.set_stock(product_id, quantity)
    return jsonify({"product_id": product_id, "quantity_available": measures.plain(quantity)})


@bp.post("/v1/products/<int:product_id>/stock/adjustments")
@requires("producer")
def adjust_stock(product_id):
    """Add to (or, with a negative by, take from) one of the producer's products' stock; concurrent
    adjustments all count, and none takes it below 0."""
    by = decimal_field(body(), "by", signed=True)
    try:
        now = producers.adjust_stock(g.api_user["id"], product_id, by)
    except producers.StockTooLow as low:
        raise Problem(409, "Conflict", f"Only {measures.plain(low.available)} in stock: that would go below 0.") from None
    if now is None:
        raise Problem(404, "Not Found", "You have no product with that id.")
    return jsonify({"product_id": product_id, "quantity_available": measures.plain(now)})


# --- The producer's products ----------------------------------------------------------

def own_product_shape(row):
    return {"id": row["product_id"], "name": row["name"], "description": row["description"],
            "category": row["category"], "price": shapes.money(row["price"]), "unit": row["unit"],
            "sold_by": row["sold_by"], "measure": row["measure"], "step": measures.plain(row["step"]),
            "min_quantity": measures.plain(row["min_quantity"]) if row["min_quantity"] is not None else None,
            "max_quantity": measures.plain(row["max_quantity"]) if row["max_quantity"] is not None else None,
            "estimated_weight": measures.plain(row["estimated_weight"]) if row["estimated_weight"] else None,
            "tolerance_percent": measures.plain(row["tolerance_percent"]), "vat_rate": row["vat_rate"],
            "quantity_available": measures.plain(row["quantity_available"]),
            "reorder_threshold": measures.plain(row["reorder_threshold"]), "is_available": bool(row["is_available"]),
            "image_url": row["image_url"]}


def own_product(product_id):
    found = producers.own_product(g.api_user["id"], product_id)
    if found is None:
        raise Problem(404, "Not Found", "You have no product with that id.")
    return found


NEW_PRODUCT = {"is_available": "true", "reorder_threshold": "5", "quantity_available": "0", "sold_by": "unit",
               "measure": "kg", "tolerance_percent": "10", "vat_rate": "zero", "description": ""}


def product_form(current=None):
    """The product's fields from the body over current's (or a new product's defaults), checked as the
    dashboard's form checks them."""
    if current is None:
        defaults = NEW_PRODUCT
    else:
        defaults = {name: ("true" if value else "false") if name == "is_available" else
                    measures.plain(value) if isinstance(value, Decimal) else value
                    for name, value in current.items() if name in site.PRODUCT_FIELDS and value is not None}
    return form(site.ProductForm, **defaults)


@bp.post("/v1/products")
@requires("producer")
def create_product():
    """Add a product to the producer's shop, with its stock (a photo: PUT .../photo)."""
    filled = product_form()
    product_id = producers.add_product(g.api_user, site.product_fields(filled))
    return jsonify(own_product_shape(own_product(product_id))), 201


@bp.patch("/v1/products/<int:product_id>")
@requires("producer")
def update_product(product_id):
    """Change some of a product's fields; those not given stay as they are."""
    current = own_product(product_id)
    if not body():
        raise Problem(400, "Bad Request", "Send the fields to change.")
    filled = product_form(current)
    producers.save_product(g.api_user, current, site.product_fields(filled),
                           measures.plain(current["quantity_available"]))
    return jsonify(own_product_shape(own_product(product_id)))


@bp.delete("/v1/products/<int:product_id>")
@requires("producer")
def archive_product(product_id):
    """Take a product out of the shop: archived when it was ever ordered (order history keeps it), else
    deleted."""
    found = producers.delete_or_archive(g.api_user["id"], "product", product_id)
    if found is None:
        raise Problem(404, "Not Found", "You have no product with that id.")
    return jsonify({"id": product_id, "archived": bool(found[1])})


@bp.put("/v1/products/<int:product_id>/photo")
@requires("producer")
def upload_photo(product_id):
    """Replace a product's photo: the body is the image (JPEG, PNG or WebP, up to 5 MB), or form data with it
    as image."""
    current = own_product(product_id)
    upload = request.files.get("image")
    data = upload.read(images.MAX_IMAGE_BYTES + 1) if upload else request.get_data(cache=False)
    if not data:
        raise Problem(400, "Bad Request", "Send the image as the body, or as the form field image.",
                      errors=[{"field": "image", "message": "No image."}])
    try:
        encoded = images.reencode(data)
    except images.ImageRefused as refusal:
        raise Problem(400, "Bad Request", refusal.args[0],
                      errors=[{"field": "image", "message": refusal.args[0]}]) from None
    producers.replace_photo(g.api_user["id"], current, encoded)
    return jsonify(own_product_shape(own_product(product_id)))


class WeightForm(site.Form):
    product_id = site.id_field("Product")
    weight = site.quantity_field("Weight (kg)", 0)
    confirm = site.BooleanField("Confirm a weight over the tolerance")


@bp.post("/v1/orders/<int:order_id>/weights")
@requires("producer")
def record_weight(order_id):
    """Record the final weight of a weighed line of one of the producer's orders: it is repriced (never above
    its estimate plus tolerance) and, once all its lines are weighed, the customer is emailed the total."""
    filled = form(WeightForm)
    key = (order_id, filled.product_id.data)
    try:
        changes.record_weights(g.api_user["id"], {key: filled.weight.data}, {key} if filled.confirm.data else set())
    except changes.WeightsRefused as refused:
        check = refused.problems[key]
        raise Problem(409 if check.needs_confirming else 400, "Conflict" if check.needs_confirming else "Bad Request",
                      check.problem + (" Send confirm=true to record it." if check.needs_confirming else ""),
                      errors=[{"field": "weight", "message": check.problem}]) from None
    except changes.ChangeRefused as refusal:
        raise Problem(409, "Conflict", refusal.problem) from None
    return jsonify(orders.order_json(own_order(order_id)))


# --- Webhooks --------------------------------------------------------------------------

def endpoint_shape(row):
    return {"id": row["endpoint_id"], "url": row["url"], "events": row["events"],
            "created_at": shapes.utc(row["created_at"])}


@bp.get("/v1/webhooks")
@requires("producer", "operator")
def list_webhooks():
    """Your webhook endpoints."""
    return jsonify({"items": [endpoint_shape(row) for row in webhooks.endpoints(g.api_user["role"], g.api_user["id"])]})


@bp.post("/v1/webhooks")
@requires("producer", "operator")
def create_webhook():
    """Register an endpoint for some events: 201 with its signing secret (made for you when none is given)."""
    filled = form(site.WebhookForm)
    try:
        added = webhooks.register(g.api_user["role"], g.api_user["id"], filled.url.data, filled.events.data,
                                  filled.secret.data or None)
    except webhooks.EndpointRefused as refusal:
        raise Problem(400, "Bad Request", refusal.message,
                      errors=[{"field": refusal.field, "message": refusal.message}]) from None
    return jsonify(dict(endpoint_shape(added), secret=added["secret"])), 201


@bp.delete("/v1/webhooks/<int:endpoint_id>")
@requires("producer", "operator")
def remove_webhook(endpoint_id):
    """Remove one of your endpoints; events not yet sent to it are dropped."""
    if not webhooks.remove(g.api_user["role"], g.api_user["id"], endpoint_id):
        raise Problem(404, "Not Found", "You have no endpoint with that id.")
    return "", 204


# --- The DFC catalogue ------------------------------------------------------------------

@bp.get("/dfc/producers/<int:producer_id>/catalog")
def dfc_catalog(producer_id):
    """A producer's catalogue in the Data Food Consortium ontology (JSON-LD): for other food platforms."""
    found = dfc.catalog(producer_id, request.base_url,
                        lambda product_id: url_for("product_page", product_id=product_id, _external=True),
                        lambda path: path if "://" in path else request.host_url.rstrip("/") + path)
    if found is None:
        raise Problem(404, "Not Found", "No approved producer has that id.")
    response = conditional(found)
    response.mimetype = "application/ld+json"
    return response


# --- The document ---------------------------------------------------------------------

@bp.get("/v1/openapi.json")
def openapi():
    """This API's OpenAPI 3.1 document."""
    return conditional(api_document.build(current_app.config["BASE_URL"]))
