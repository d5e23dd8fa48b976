"""The API for a producer's shop: products made, changed, photographed and archived, final weights; and the DFC
catalogue export, expanded as JSON-LD with the context shipped in the project."""
import io
import json
import pathlib
from decimal import Decimal

import pytest
from pyld import jsonld

from test_api import bearer, is_problem, photo_bytes, token_for

CONTEXT = pathlib.Path(__file__).parents[1] / "static" / "dfc" / "context.jsonld"
DFC_B = "https://github.com/datafoodconsortium/ontology/releases/latest/download/DFC_BusinessOntology.owl#"


@pytest.fixture
def farm(client, world):
    return bearer(token_for(client, "farm@example.com", "producer"))


def test_a_producer_adds_a_product_as_form_data_or_json_and_it_is_on_sale(client, db, world, farm):
    response = client.post("/api/v1/products", headers=farm, data={
        "name": "Rye loaf", "category": "Bakery", "price": "3.50", "unit": "loaf", "quantity_available": "12"})
    assert response.status_code == 201, response.get_data(as_text=True)
    made = response.get_json()
    assert made["price"] == {"amount": "3.50", "currency": "GBP"} and made["quantity_available"] == "12"
    assert made["is_available"] is True and made["reorder_threshold"] == "5" and made["sold_by"] == "unit"
    row = db.row("SELECT p.producer_id, p.price, s.quantity_available FROM product p JOIN stock s"
                 " ON s.product_id = p.product_id WHERE p.product_id = %s", (made["id"],))
    assert (row["producer_id"], row["price"], row["quantity_available"]) == (world.producer, Decimal("3.50"), 12)
    assert client.get(f"/api/v1/products/{made['id']}").status_code == 200
    cheese = client.post("/api/v1/products", headers=farm, json={
        "name": "Cheddar", "category": "Dairy & Eggs", "price": 24, "unit": "cheese", "sold_by": "measure",
        "measure": "kg", "step": "0.25", "quantity_available": 3.5, "is_available": False})
    assert cheese.status_code == 201, cheese.get_data(as_text=True)
    assert cheese.get_json()["step"] == "0.25" and cheese.get_json()["is_available"] is False
    assert client.get(f"/api/v1/products/{cheese.get_json()['id']}").status_code == 404, "hidden: not on sale"


@pytest.mark.parametrize("fields, field", [
    ({"category": "Bakery", "price": "3.50", "unit": "loaf"}, "name"),
    ({"name": "Loaf", "category": "Shoes", "price": "3.50", "unit": "loaf"}, "category"),
    ({"name": "Loaf", "category": "Bakery", "price": "-1", "unit": "loaf"}, "price"),
    ({"name": "Loaf", "category": "Bakery", "price": "1e9", "unit": "loaf"}, "price"),
    ({"name": "Loaf", "category": "Bakery", "price": "3.501", "unit": "loaf"}, "price"),
    ({"name": "Loaf", "category": "Bakery", "price": "3.50"}, "unit"),
    ({"name": "Loaf", "category": "Bakery", "price": "3.50", "unit": "loaf", "quantity_available": "-2"},
     "quantity_available"),
    ({"name": "Loaf\u0000", "category": "Bakery", "price": "3.50", "unit": "loaf"}, "name"),
    ({"name": "x" * 256, "category": "Bakery", "price": "3.50", "unit": "loaf"}, "name"),
    ({"name": "Loaf", "category": "Bakery", "price": "3.50", "unit": "loaf", "sold_by": "weighed"}, "estimated_weight"),
])
def test_a_bad_product_is_refused_field_by_field_and_nothing_is_made(client, db, world, farm, fields, field):
    with db.unchanged():
        response = client.post("/api/v1/products", headers=farm, json=fields)
    assert is_problem(response, 400)
    assert field in {error["field"] for error in response.get_json()["errors"]}


