"""The catalogue: what can be browsed and searched, a page at a time, and each producer's offer (their
collection points and delivery zones, with the occurrences a customer can choose now). It knows nothing of
requests: the filters come in as a dict, and what is on offer says when it changes by itself."""
import datetime
import itertools

import fulfilment
import search
from db import placeholders, query
from measures import SELLING_COLUMNS

# A product needs restocking (the producer must order more) once its stock is down to its reorder threshold:
# read from the index of a producer's stock rows that are low (is_low). {producer}: the producer's id, as SQL.
RESTOCK_ROWS = ("stock s JOIN product p ON p.product_id = s.product_id"
                " WHERE s.producer_id = {producer} AND s.is_low = 1 AND p.is_archived = 0 AND p.is_available = 1")
# The producer's version (schema.sql, producer_version), which their own pages are kept rendered under.
PRODUCER_VERSION = ("(SELECT CAST(COALESCE(SUM(v.version), 0) AS UNSIGNED) FROM producer_version v"
                    " WHERE v.producer_id = {producer})")
# The part of the catalogue's version that a change of stock does not raise, which the producers' offers are kept
# under (kept_offers): read with a cart's lines, it saves a cart and a checkout a round trip.
OFFERS_VERSION = "(SELECT CAST(SUM(version) AS UNSIGNED) FROM catalogue_version)"
CATEGORIES = ["Vegetables", "Fruit", "Dairy & Eggs", "Meat & Fish", "Bakery", "Pantry",
              "Drinks", "Flowers & Plants"]
PRODUCTS_PER_PAGE = 24
TAKING_ORDERS = ("EXISTS (SELECT 1 FROM fulfilment_option f WHERE f.producer_id = p.producer_id AND f.is_active = 1"
                 " AND f.is_archived = 0)")
CATALOGUE_SELECT = (
    "SELECT p.product_id, p.name, p.description, p.category, p.price, p.unit, p.image_url, p.thumbnail_url,"
    f" {SELLING_COLUMNS}, pr.producer_id, pr.business_name, s.quantity_available, s.reorder_threshold,"
    f" {TAKING_ORDERS} AS taking_orders"
    " FROM product p JOIN producer pr ON pr.producer_id = p.producer_id"
    " JOIN stock s ON s.product_id = p.product_id"
)


# Every sort lists what is in stock before what is not, in the order of an index. Price sorts by what the least
# a shopper can buy costs (sort_price), so a £24/kg cheese bought from 0.25 kg sorts at £6. The default, best match,
# ranks a search's matches by how many of its terms their names hold, then as they were added; with no search it
# is by name.
CATALOGUE_SORTS = {
    "relevance": ("Best match", "p.out_of_stock, name_rank DESC, p.product_id"),
    "name": ("Name", "p.out_of_stock, p.name, p.product_id"),
    "price_asc": ("Price, low to high", "p.out_of_stock, p.sort_price, p.product_id"),
    "price_desc": ("Price, high to low", "p.out_of_stock, p.sort_price DESC, p.product_id DESC"),
    "newest": ("Newest", "p.out_of_stock, p.created_at DESC, p.product_id DESC"),
}


def search_matches(terms, in_stock):
    """The statement reading the listed (and in stock, if asked) products that hold every one of terms (stems, each
    matching as a prefix) from search_term alone, with their stock, how many of the terms their names hold
    (name_rank) and how many they are (total); and its arguments. One term needs no check that each was found."""
    patterns = [term + "%" for term in terms]
    where = ("t.is_listed = 1" + (" AND t.out_of_stock = 0" if in_stock else "")
             + " AND (" + " OR ".join(["t.term LIKE %s"] * len(terms)) + ")")
    if len(terms) == 1:
        return ("SELECT t.product_id, MAX(t.out_of_stock) AS out_of_stock, MAX(t.in_name) AS name_rank,"
                f" COUNT(*) OVER () AS total FROM search_term t WHERE {where} GROUP BY t.product_id", patterns)
    return ("SELECT t.product_id, MAX(t.out_of_stock) AS out_of_stock, "
            + " + ".join(["MAX(t.in_name AND t.term LIKE %s)"] * len(terms)) + " AS name_rank,"
            f" COUNT(*) OVER () AS total FROM search_term t WHERE {where} GROUP BY t.product_id"
            " HAVING " + " AND ".join(["MAX(t.term LIKE %s)"] * len(terms)), patterns * 3)


