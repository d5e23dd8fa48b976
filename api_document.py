"""The OpenAPI 3.1 document of /api/v1: every operation, parameter, body, answer and error. api.py serves it;
tests hold it to the routes and check the answers against it."""
import accounts
import catalogue
import measures
import orders
import webhooks

TEXT = {"type": "string"}
ID = {"type": "integer", "minimum": 1}
NULLABLE_TEXT = {"type": ["string", "null"]}


def ref(name):
    return {"$ref": f"#/components/schemas/{name}"}


def obj(required, **properties):
    return {"type": "object", "required": list(required), "properties": properties}


def answer(description, schema=None, headers=None):
    found = {"description": description}
    if schema is not None:
        found["content"] = {"application/json": {"schema": schema}}
    if headers:
        found["headers"] = headers
    return found


PROBLEMS = {
    400: "A field or parameter is not valid: errors names each.",
    401: "No live token: none was sent where one is needed, or it is unknown, expired or revoked.",
    403: "Not for this token's role, or the account may not act now.",
    404: "No such thing, or not yours.",
    409: "What is there now refuses it (sold out, closed, full, already done): nothing changed.",
    429: "Too many tries, or more requests than the token's rate: wait as Retry-After says.",
    503: "Busy, or the database cannot be reached: nothing changed; try again after Retry-After.",
}


def errors(*codes):
    """Problems an operation answers with (RFC 9457); any may answer 401 for a bearer token that is not live,
    429 for one past its rate, and 503 while the database cannot be reached or the change kept losing to
    others."""
    return {str(code): {"description": PROBLEMS[code],
                        "content": {"application/problem+json": {"schema": ref("Problem")}}}
            for code in sorted(set(codes) | {401, 429, 503})}


def body(schema):
    """A request body, as a JSON object or as form data alike."""
    return {"required": True, "content": {"application/json": {"schema": schema},
                                          "application/x-www-form-urlencoded": {"schema": schema}}}


def query_parameter(name, schema, description):
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


def path_id(name):
    return {"name": name, "in": "path", "required": True, "schema": ID}


BEARER = [{"bearer": []}]


def account_action(kind, verbs):
    """An operator's action on an account of kind, as on their pages: POST .../{<kind>_id}/{action}."""
    return {"post": {
        "operationId": f"admin{kind.title()}Action", "summary": f"{verbs} a {kind} (operators)", "tags": ["Operators"],
        "security": BEARER, "parameters": [
            path_id(f"{kind}_id"),
            {"name": "action", "in": "path", "required": True,
             "schema": {"type": "string", "enum": list(accounts.ROLES[kind].actions)}}],
        "requestBody": {"required": False, "content": body(ref("Note"))["content"]},
        "responses": {"200": answer(f"The {kind} now.", ref("AccountState")), **errors(400, 403, 404, 409)}}}
CURSOR = query_parameter("cursor", TEXT, "The `next` link's cursor, for the following page.")
CATALOGUE_PARAMETERS = [
    query_parameter("q", {"type": "string", "maxLength": 200}, "Words to search names, descriptions and producers."),
    query_parameter("category", {"type": "string", "enum": catalogue.CATEGORIES}, "One category."),
    query_parameter("producer", ID, "A producer's id."),
    query_parameter("sort", {"type": "string", "enum": list(catalogue.CATALOGUE_SORTS)},
                    "The order (relevance by default); in stock comes first in each."),
    query_parameter("in_stock", {"type": "string", "enum": ["0", "1"]}, "1 for products in stock only."),
    CURSOR,
]
ETAG = {"ETag": {"schema": TEXT, "description": "Send it back in If-None-Match: 304 while nothing changed."}}

MONEY = {"$ref": "#/components/schemas/Money"}
QUANTITY = {"type": ["string", "number"], "description": "A decimal, with at most 3 places."}
PRICE = {"type": ["string", "number"], "description": "A decimal, from 0.01 to 9999.99."}
STATUS = {"type": "string", "enum": orders.ORDER_STATUSES}
IDEMPOTENCY_KEY = {"name": "Idempotency-Key", "in": "header", "required": True,
                   "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{16,43}$"},
                   "description": "Your own key for this checkout: a repeat returns the first answer."}