def test_a_change_touches_only_the_fields_given_and_never_undoes_sales(client, db, world, farm):
    db.execute("UPDATE stock SET quantity_available = 44 WHERE product_id = %s", (world.product,))
    response = client.patch(f"/api/v1/products/{world.product}", headers=farm, json={"price": "2.10"})
    assert response.status_code == 200, response.get_data(as_text=True)
    changed = response.get_json()
    assert changed["price"]["amount"] == "2.10" and changed["name"] == "Potatoes" and changed["unit"] == "kg"
    assert db.stock(world.product) == 44 and db.value("SELECT reorder_threshold FROM stock WHERE product_id = %s",
                                                      (world.product,)) == 10
    assert client.patch(f"/api/v1/products/{world.product}", headers=farm,
                        data={"quantity_available": "20", "is_available": "false"}).status_code == 200
    assert db.stock(world.product) == 20
    assert db.value("SELECT is_available FROM product WHERE product_id = %s", (world.product,)) == 0
    with db.unchanged():
        assert is_problem(client.patch(f"/api/v1/products/{world.product}", headers=farm, json={"price": "0"}), 400)
        assert is_problem(client.patch(f"/api/v1/products/{world.other_product}", headers=farm,
                                       json={"price": "1.00"}), 404)


def test_archiving_keeps_an_ordered_product_in_history_and_deletes_one_never_ordered(client, db, world, farm):
    assert client.delete(f"/api/v1/products/{world.product}", headers=farm).get_json() == {
        "id": world.product, "archived": True}
    assert db.value("SELECT is_archived FROM product WHERE product_id = %s", (world.product,)) == 1
    assert client.delete(f"/api/v1/products/{world.low_product}", headers=farm).get_json() == {
        "id": world.low_product, "archived": False}
    assert db.value("SELECT COUNT(*) FROM product WHERE product_id = %s", (world.low_product,)) == 0
    assert is_problem(client.delete(f"/api/v1/products/{world.product}", headers=farm), 404), "gone already"


def test_a_photo_is_uploaded_as_the_body_or_as_form_data_and_a_bad_one_is_refused(client, db, world, farm, app):
    response = client.put(f"/api/v1/products/{world.product}/photo", headers=farm, data=photo_bytes(),
                          content_type="image/png")
    assert response.status_code == 200, response.get_data(as_text=True)
    first = response.get_json()["image_url"]
    assert first and client.get(first).status_code == 200
    response = client.put(f"/api/v1/products/{world.product}/photo", headers=farm,
                          data={"image": (io.BytesIO(photo_bytes((0, 90, 200))), "p.png")},
                          content_type="multipart/form-data")
    second = response.get_json()["image_url"]
    assert response.status_code == 200 and second != first
    assert client.get(first).status_code == 404, "the photo it replaced is gone"
    with db.unchanged():
        refused = client.put(f"/api/v1/products/{world.product}/photo", headers=farm, data=b"not an image",
                             content_type="image/png")
        assert is_problem(refused, 400) and refused.get_json()["errors"][0]["field"] == "image"
        assert is_problem(client.put(f"/api/v1/products/{world.product}/photo", headers=farm, data=b"",
                                     content_type="image/png"), 400)
        assert is_problem(client.put(f"/api/v1/products/{world.other_product}/photo", headers=farm,
                                     data=photo_bytes(), content_type="image/png"), 404)


def weighed_order(db, world):
    chicken = db.add_product(world.producer, "Chicken", "9.00", 5, sold_by="weighed", estimated_weight="1.800",
                             tolerance_percent="10")
    return chicken, db.add_order(world.customer, [(chicken, 1, "9.00")])


def test_a_final_weight_reprices_the_line_and_tells_the_customer_once(client, db, world, farm):
    chicken, order_id = weighed_order(db, world)
    response = client.post(f"/api/v1/orders/{order_id}/weights", headers=farm,
                           json={"product_id": chicken, "weight": "1.93"})
    assert response.status_code == 200, response.get_data(as_text=True)
    line = response.get_json()["lines"][0]
    assert line["weight"] == "1.93" and line["line_total"]["amount"] == "17.37"
    assert db.value("SELECT COUNT(*) FROM email_outbox WHERE dedupe_key = %s", (f"order-weighed:{order_id}",)) == 1