def stems_with_prefix(term):
    """(the first stem in search_term that term is a prefix of, or None; whether there are more): the stems
    holding a prefix sit together in the index's order, from the first at or after the term."""
    pattern = term + "%"
    row = query("SELECT IF(s.stem LIKE %s, s.stem, NULL) AS stem,"
                " COALESCE((SELECT MIN(term) FROM search_term WHERE term > s.stem) LIKE %s, FALSE) AS more"
                " FROM (SELECT MIN(term) AS stem FROM search_term WHERE term >= %s) s",
                (pattern, pattern, term), one=True)
    return row["stem"], bool(row["stem"] and row["more"])


def reads_products(filters):
    """Whether a search's page needs the products' rows to pick its matches (a filter or sort on their columns);
    by best match, the matches alone order it."""
    return bool(filters["category"] or filters["producer"] or filters["sort"] != "relevance")


def one_word(filters):
    """The stem of a search for one word whose page its matches alone order, or None."""
    terms = search.terms(filters["q"]) if filters["q"] else None
    return terms[0] if terms and len(terms) == 1 and not reads_products(filters) else None


# A search for one word guesses that the word begins one stem only, the first at or after it, and reads that
# stem's page with whether another stem begins with the word too (more): one statement when it does.
FIRST_STEM = object()


def catalogue_page(filters, page):
    """One page of available products matching filters, the total, and the page actually shown.

    One statement: page ids come from an inner query, which reads index entries, not rows, for a deep
    page; the total rides along, from catalogue_count's kept figures when that is exact, or else counted
    beside the page (over the matches of a search). A page past the end shows page 1. A search for one word
    whose prefix covers one stem only reads its page in rank order, not ranked, and its total from the stem's
    kept counts (search_stem); only when that guess finds nothing does it ask which stems the word begins.
    """
    word = one_word(filters)
    stem, rows = (FIRST_STEM if word else None), []
    if stem is FIRST_STEM:
        rows = query(*catalogue_statement(filters, page, stem, word))
        if rows and rows[0]["more"]:
            stem, rows = None, []
        elif not rows:
            stem, more = stems_with_prefix(word)
            if stem is None:
                return [], 0, 1
            stem = None if more else stem
    if not rows:
        statement = catalogue_statement(filters, page, stem)
        if statement is None:
            return [], 0, 1
        rows = query(*statement)
        if not rows and page > 1:
            page = 1
            rows = query(*catalogue_statement(filters, page, stem))
    for row in rows:
        row.pop("more", None)
    return rows, (rows[0]["total"] if rows else 0), page


def catalogue_statement(filters, page, stem=None, word=None):
    """The one statement of catalogue_page, with its arguments; None for a search with no usable term. stem: the
    one stem a search's word (one_word) begins, or FIRST_STEM, the guess from word; its page is read in rank
    order."""
    where, args = ["p.is_listed = 1"], []
    if filters["category"]:
        where.append("p.category = %s")
        args.append(filters["category"])
    if filters["producer"]:
        where.append("p.producer_id = %s")
        args.append(filters["producer"])
    if filters["in_stock"]:
        where.append("p.out_of_stock = 0")
    conditions = " AND ".join(where)
    order = CATALOGUE_SORTS["name" if filters["sort"] == "relevance" and not filters["q"] else filters["sort"]][1]
    limit = [PRODUCTS_PER_PAGE, (page - 1) * PRODUCTS_PER_PAGE]
    columns = "page_ids.total AS total"
    if filters["q"] and stem is not None:
        ids, args = one_stem_ids(word, stem, filters["in_stock"])
        args += limit
        if stem is FIRST_STEM:
            columns += ", page_ids.more"
    elif filters["q"]:
        terms = search.terms(filters["q"])
        if terms is None:
            return None
        matches, match_args = search_matches(terms, filters["in_stock"])
        if reads_products(filters):
            ids = (f"SELECT m.product_id, m.name_rank, COUNT(*) OVER () AS total FROM ({matches}) m"
                   f" JOIN product p ON p.product_id = m.product_id WHERE {conditions}"
                   f" ORDER BY {order} LIMIT %s OFFSET %s")
            args = match_args + args + limit
        else:
            ids = f"{matches} ORDER BY out_of_stock, name_rank DESC, t.product_id LIMIT %s OFFSET %s"
            args = match_args + limit
    else:
        ids = f"SELECT p.product_id FROM product p WHERE {conditions} ORDER BY {order} LIMIT %s OFFSET %s"
        if filters["producer"]:
            columns = f"(SELECT COUNT(*) FROM product p WHERE {conditions}) AS total"
            args = args + args + limit
        else:
            counted = "in_stock" if filters["in_stock"] else "available"
            only = "WHERE category = %s" if filters["category"] else ""
            columns = f"(SELECT CAST(COALESCE(SUM({counted}), 0) AS SIGNED) FROM catalogue_count {only}) AS total"
            args = ([filters["category"]] if filters["category"] else []) + args + limit
    return (CATALOGUE_SELECT.replace("SELECT ", f"SELECT {columns}, ", 1)
            + f" JOIN ({ids}) page_ids ON page_ids.product_id = p.product_id ORDER BY {order}", args)


