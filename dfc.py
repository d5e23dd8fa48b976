"""A producer's catalogue in the Data Food Consortium ontology, as JSON-LD: the enterprise, the products it
supplies, a catalogue item for each (its stock), and an offer for each (its price). Its context is the DFC's,
a copy of which is shipped in static/dfc/context.jsonld; the document names it by its usual URL, so any DFC
platform reads it."""
from flask import current_app

import catalogue
import invoices
import measures
from db import query

CONTEXT_URL = "https://www.datafoodconsortium.org"
# What a product is counted in, as the DFC's measures name it: (unit, how many of it one of ours is).
UNITS = {"kg": ("dfc-m:Kilogram", 1), "100g": ("dfc-m:Gram", 100), "l": ("dfc-m:Litre", 1),
         "count": ("dfc-m:Piece", 1)}
CURRENCIES = {"gbp": "dfc-m:PoundSterling", "eur": "dfc-m:Euro", "usd": "dfc-m:USDollar"}


def listed_products(producer_id):
    """Every product of the producer that is on sale, in stock or not, by name."""
    return query("SELECT p.product_id, p.name, p.description, p.price, p.unit, p.image_url, p.vat_rate,"
                 f" {measures.SELLING_COLUMNS}, s.quantity_available FROM product p"
                 " JOIN stock s ON s.product_id = p.product_id WHERE p.producer_id = %s AND p.is_listed = 1"
                 " ORDER BY p.name, p.product_id", (producer_id,))


def quantity(product):
    """What one of the product, as it is priced, holds: a piece, a kilo, 100 g or a litre."""
    if product["sold_by"] == "measure":
        unit, amount = UNITS[product["measure"]]
        return unit, amount
    if product["sold_by"] == "weighed":
        return "dfc-m:Kilogram", 1
    return "dfc-m:Piece", 1


def catalog(producer_id, document_url, product_url, absolute):
    """The producer's catalogue graph, with ids under document_url, product_url(id) for each product's page and
    absolute(path) for a photo's address; None when there is no approved producer with that id."""
    producer = catalogue.approved_producer(producer_id)
    if producer is None:
        return None
    rates = {rate["code"]: rate["percent"] for rate in invoices.vat_rates()}
    currency = CURRENCIES.get(current_app.config["CURRENCY"].lower(), current_app.config["CURRENCY"].upper())
    enterprise = f"{document_url}#enterprise"
    products = listed_products(producer_id)
    graph = [{
        "@id": enterprise, "@type": "dfc-b:Enterprise", "dfc-b:name": producer["business_name"],
        "dfc-b:hasDescription": producer["description"] or "",
        "dfc-b:supplies": [product_url(p["product_id"]) for p in products],
        "dfc-b:manages": [f"{document_url}#item-{p['product_id']}" for p in products],
    }]
    for product in products:
        pid = product["product_id"]
        unit, amount = quantity(product)
        item, offer = f"{document_url}#item-{pid}", f"{document_url}#offer-{pid}"
        supplied = {"@id": product_url(pid), "@type": "dfc-b:SuppliedProduct", "dfc-b:name": product["name"],
                    "dfc-b:description": product["description"] or "",
                    "dfc-b:hasQuantity": {"@type": "dfc-b:QuantitativeValue", "dfc-b:hasUnit": unit,
                                          "dfc-b:value": amount},
                    "dfc-b:referencedBy": item, "dfc-b:suppliedBy": enterprise}
        if product["image_url"]:
            supplied["dfc-b:image"] = absolute(product["image_url"])
        graph += [supplied, {
            "@id": item, "@type": "dfc-b:CatalogItem", "dfc-b:references": product_url(pid),
            "dfc-b:sku": f"noeari-{pid}", "dfc-b:stockLimitation": measures.plain(product["quantity_available"]),
            "dfc-b:offeredThrough": offer,
        }, {
            "@id": offer, "@type": "dfc-b:Offer", "dfc-b:offeredItem": item,
            "dfc-b:hasPrice": {"@type": "dfc-b:Price", "dfc-b:value": str(product["price"]),
                               "dfc-b:hasUnit": currency,
                               "dfc-b:VATrate": str(rates.get(product["vat_rate"], 0))},
            "dfc-b:stockLimitation": measures.plain(product["quantity_available"]),
        }]
    return {"@context": CONTEXT_URL, "@graph": graph}