def test_a_weight_over_the_tolerance_needs_confirming_and_an_absurd_one_is_refused(client, db, world, farm):
    chicken, order_id = weighed_order(db, world)
    with db.unchanged():
        over = client.post(f"/api/v1/orders/{order_id}/weights", headers=farm,
                           json={"product_id": chicken, "weight": "2.5"})
        assert is_problem(over, 409) and "confirm=true" in over.get_json()["detail"]
        assert is_problem(client.post(f"/api/v1/orders/{order_id}/weights", headers=farm,
                                      json={"product_id": chicken, "weight": "500"}), 400)
        assert is_problem(client.post(f"/api/v1/orders/{order_id}/weights", headers=farm,
                                      json={"product_id": chicken, "weight": "abc"}), 400)
        assert is_problem(client.post(f"/api/v1/orders/{order_id}/weights", headers=farm,
                                      json={"product_id": world.product, "weight": "1.5"}), 404), "not weighed"
    confirmed = client.post(f"/api/v1/orders/{order_id}/weights", headers=farm,
                            json={"product_id": chicken, "weight": "2.5", "confirm": True})
    assert confirmed.status_code == 200
    assert confirmed.get_json()["lines"][0]["line_total"]["amount"] == "17.82", "never above estimate + 10%"


def dfc_loader(url, options=None):
    """The JSON-LD document loader for the test: the DFC context from the copy shipped in the project, and
    nothing from the network."""
    assert url == "https://www.datafoodconsortium.org", f"no network: {url}"
    return {"contextUrl": None, "documentUrl": url, "document": json.loads(CONTEXT.read_text())}


def test_the_dfc_catalogue_expands_as_json_ld_and_holds_every_product_on_sale(client, db, world):
    hidden = db.add_product(world.producer, "Secret jam", "4.00", 3, available=0)
    sold_out = db.add_product(world.producer, "Leeks", "0.90", 0)
    response = client.get(f"/api/dfc/producers/{world.producer}/catalog")
    assert response.status_code == 200 and response.mimetype == "application/ld+json" and response.headers["ETag"]
    expanded = jsonld.expand(response.get_json(), {"documentLoader": dfc_loader})
    by_type = {}
    for node in expanded:
        for kind in node.get("@type", []):
            by_type.setdefault(kind.replace(DFC_B, ""), []).append(node)
    on_sale = {row["product_id"] for row in db.rows("SELECT product_id FROM product WHERE producer_id = %s"
                                                    " AND is_listed = 1", (world.producer,))}
    assert hidden not in on_sale and sold_out in on_sale
    supplied = {int(node["@id"].rsplit("/", 1)[1]): node for node in by_type["SuppliedProduct"]}
    assert set(supplied) == on_sale
    enterprise, = by_type["Enterprise"]
    assert enterprise[DFC_B + "name"][0]["@value"] == "Hartley Farm"
    assert {ref["@id"] for ref in enterprise[DFC_B + "supplies"]} == {node["@id"] for node in supplied.values()}
    potatoes = supplied[world.product]
    assert potatoes[DFC_B + "name"][0]["@value"] == "Potatoes"
    items = {node["@id"]: node for node in by_type["CatalogItem"]}
    offers = {node["@id"]: node for node in by_type["Offer"]}
    item = items[potatoes[DFC_B + "referencedBy"][0]["@id"]]
    assert item[DFC_B + "stockLimitation"][0]["@value"] == "50"
    offer = offers[item[DFC_B + "offeredThrough"][0]["@id"]]
    price = offer[DFC_B + "hasPrice"][0]
    assert price[DFC_B + "value"][0]["@value"] == "1.80"
    assert price[DFC_B + "hasUnit"][0]["@id"].endswith("measures.rdf#PoundSterling")
    assert items[supplied[sold_out][DFC_B + "referencedBy"][0]["@id"]][DFC_B + "stockLimitation"][0]["@value"] == "0"


def test_the_dfc_catalogue_of_no_approved_producer_is_not_found(client, db, world):
    db.execute("UPDATE producer SET status = 'suspended' WHERE producer_id = %s", (world.other_producer,))
    for producer_id in (world.other_producer, 999999):
        assert is_problem(client.get(f"/api/dfc/producers/{producer_id}/catalog"), 404)