def one_stem_ids(word, stem, in_stock):
    """The statement reading one stem's page of ids in rank order from idx_search_term_rank, with its total from
    search_stem, and its arguments (without the page's limit): for stem FIRST_STEM, the first stem at or after
    word, and whether another begins with word too (more); it reads nothing when none does."""
    flag, counted = (" AND t.out_of_stock = 0", "in_stock") if in_stock else ("", "listed")
    select = ("SELECT t.product_id, t.in_name AS name_rank, (SELECT CAST(COALESCE(SUM(c.{counted}), 0) AS SIGNED)"
              " FROM search_stem c WHERE c.stem = s.stem) AS total{more}"
              " FROM {stem} s JOIN search_term t ON t.term = s.stem WHERE t.is_listed = 1{flag}{begins}"
              " ORDER BY t.out_of_stock, t.in_name DESC, t.product_id LIMIT %s OFFSET %s")
    if stem is not FIRST_STEM:
        return select.format(counted=counted, more="", stem="(SELECT %s AS stem)", flag=flag, begins=""), [stem]
    pattern = word + "%"
    return select.format(
        counted=counted, flag=flag, begins=" AND s.stem LIKE %s",
        more=", COALESCE((SELECT MIN(term) FROM search_term WHERE term > s.stem) LIKE %s, FALSE) AS more",
        stem="(SELECT MIN(term) AS stem FROM search_term WHERE term >= %s)"), [pattern, word, pattern]


def newest_products(limit=8):
    """The newest products that can be ordered now, for the home page."""
    return query(CATALOGUE_SELECT + f" WHERE p.is_listed = 1 AND p.out_of_stock = 0 AND {TAKING_ORDERS}"
                 " ORDER BY p.created_at DESC, p.product_id DESC LIMIT %s", (limit,))


def listed_product(product_id):
    """An available product with its producer and stock, or None."""
    return query(CATALOGUE_SELECT + " WHERE p.product_id = %s AND p.is_listed = 1", (product_id,), one=True)


# --- Offers ------------------------------------------------------------------

OPTION_COLUMNS = ("o.option_id, o.producer_id, o.hub_id, o.drop_off, o.kind, o.name, o.address, o.instructions, o.postcodes, o.fee,"
                  " o.minimum_order, o.free_over, o.cutoff_hours, o.capacity, o.payment_method, o.is_active")
KIND_LABELS = {"collection": "Collection", "delivery": "Delivery"}
OFFER_STAMPS = itertools.count(1)