SCHEMAS = {
    "Money": obj(["amount", "currency"], amount={"type": "string", "pattern": r"^-?[0-9]+\.[0-9]{2}$"},
                 currency={"type": "string", "pattern": "^[A-Z]{3}$"}),
    "Product": obj(["id", "name", "category", "price", "unit", "sold_by", "quantity_available", "in_stock", "producer",
                    "url"],
                   id=ID, name=TEXT, description=NULLABLE_TEXT, category=TEXT, price=ref("Money"), unit=TEXT,
                   unit_price={"type": "string", "description": "The price as a shopper reads it, like £1.80 / kg."},
                   sold_by={"type": "string", "enum": ["unit", "measure", "weighed"]}, measure=NULLABLE_TEXT,
                   quantity_available={"type": "string", "description": "A decimal, in the product's measure."},
                   in_stock={"type": "boolean"},
                   producer=obj(["id", "name"], id=ID, name=TEXT), image_url=NULLABLE_TEXT,
                   url={"type": "string", "format": "uri"}),
    "ProductList": obj(["items", "total", "next"], items={"type": "array", "items": ref("Product")},
                       total={"type": "integer", "minimum": 0}, next={"type": ["string", "null"], "format": "uri"}),
    "ProducerSummary": obj(["id", "name", "products_on_sale"], id=ID, name=TEXT, town=NULLABLE_TEXT,
                           products_on_sale={"type": "integer", "minimum": 0}),
    "ProducerList": obj(["items", "total", "next"], items={"type": "array", "items": ref("ProducerSummary")},
                        total={"type": "integer", "minimum": 0}, next={"type": ["string", "null"], "format": "uri"}),
    "Option": obj(["id", "kind", "name", "summary", "fee", "minimum_order", "payment_method", "hub"],
                  id=ID, kind={"type": "string", "enum": ["collection", "delivery"]}, name=TEXT, summary=TEXT,
                  fee=ref("Money"), minimum_order=ref("Money"),
                  payment_method={"type": "string", "enum": ["collection", "transfer", "credit", "card"]},
                  hub={"type": "boolean", "description": "A co-op pick-up shared by several producers."}),
    "OpenTime": obj(["key", "option_id", "kind", "place", "date", "start", "end", "timezone", "ordering_closes_at",
                     "hub"],
                    key={"type": "string", "description": "What checkout takes for this time."}, option_id=ID,
                    kind={"type": "string", "enum": ["collection", "delivery"]}, place=TEXT,
                    date={"type": ["string", "null"], "format": "date"},
                    start={"type": ["string", "null"], "pattern": "^[0-9]{2}:[0-9]{2}$"},
                    end={"type": ["string", "null"], "pattern": "^[0-9]{2}:[0-9]{2}$"},
                    timezone={"type": "string", "description": "The zone of date, start and end."},
                    ordering_closes_at={"type": ["string", "null"], "format": "date-time"}, hub={"type": "boolean"}),
    "Producer": obj(["id", "name", "options", "open_times"], id=ID, name=TEXT, description=NULLABLE_TEXT,
                    town=NULLABLE_TEXT, website=NULLABLE_TEXT, payment_info=NULLABLE_TEXT,
                    options={"type": "array", "items": ref("Option")},
                    open_times={"type": "array", "items": ref("OpenTime")}),
    "Account": obj(["id", "role", "name", "email", "status"], id=ID,
                   role={"type": "string", "enum": ["customer", "producer", "operator"]}, name=TEXT,
                   email={"type": "string", "format": "email"}, status=TEXT,
                   reminders={"type": "boolean", "description": "Customers: a reminder the day before."}),
    "ProfileChange": {"type": "object", "additionalProperties": False,
                      "description": "A field sent as null is left as it is.", "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 100,
                 "description": "Your name; a producer's business name."},
        "reminders": {"type": ["boolean", "string", "integer"], "enum": [True, False, "true", "false", "1", "0", 1, 0],
                      "description": "Customers: email a reminder the day before an order."}}},
    "Token": obj(["id", "name", "created_at", "expires_at", "last_used_at"], id=ID, name=TEXT,
                 created_at={"type": "string", "format": "date-time"},
                 expires_at={"type": "string", "format": "date-time"},
                 last_used_at={"type": ["string", "null"], "format": "date-time"}),
    "NewToken": {"allOf": [ref("Token"), obj(["token"], token={"type": "string", "description": "Shown once."})]},
    "TokenList": obj(["items"], items={"type": "array", "items": ref("Token")}),
    "CartLine": obj(["product_id", "name", "quantity", "unit_price", "line_total", "estimated", "problem"],
                    product_id=ID, name=TEXT, quantity=TEXT, unit_price=TEXT, line_total=MONEY,
                    estimated={"type": "boolean", "description": "Weighed goods: charged at their packed weight."},
                    problem=NULLABLE_TEXT),
    "Cart": obj(["groups", "total", "fees_to_choose", "hub_times"],
                groups={"type": "array", "items": obj(["producer", "lines", "goods", "open_times"],
                                                      producer=obj(["id", "name"], id=ID, name=TEXT),
                                                      lines={"type": "array", "items": ref("CartLine")},
                                                      goods=MONEY,
                                                      open_times={"type": "array", "items": ref("OpenTime")})},
                total=MONEY, fees_to_choose={"type": "boolean"},
                hub_times={"type": "array", "items": obj(["key", "place", "when", "fee", "producers"], key=TEXT,
                                                         place=TEXT, when=TEXT, fee=MONEY,
                                                         producers={"type": "array", "items": TEXT})}),
    "CartLineSet": obj(["product_id", "quantity", "capped"], product_id=ID, quantity=TEXT,
                       capped={"type": "boolean", "description": "Less than asked for: the stock ran short."}),
    "Quantity": obj(["quantity"], quantity=QUANTITY),
    "Adjustment": obj(["by"], by={"type": ["string", "number"], "description": "Added to the stock; negative "
                                                                                "takes away."}),
    "StockLevel": obj(["product_id", "quantity_available"], product_id=ID, quantity_available=TEXT),
    "StatusChange": obj(["status"], status=STATUS),
    "CheckoutRequest": {"type": "object", "properties": {
        "hub_when": {"type": "string", "description": "One of the cart's hub_times: one pick-up for them all."},
        "delivery_address": {"type": "string", "maxLength": 500}, "postcode": {"type": "string", "maxLength": 12},
        "phone": {"type": "string", "maxLength": 40}},
        "patternProperties": {"^when_[0-9]+$": {"type": "string", "description": "For producer <id>: a key of "
                                                                                  "their open_times."}}},
    "OrderLine": obj(["product_id", "name", "quantity", "unit_price", "line_total", "weight"], product_id=ID,
                     name=TEXT, quantity=TEXT, unit_price=MONEY, line_total=MONEY, weight=NULLABLE_TEXT),
    "Order": obj(["id", "status", "type", "placed_at", "producer", "customer", "place", "when", "date",
                  "ordering_closes_at", "goods", "fee", "total", "payment", "basket_id"],
                 id=ID, status=STATUS, type={"type": "string", "enum": ["collection", "delivery"]},
                 placed_at={"type": "string", "format": "date-time"},
                 producer=obj(["id", "name"], id=ID, name=TEXT), customer=obj(["id", "name"], id=ID, name=TEXT),
                 place=NULLABLE_TEXT, when=NULLABLE_TEXT, date={"type": ["string", "null"], "format": "date"},
                 ordering_closes_at={"type": ["string", "null"], "format": "date-time"}, goods=MONEY, fee=MONEY,
                 total=MONEY, payment=obj(["method", "status"], method=TEXT, status=TEXT),
                 basket_id={"type": ["integer", "null"]},
                 lines={"type": "array", "items": ref("OrderLine")}),
    "OrderList": obj(["items", "total", "next"], items={"type": "array", "items": ref("Order")},
                     total={"type": "integer", "minimum": 0}, next={"type": ["string", "null"], "format": "uri"}),
    "Placed": obj(["orders", "pay_url"], orders={"type": "array", "items": ref("Order")},
                  pay_url={"type": ["string", "null"], "format": "uri",
                           "description": "Orders paid by card wait for the card here."}),
    "AccountRow": obj(["id", "name", "email", "status", "joined_at"], id=ID, name=TEXT,
                      email={"type": "string", "format": "email"}, status=TEXT,
                      joined_at={"type": ["string", "null"], "format": "date-time"}),
    "AccountList": obj(["items", "total", "next"], items={"type": "array", "items": ref("AccountRow")},
                       total={"type": "integer", "minimum": 0}, next={"type": ["string", "null"], "format": "uri"}),
    "AccountState": obj(["id", "name", "email", "status"], id=ID, name=TEXT,
                        email={"type": "string", "format": "email"}, status=TEXT),
    "Note": {"type": "object", "properties": {"note": {"type": "string", "maxLength": 500,
                                                       "description": "Why, for the audit (and a producer's email)."}}},
    "PackingList": obj(["date", "orders", "picks", "cancelled"], date={"type": "string", "format": "date"},
                       orders={"type": "array", "items": ref("Order")},
                       picks={"type": "array", "items": obj(["product_id", "name", "unit", "quantity", "line"],
                                                            product_id=ID, name=TEXT, unit=TEXT, quantity=TEXT,
                                                            line=TEXT)},
                       cancelled={"type": "integer", "minimum": 0}),
    "ProductFields": {"type": "object", "description": "A field sent as null is left as it is.", "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 255}, "description": {"type": "string", "maxLength": 5000},
        "category": {"type": "string", "enum": catalogue.CATEGORIES}, "price": PRICE,
        "unit": {"type": "string", "minLength": 1, "maxLength": 30, "description": "Like jar, dozen, loaf."},
        "sold_by": {"type": "string", "enum": list(measures.SOLD_BY)},
        "measure": {"type": "string", "enum": list(measures.MEASURES), "description": "When sold by measure."},
        "step": QUANTITY, "min_quantity": QUANTITY, "max_quantity": QUANTITY, "estimated_weight": QUANTITY,
        "tolerance_percent": QUANTITY, "vat_rate": {"type": "string", "enum": ["zero", "reduced", "standard"]},
        "quantity_available": QUANTITY, "reorder_threshold": QUANTITY,
        "is_available": {"type": ["boolean", "string"], "description": "Shown in the catalogue."}}},
    "NewProduct": {"allOf": [ref("ProductFields"), {"required": ["name", "category", "price", "unit"]}]},
    "OwnProduct": obj(["id", "name", "category", "price", "unit", "sold_by", "quantity_available",
                       "reorder_threshold", "is_available"],
                      id=ID, name=TEXT, description=NULLABLE_TEXT, category=TEXT, price=MONEY, unit=TEXT,
                      sold_by={"type": "string", "enum": list(measures.SOLD_BY)}, measure=NULLABLE_TEXT, step=TEXT,
                      min_quantity=NULLABLE_TEXT, max_quantity=NULLABLE_TEXT, estimated_weight=NULLABLE_TEXT,
                      tolerance_percent=TEXT, vat_rate=TEXT, quantity_available=TEXT, reorder_threshold=TEXT,
                      is_available={"type": "boolean"}, image_url=NULLABLE_TEXT),
    "Removed": obj(["id", "archived"], id=ID, archived={"type": "boolean", "description": "Archived, as it was "
                                                                                         "ordered before; else deleted."}),
    "Weight": obj(["product_id", "weight"], product_id=ID, weight=QUANTITY,
                  confirm={"type": ["boolean", "string"], "description": "Record a weight over the tolerance."}),
    "WebhookEndpoint": obj(["id", "url", "events", "created_at"], id=ID, url=TEXT,
                           events={"type": "array", "items": {"type": "string", "enum": list(webhooks.EVENTS)}},
                           created_at={"type": "string", "format": "date-time"}),
    "NewWebhookEndpoint": {"allOf": [ref("WebhookEndpoint"), obj(["secret"], secret={
        "type": "string", "description": "Signs each delivery: keep it."})]},
    "WebhookList": obj(["items"], items={"type": "array", "items": ref("WebhookEndpoint")}),
    "WebhookRequest": obj(["url", "events"], url={"type": "string", "maxLength": 500},
                          events={"type": "array", "minItems": 1,
                                  "items": {"type": "string", "enum": list(webhooks.EVENTS)}},
                          secret={"type": "string", "pattern": "^[!-~]{16,100}$",
                                  "description": "Your own; one is made for you without it."}),
    "WebhookEvent": obj(["id", "type", "created_at", "data"], id={"type": "string", "format": "uuid",
                                                                  "description": "Also the Noeari-Event-Id header."},
                        type={"type": "string", "enum": list(webhooks.EVENTS)},
                        created_at={"type": "string", "format": "date-time"},
                        data={"type": "object", "description": "An order (order.*), the order and an amount "
                                                               "(payment.*), or a product's stock (stock.low)."}),
    "Problem": obj(["type", "title", "status"], type=TEXT, title=TEXT, status={"type": "integer"}, detail=TEXT,
                   errors={"type": "array", "items": obj(["field", "message"], field=TEXT, message=TEXT)}),
    "SignUp": obj(["name", "email", "password"], name={"type": "string", "maxLength": 100},
                  email={"type": "string", "format": "email", "maxLength": 254},
                  password={"type": "string", "minLength": 8}),
    "TokenRequest": obj(["email", "password", "role"], email={"type": "string", "format": "email"}, password=TEXT,
                        role={"type": "string", "enum": ["customer", "producer", "operator"]},
                        name={"type": "string", "maxLength": 100, "description": "To tell your tokens apart."}),
}



def properties(schema):
    """A body schema's fields by name, through $ref and allOf."""
    if "$ref" in schema:
        return properties(SCHEMAS[schema["$ref"].rsplit("/", 1)[1]])
    found = dict(schema.get("properties", {}))
    for part in schema.get("allOf", []):
        found.update(properties(part))
    return found


def nullable(schema):
    """schema, or null: on a change, a field sent as null is left as it is."""
    types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    found = dict(schema, type=types + ["null"])
    if "enum" in schema:
        found["enum"] = schema["enum"] + [None]
    return found


for _name in ("ProductFields", "ProfileChange"):
    SCHEMAS[_name]["properties"] = {field: nullable(schema) for field, schema in SCHEMAS[_name]["properties"].items()}

PATHS = {
    "/api/v1/customers": {"post": {
        "operationId": "signUp", "summary": "Sign a customer up", "tags": ["Accounts"],
        "requestBody": body(ref("SignUp")),
        "responses": {"201": answer("The new customer.", ref("Account")), **errors(400, 409, 429)}}},
    "/api/v1/tokens": {
        "post": {"operationId": "createToken", "summary": "Log in: a bearer token for an account", "tags": ["Accounts"],
                 "requestBody": body(ref("TokenRequest")),
                 "responses": {"201": answer("The token, shown once, and when it expires.", ref("NewToken")),
                               **errors(400, 401, 403, 429)}},
        "get": {"operationId": "listTokens", "summary": "Your live tokens", "tags": ["Accounts"], "security": BEARER,
                "responses": {"200": answer("Your tokens, newest first.", ref("TokenList")), **errors(401)}}},
    "/api/v1/tokens/{token_id}": {"delete": {
        "operationId": "revokeToken", "summary": "Revoke one of your tokens", "tags": ["Accounts"],
        "security": BEARER, "parameters": [path_id("token_id")],
        "responses": {"204": answer("Revoked."), **errors(401, 404)}}},
    "/api/v1/me": {
        "get": {"operationId": "me", "summary": "The account of the token", "tags": ["Accounts"], "security": BEARER,
                "responses": {"200": answer("Your account.", ref("Account")), **errors(401)}},
        "patch": {"operationId": "changeMe", "summary": "Change your name, or a customer's reminders",
                  "tags": ["Accounts"], "security": BEARER, "requestBody": body(ref("ProfileChange")),
                  "responses": {"200": answer("Your account now.", ref("Account")), **errors(400, 401)}}},
    "/api/v1/products": {
        "get": {"operationId": "listProducts", "summary": "Products on sale", "tags": ["Catalogue"],
                "parameters": CATALOGUE_PARAMETERS,
                "responses": {"200": answer("A page of products.", ref("ProductList"), ETAG),
                              "304": answer("Not modified."), **errors(400)}},
        "post": {"operationId": "createProduct", "summary": "Add a product to your shop (producers)",
                 "tags": ["Producers"], "security": BEARER,
                 "requestBody": body(ref("NewProduct")),
                 "responses": {"201": answer("The product.", ref("OwnProduct")), **errors(400, 403)}}},
    "/api/v1/products/{product_id}": {
        "get": {"operationId": "getProduct", "summary": "A product on sale", "tags": ["Catalogue"],
                "parameters": [path_id("product_id")],
                "responses": {"200": answer("The product.", ref("Product"), ETAG), "304": answer("Not modified."),
                              **errors(404)}},
        "patch": {"operationId": "updateProduct", "summary": "Change some of your product's fields (producers)",
                  "tags": ["Producers"], "security": BEARER, "parameters": [path_id("product_id")],
                  "requestBody": body(ref("ProductFields")),
                  "responses": {"200": answer("The product now.", ref("OwnProduct")), **errors(400, 403, 404)}},
        "delete": {"operationId": "archiveProduct", "summary": "Take your product out of the shop (producers)",
                   "tags": ["Producers"], "security": BEARER, "parameters": [path_id("product_id")],
                   "responses": {"200": answer("Archived or deleted.", ref("Removed")), **errors(403, 404)}}},
    "/api/v1/producers": {"get": {
        "operationId": "listProducers", "summary": "The co-op's producers", "tags": ["Catalogue"],
        "parameters": [CURSOR],
        "responses": {"200": answer("A page of producers.", ref("ProducerList"), ETAG),
                      "304": answer("Not modified."), **errors(400)}}},
    "/api/v1/producers/{producer_id}": {"get": {
        "operationId": "getProducer", "summary": "A producer, their options and the times open now",
        "tags": ["Catalogue"], "parameters": [path_id("producer_id")],
        "responses": {"200": answer("The producer.", ref("Producer"), ETAG), "304": answer("Not modified."),
                      **errors(404)}}},
    "/api/v1/cart": {"get": {
        "operationId": "getCart", "summary": "Your cart, per producer, with their open times", "tags": ["Customers"],
        "security": BEARER, "responses": {"200": answer("The cart.", ref("Cart")), **errors(403)}}},
    "/api/v1/cart/lines/{product_id}": {
        "put": {"operationId": "setCartLine", "summary": "Set how much of a product the cart holds",
                "tags": ["Customers"], "security": BEARER, "parameters": [path_id("product_id")],
                "requestBody": body(ref("Quantity")),
                "responses": {"200": answer("The line now.", ref("CartLineSet")), **errors(400, 403, 404, 409)}},
        "delete": {"operationId": "removeCartLine", "summary": "Remove a product from the cart", "tags": ["Customers"],
                   "security": BEARER, "parameters": [path_id("product_id")],
                   "responses": {"204": answer("Removed."), **errors(403, 404)}}},
    "/api/v1/checkout": {"post": {
        "operationId": "checkout", "summary": "Place the cart: one order per producer", "tags": ["Customers"],
        "security": BEARER, "parameters": [IDEMPOTENCY_KEY], "requestBody": body(ref("CheckoutRequest")),
        "responses": {"201": answer("The orders placed (the first answer again, for a repeated key).",
                                    ref("Placed")), **errors(400, 403, 409)}}},
    "/api/v1/orders": {"get": {
        "operationId": "listOrders", "summary": "Your orders (an operator: everyone's), newest first",
        "tags": ["Orders"], "security": BEARER,
        "parameters": [query_parameter("status", STATUS, "Only orders in this status."),
                       query_parameter("date", {"type": "string", "format": "date"},
                                       "Only orders collected or delivered on this day (YYYY-MM-DD)."), CURSOR],
        "responses": {"200": answer("A page of orders.", ref("OrderList")), **errors(400)}}},
    "/api/v1/orders/{order_id}": {"get": {
        "operationId": "getOrder", "summary": "One of your orders, with its lines", "tags": ["Orders"],
        "security": BEARER, "parameters": [path_id("order_id")],
        "responses": {"200": answer("The order.", ref("Order")), **errors(404)}}},
    "/api/v1/orders/{order_id}/cancel": {"post": {
        "operationId": "cancelOrder", "summary": "Cancel one of your orders, while the rules allow",
        "tags": ["Orders"], "security": BEARER, "parameters": [path_id("order_id")],
        "responses": {"200": answer("The order, cancelled.", ref("Order")), **errors(403, 404, 409)}}},
    "/api/v1/orders/{order_id}/status": {"post": {
        "operationId": "setOrderStatus", "summary": "Move one of your orders on (producers)", "tags": ["Orders"],
        "security": BEARER, "parameters": [path_id("order_id")], "requestBody": body(ref("StatusChange")),
        "responses": {"200": answer("The order now.", ref("Order")), **errors(400, 403, 404, 409)}}},
    "/api/v1/orders/{order_id}/lines/{product_id}": {"put": {
        "operationId": "changeOrderLine", "summary": "Change a line of your order until ordering closes",
        "tags": ["Orders"], "security": BEARER, "parameters": [path_id("order_id"), path_id("product_id")],
        "requestBody": body(ref("Quantity")),
        "responses": {"200": answer("The order now.", ref("Order")), **errors(400, 403, 404, 409)}}},
    "/api/v1/admin/producers": {"get": {
        "operationId": "adminProducers", "summary": "Every producer, by name (operators)", "tags": ["Operators"],
        "security": BEARER, "parameters": [
            query_parameter("status", {"type": "string", "enum": list(accounts.ROLES["producer"].states)},
                            "Only producers in this state."), CURSOR],
        "responses": {"200": answer("A page of producers.", ref("AccountList")), **errors(400, 403)}}},
    "/api/v1/admin/producers/{producer_id}/{action}": account_action("producer", "Approve, suspend or reinstate"),
    "/api/v1/admin/customers": {"get": {
        "operationId": "adminCustomers", "summary": "Customers, by email (operators)", "tags": ["Operators"],
        "security": BEARER, "parameters": [
            query_parameter("q", {"type": "string", "maxLength": 200}, "Part of an email or first name."), CURSOR],
        "responses": {"200": answer("A page of customers.", ref("AccountList")), **errors(400, 403)}}},
    "/api/v1/admin/customers/{customer_id}/{action}": account_action("customer", "Suspend or reinstate"),
    "/api/v1/orders/{order_id}/when": {"post": {
        "operationId": "moveOrder", "summary": "Move your order to another open time until ordering closes",
        "tags": ["Orders"], "security": BEARER, "parameters": [path_id("order_id")],
        "requestBody": body(obj(["when"], when={"type": "string", "description": "A key of the producer's "
                                                                                   "open_times."})),
        "responses": {"200": answer("The order now.", ref("Order")), **errors(400, 403, 404, 409)}}},
    "/api/v1/orders/{order_id}/shortages": {"post": {
        "operationId": "recordShortage", "summary": "Supply less of a line than was ordered (producers)",
        "tags": ["Producers"], "security": BEARER, "parameters": [path_id("order_id")],
        "requestBody": body(obj(["product_id", "quantity", "reason"], product_id=ID, quantity=QUANTITY,
                                reason={"type": "string", "minLength": 1, "maxLength": 200,
                                        "description": "Why, for the customer."})),
        "responses": {"200": answer("The order now.", ref("Order")), **errors(400, 403, 404, 409)}}},
    "/api/v1/packing-lists/{day}": {"get": {
        "operationId": "packingList", "summary": "Your orders for a day and what to pick (producers)",
        "tags": ["Producers"], "security": BEARER,
        "parameters": [{"name": "day", "in": "path", "required": True,
                        "schema": {"type": "string", "format": "date", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"}}],
        "responses": {"200": answer("The day's list.", ref("PackingList")), **errors(400, 403, 404)}}},
    "/api/v1/products/{product_id}/stock": {"put": {
        "operationId": "setStock", "summary": "Set a product's stock (producers)", "tags": ["Producers"],
        "security": BEARER, "parameters": [path_id("product_id")], "requestBody": body(ref("Quantity")),
        "responses": {"200": answer("The stock now.", ref("StockLevel")), **errors(400, 403, 404)}}},
    "/api/v1/products/{product_id}/stock/adjustments": {"post": {
        "operationId": "adjustStock", "summary": "Add to or take from a product's stock (producers)",
        "tags": ["Producers"], "security": BEARER, "parameters": [path_id("product_id")],
        "requestBody": body(ref("Adjustment")),
        "responses": {"200": answer("The stock now.", ref("StockLevel")), **errors(400, 403, 404, 409)}}},
    "/api/v1/orders/{order_id}/weights": {"post": {
        "operationId": "recordWeight", "summary": "Record a weighed line's final weight (producers)",
        "tags": ["Producers"], "security": BEARER, "parameters": [path_id("order_id")],
        "requestBody": body(ref("Weight")),
        "responses": {"200": answer("The order now.", ref("Order")), **errors(400, 403, 404, 409)}}},
    "/api/v1/products/{product_id}/photo": {"put": {
        "operationId": "uploadPhoto", "summary": "Replace a product's photo (producers)", "tags": ["Producers"],
        "security": BEARER, "parameters": [path_id("product_id")],
        "requestBody": {"required": True, "content": {
            **{kind: {"schema": {"type": "string", "format": "binary"}} for kind in ("image/jpeg", "image/png",
                                                                                    "image/webp")},
            "multipart/form-data": {"schema": obj(["image"], image={"type": "string", "format": "binary"})}}},
        "responses": {"200": answer("The product now.", ref("OwnProduct")), **errors(400, 403, 404)}}},
    "/api/v1/webhooks": {
        "get": {"operationId": "listWebhooks", "summary": "Your webhook endpoints (producers, operators)",
                "tags": ["Webhooks"], "security": BEARER,
                "responses": {"200": answer("Your endpoints.", ref("WebhookList")), **errors(403)}},
        "post": {"operationId": "createWebhook", "summary": "Register a webhook endpoint (producers, operators)",
                 "tags": ["Webhooks"], "security": BEARER, "requestBody": body(ref("WebhookRequest")),
                 "responses": {"201": answer("The endpoint, with its secret.", ref("NewWebhookEndpoint")),
                               **errors(400, 403)}}},
    "/api/v1/webhooks/{endpoint_id}": {"delete": {
        "operationId": "removeWebhook", "summary": "Remove one of your webhook endpoints", "tags": ["Webhooks"],
        "security": BEARER, "parameters": [path_id("endpoint_id")],
        "responses": {"204": answer("Removed."), **errors(403, 404)}}},
    "/api/dfc/producers/{producer_id}/catalog": {"get": {
        "operationId": "dfcCatalog", "summary": "A producer's catalogue in the DFC ontology (JSON-LD)",
        "tags": ["Catalogue"], "parameters": [path_id("producer_id")],
        "responses": {"200": {"description": "The enterprise, its supplied products, catalogue items and offers; "
                                             "its context is the DFC's (a copy: /static/dfc/context.jsonld).",
                              "headers": ETAG, "content": {"application/ld+json": {"schema": obj(
                                  ["@context", "@graph"], **{"@context": TEXT,
                                                             "@graph": {"type": "array", "items": {"type": "object"}}})}}},
                      "304": answer("Not modified."), **errors(404)}}},
    "/api/v1/openapi.json": {"get": {
        "operationId": "openapi", "summary": "This document", "tags": ["Meta"],
        "responses": {"200": answer("The OpenAPI 3.1 document.", {"type": "object"}, ETAG),
                      "304": answer("Not modified."), **errors()}}},
}


def build(base_url):
    """The document, with the server it is served from."""
    return {
        "openapi": "3.1.0",
        "info": {"title": "noeari API", "version": "1",
                 "description": "The co-op's marketplace for programs. Errors are RFC 9457 problem+json. Money is a "
                                "decimal string with its currency; times are UTC, ISO 8601, unless a field names "
                                "its zone. /api/v1 only grows: a breaking change would be /api/v2."},
        "servers": [{"url": base_url}],
        "paths": PATHS,
        "webhooks": {name: {"post": {
            "operationId": f"event_{name.replace('.', '_')}", "summary": description, "tags": ["Webhooks"],
            "parameters": [{"name": "Noeari-Signature", "in": "header", "required": True, "schema": TEXT,
                            "description": "t=<unix time>,v1=<hex HMAC-SHA256 of \"<t>.<body>\" under the secret>"},
                           {"name": "Noeari-Event-Id", "in": "header", "required": True, "schema": TEXT,
                            "description": "The same on every try: drop a repeat."}],
            "requestBody": {"required": True, "content": {"application/json": {"schema": ref("WebhookEvent")}}},
            "responses": {"200": {"description": "Any 2xx: received. Anything else is tried again later."}}}}
            for name, description in webhooks.EVENTS.items()},
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "A token from POST /api/v1/tokens."}},
        },
    }