class Offer:
    """One producer's live options with their slots, and the occurrences a customer can choose now. Its stamp
    names it among the offers its process makes, none of which changes once made: a page kept under the stamp
    shows this offer."""

    def __init__(self, options, occurrences, full=(), stamp=None):
        self.options, self.occurrences, self.full = options, occurrences, list(full)
        self.by_key = {occurrence.key: occurrence for occurrence in occurrences}
        self.stamp = stamp or next(OFFER_STAMPS)

    @property
    def taking_orders(self):
        """A producer with no active option is not taking orders yet."""
        return any(option["is_active"] for option in self.options)

    def find(self, key):
        return self.by_key.get(key)

    def of(self, option):
        """The option's own occurrences, in time order."""
        return [o for o in self.occurrences if o.option["option_id"] == option["option_id"]]

    def full_of(self, option):
        """The option's times that are open but full, in time order: shown as "Full", never chosen."""
        return [o for o in self.full if o.option["option_id"] == option["option_id"]]

    def next_of(self, option, limit=3):
        return self.of(option)[:limit]

    def for_products(self, product_ids):
        """The offer for a cart of these products: without the options at a hub that do not take one of them."""
        product_ids = set(product_ids)
        kept = [option for option in self.options if not option["excluded"] & product_ids]
        if len(kept) == len(self.options):
            return self
        ids = {option["option_id"] for option in kept}
        return Offer(kept, [o for o in self.occurrences if o.option["option_id"] in ids],
                     [o for o in self.full if o.option["option_id"] in ids], (self.stamp, tuple(sorted(ids))))


def slot_days(option):
    """'Sat 09:00–12:00, Wed 16:00–18:00' for collection; 'Thu' for delivery; 'by arrangement' with no slots."""
    if not option["slots"]:
        return "by arrangement"
    if option["kind"] == "delivery":
        return ", ".join(dict.fromkeys(fulfilment.WEEKDAYS[s["weekday"]][:3] for s in option["slots"]))
    return ", ".join(f"{fulfilment.WEEKDAYS[s['weekday']][:3]} {fulfilment.as_time(s['start_time']):%H:%M}"
                     f"–{fulfilment.as_time(s['end_time']):%H:%M}" for s in option["slots"])


def option_summary(option):
    """The option in one line: 'Collect at Farm gate, Sat 09:00–12:00' or 'Delivery to BS1–BS8, Thu, £3.50'."""
    if option["kind"] == "collection":
        return f"Collect at {option['name']}, {slot_days(option)}"
    fee = fulfilment.format_money(option["fee"]) if option["fee"] else "free"
    return f"Delivery to {option['areas']}, {slot_days(option)}, {fee}"


def load_offers(producer_ids, now=None):
    """({producer_id: Offer}, expires) for the given producers, from their options that are not archived;
    expires is the instant what is on offer changes by itself (None when nothing was asked for)."""
    ids = sorted(set(producer_ids))
    if not ids:
        return {}, None
    now = now or fulfilment.utc_now()
    today = fulfilment.local_today(now)
    horizon = today + datetime.timedelta(days=fulfilment.DAYS_AHEAD)
    among = placeholders(ids)
    rows = query(f"SELECT {OPTION_COLUMNS}, h.capacity AS hub_capacity, h.fee AS hub_fee, s.slot_id, s.weekday,"
                 " s.start_time, s.end_time, s.hub_slot_id FROM fulfilment_option o"
                 " LEFT JOIN hub h ON h.hub_id = o.hub_id LEFT JOIN fulfilment_slot s ON s.option_id = o.option_id"
                 f" WHERE o.producer_id IN ({among}) AND o.is_archived = 0"
                 " ORDER BY o.kind, o.name, o.option_id, s.weekday, s.start_time, s.slot_id", ids)
    options, slots = {}, []
    for row in rows:
        option = options.setdefault(row["option_id"], {key: row[key] for key in row if key not in (
            "slot_id", "weekday", "start_time", "end_time", "hub_slot_id", "hub_capacity")} | {"slots": []})
        if option["hub_id"] is not None:
            option["capacity"] = row["hub_capacity"]
        option["excluded"] = set()
        if row["slot_id"] is not None:
            slot = {key: row[key] for key in ("slot_id", "option_id", "weekday", "start_time", "end_time",
                                               "hub_slot_id")}
            option["slots"].append(slot)
            slots.append(slot)
    # Only an option at a hub leaves products out; most producers have none, and skip the statement.
    at_hubs = [option_id for option_id, option in options.items() if option["hub_id"] is not None]
    if at_hubs:
        for row in query("SELECT option_id, product_id FROM hub_product_exclusion"
                         f" WHERE option_id IN ({placeholders(at_hubs)})", at_hubs):
            options[row["option_id"]]["excluded"].add(row["product_id"])
    for option in options.values():
        option["postcode_list"] = fulfilment.parse_postcodes(option["postcodes"]) if option["postcodes"] else []
        option["areas"] = fulfilment.postcodes_summary(option["postcode_list"])
        option["summary"] = option_summary(option)
    closed, bookings = closed_days(slots, options, today, horizon), slot_bookings(slots, today, horizon)
    offers = {}
    for producer_id in ids:
        own = [option for option in options.values() if option["producer_id"] == producer_id]
        every = fulfilment.occurrences(own, [s for o in own for s in o["slots"]], closed, bookings, now,
                                       include_full=True)
        offers[producer_id] = Offer(own, [o for o in every if not o.full], [o for o in every if o.full])
    # What is on offer changes by itself when a cutoff passes, or a new day comes into view at midnight.
    cutoffs = [o.cutoff for offer in offers.values() for o in offer.occurrences if o.cutoff]
    return offers, min(cutoffs + [fulfilment.local_instant(today + datetime.timedelta(days=1), datetime.time(0))])


# Producers' offers (their options, times, closed days, hubs and bookings, all under the catalogue version's
# triggers) are the same for everyone at a catalogue version until a cutoff passes or a new day comes into view, so
# a cart takes them from a store in each worker: one store per version, each offer kept until its expiry. An offer
# is read after the version it is kept under, so it is never older than that version. Offers show no stock, so the
# store keys on the part of the version that a sale does not raise (offers_version()), and outlives sales.
offer_store = {"version": None, "offers": {}}
OFFERS_KEPT = 5000


def kept_offers(producer_ids, at=None):
    """{producer_id: Offer} for the given producers, from the store when kept at this catalogue version and still
    current; at: the offers' version (OFFERS_VERSION) when read already in this request, else it is read now."""
    if not producer_ids:
        return {}
    current, now = offers_version() if at is None else at, fulfilment.utc_now()
    if offer_store["version"] != current or len(offer_store["offers"]) > OFFERS_KEPT:
        offer_store.update(version=current, offers={})
    kept = offer_store["offers"]
    stale = {producer_id for producer_id in producer_ids
             if producer_id not in kept or now >= kept[producer_id][1]}
    if stale:
        offers, expires = load_offers(stale, now)
        kept.update((producer_id, (offer, expires)) for producer_id, offer in offers.items())
    return {producer_id: kept[producer_id][0] for producer_id in producer_ids}


def closed_days(slots, options, today, horizon):
    """{producer_id or ("hub", hub_id): the closed days before horizon} of the producers and hubs of slots
    (a closure closes dated times; an option without slots is arranged, and never closed)."""
    if not slots:
        return {}
    producers = sorted({options[slot["option_id"]]["producer_id"] for slot in slots})
    hubs = sorted({options[slot["option_id"]]["hub_id"] for slot in slots} - {None})
    sql = (f"SELECT producer_id, NULL AS hub_id, start_date, end_date FROM producer_closure"
           f" WHERE producer_id IN ({placeholders(producers)}) AND end_date >= %s AND start_date < %s")
    args = producers + [today, horizon]
    if hubs:
        sql += (" UNION ALL SELECT NULL, hub_id, start_date, end_date FROM hub_closure"
                f" WHERE hub_id IN ({placeholders(hubs)}) AND end_date >= %s AND start_date < %s")
        args += hubs + [today, horizon]
    closed = {}
    for closure in query(sql, args):
        day = max(closure["start_date"], today)
        while day <= closure["end_date"] and day < horizon:
            closed.setdefault(closure["producer_id"] or ("hub", closure["hub_id"]), set()).add(day)
            day += datetime.timedelta(days=1)
    return closed


def slot_bookings(slots, today, horizon):
    """{(slot_id, date): orders booked} for slots before horizon; a time at a hub is full when the hub's
    baskets fill it, whoever's orders are in them."""
    own = [slot["slot_id"] for slot in slots if slot["hub_slot_id"] is None]
    at_hubs = {}
    for slot in slots:
        if slot["hub_slot_id"] is not None:
            at_hubs.setdefault(slot["hub_slot_id"], []).append(slot["slot_id"])
    parts, args = [], []
    if own:
        parts.append("SELECT slot_id, NULL AS hub_slot_id, slot_date, booked FROM slot_booking"
                     f" WHERE slot_id IN ({placeholders(own)}) AND slot_date >= %s AND slot_date < %s")
        args += own + [today, horizon]
    if at_hubs:
        parts.append("SELECT NULL AS slot_id, hub_slot_id, booking_date AS slot_date, booked FROM hub_booking"
                     f" WHERE hub_slot_id IN ({placeholders(at_hubs)}) AND booking_date >= %s"
                     " AND booking_date < %s")
        args += sorted(at_hubs) + [today, horizon]
    bookings = {}
    for row in query(" UNION ALL ".join(parts), args) if parts else ():
        for slot_id in [row["slot_id"]] if row["hub_slot_id"] is None else at_hubs[row["hub_slot_id"]]:
            bookings[(slot_id, row["slot_date"])] = row["booked"]
    return bookings


def producer_listing(producer_id, limit=200):
    """A producer's products on sale and in stock, by name: what a customer may add to an order of theirs."""
    return query(f"SELECT p.product_id, p.name, p.unit, p.price, {SELLING_COLUMNS}, s.quantity_available"
                 " FROM product p JOIN stock s ON s.product_id = p.product_id"
                 " WHERE p.producer_id = %s AND p.is_listed = 1 AND s.quantity_available > 0 ORDER BY p.name LIMIT %s",
                 (producer_id, limit))


def version():
    """The catalogue's version: the database's triggers bump it in the transaction of any change to what the
    catalogue pages show."""
    return query("SELECT CAST(SUM(version) + SUM(stock_version) AS UNSIGNED) AS version FROM catalogue_version",
                 one=True)["version"]


def offers_version():
    """The part of the catalogue's version that changes of stock do not raise: what the offers are kept under."""
    return query(f"SELECT {OFFERS_VERSION} AS version", one=True)["version"]


# --- Producers --------------------------------------------------------------

def producer_page(page, per_page):
    """A page of the approved producers with how many products each has on sale, the total, and the page
    actually shown (a page past the end shows page 1)."""
    total = query("SELECT COUNT(*) AS n FROM producer WHERE status = 'approved'", one=True)["n"]
    if page > max(1, -(-total // per_page)):
        page = 1
    rows = query(
        "SELECT pr.producer_id, pr.business_name, pr.town,"
        " (SELECT COUNT(*) FROM product p WHERE p.producer_id = pr.producer_id AND p.is_listed = 1)"
        " AS product_count,"
        " (SELECT GROUP_CONCAT(o.postcodes ORDER BY o.option_id SEPARATOR ', ') FROM fulfilment_option o"
        "  WHERE o.producer_id = pr.producer_id AND o.kind = 'delivery' AND o.is_active = 1 AND o.is_archived = 0)"
        " AS delivery_postcodes"
        " FROM (SELECT producer_id, business_name, town FROM producer WHERE status = 'approved'"
        "       ORDER BY business_name, producer_id LIMIT %s OFFSET %s) pr ORDER BY pr.business_name, pr.producer_id",
        (per_page, (page - 1) * per_page))
    for row in rows:
        postcodes = fulfilment.parse_postcodes(row["delivery_postcodes"]) if row["delivery_postcodes"] else []
        row["delivery_areas"] = fulfilment.postcodes_summary(list(dict.fromkeys(postcodes))) if postcodes else None
    return rows, total, page


def preview_producer(producer_id):
    """A producer's profile whatever their state, with it: for their own and the co-op's preview."""
    return query("SELECT producer_id, business_name, date_joined, description, town, phone, public_email, website,"
                 " payment_info, image_url, status FROM producer WHERE producer_id = %s", (producer_id,), one=True)


def preview_products(producer_id, limit=100):
    """What a producer's page will list once they are approved: their products shown in the catalogue."""
    return query(CATALOGUE_SELECT + " WHERE p.producer_id = %s AND p.is_archived = 0 AND p.is_available = 1"
                 " ORDER BY p.name LIMIT %s", (producer_id, limit))


def preview_product(product_id):
    """A product that is not archived, with its producer and stock, whether or not it is listed yet; or None."""
    return query(CATALOGUE_SELECT + " WHERE p.product_id = %s AND p.is_archived = 0", (product_id,), one=True)


def approved_producer(producer_id):
    """An approved producer's public profile, or None."""
    return query("SELECT producer_id, business_name, date_joined, description, town, phone, public_email, website,"
                 " payment_info, image_url FROM producer WHERE producer_id = %s AND status = 'approved'",
                 (producer_id,), one=True)
