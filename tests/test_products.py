"""Producers manage their catalogue: create, edit, photos, show/hide, delete or archive."""
import hashlib
import io
import os
import re
import struct
import zlib
from decimal import Decimal

import pytest
from PIL import Image

VALID = {"name": "Duck eggs", "description": "Rich and golden.", "category": "Dairy & Eggs", "price": "4.50",
         "unit": "half dozen", "quantity_available": "12", "reorder_threshold": "3", "is_available": "y"}


def png_bytes(size=(64, 48), color=(200, 60, 30), metadata=None, mode="RGB"):
    from PIL import PngImagePlugin
    info = PngImagePlugin.PngInfo()
    for key, value in (metadata or {}).items():
        info.add_text(key, value)
    out = io.BytesIO()
    Image.new(mode, size, color).save(out, "PNG", pnginfo=info)
    return out.getvalue()


def png_claiming_size(width, height):
    """A tiny PNG whose header claims width × height pixels: a decompression bomb's calling card."""
    data = bytearray(png_bytes((1, 1)))
    ihdr = data.index(b"IHDR")
    data[ihdr + 4:ihdr + 12] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[ihdr:ihdr + 17]))
    data[ihdr + 17:ihdr + 21] = struct.pack(">I", crc)
    return bytes(data)


def png_of(width, height, color_type=2, channels=3):
    """A real PNG of width × height black pixels, built row by row so that a huge one costs little to make."""
    compressor = zlib.compressobj(9)
    rows_at_once = max(1, 1_000_000 // (1 + width * channels))
    block = b"\0" * (1 + width * channels) * rows_at_once
    parts = [compressor.compress(block) for _ in range(height // rows_at_once)]
    parts.append(compressor.compress(b"\0" * (1 + width * channels) * (height % rows_at_once)))
    pixels = b"".join(parts) + compressor.flush()

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    header = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def with_file(data, content, filename="photo.png"):
    return dict(data, image=(io.BytesIO(content), filename))


def products_of(db, producer_id):
    return db.rows("SELECT p.*, s.quantity_available, s.reorder_threshold FROM product p"
                   " JOIN stock s ON s.product_id = p.product_id WHERE p.producer_id = %s ORDER BY p.product_id",
                   (producer_id,))


def test_create_product_with_stock(client, auth, db, world):
    auth.login_producer()
    response = client.post("/dashboard/products/new", data=VALID)
    assert response.status_code == 302
    product = products_of(db, world.producer)[-1]
    assert (product["name"], product["description"], product["category"], product["price"], product["unit"],
            product["is_available"], product["quantity_available"], product["reorder_threshold"]) == (
        "Duck eggs", "Rich and golden.", "Dairy & Eggs", Decimal("4.50"), "half dozen", 1, 12, 3)
    assert "Duck eggs has been added to your shop." in client.get("/dashboard").get_data(as_text=True)
    assert "Duck eggs" in client.get("/products").get_data(as_text=True)


def test_new_product_form_offers_the_shared_category_list(client, auth, world):
    auth.login_producer()
    page = client.get("/dashboard/products/new").get_data(as_text=True)
    for category in ["Vegetables", "Fruit", "Dairy &amp; Eggs", "Meat &amp; Fish", "Bakery", "Pantry", "Drinks",
                     "Flowers &amp; Plants"]:
        assert f">{category}</option>" in page
    for name in ["name", "description", "category", "price", "unit", "quantity_available", "reorder_threshold",
                 "is_available", "image"]:
        assert f'name="{name}"' in page
    assert 'enctype="multipart/form-data"' in page


@pytest.mark.parametrize("changes, message", [
    ({"name": ""}, "This field is required."),
    ({"name": "x" * 256}, "Field cannot be longer than 255 characters."),
    ({"price": ""}, "Enter a price."),
    ({"price": "0"}, "from 0.01 to 9999.99"),
    ({"price": "-1.00"}, "from 0.01 to 9999.99"),
    ({"price": "10000"}, "from 0.01 to 9999.99"),
    ({"price": "1.234"}, "at most two decimals"),
    ({"price": "abc"}, "Not a valid decimal value"),
    ({"price": "NaN"}, "from 0.01 to 9999.99"),
    ({"price": "Infinity"}, "from 0.01 to 9999.99"),
    ({"price": "1e2"}, None),
    ({"category": "Weapons"}, "Not a valid choice"),
    ({"unit": ""}, "This field is required."),
    ({"unit": "u" * 31}, "Field cannot be longer than 30 characters."),
    ({"quantity_available": "-1"}, "from 0 to 1,000,000"),
    ({"quantity_available": "1000001"}, "from 0 to 1,000,000"),
    ({"quantity_available": "2.5"}, "Stock of Duck eggs is counted in whole numbers."),
    ({"reorder_threshold": "abc"}, "Enter the quantity as a number"),
    ({"reorder_threshold": ""}, "Enter a quantity."),
    ({"description": "d" * 5001}, "Field cannot be longer than 5000 characters."),
])
def test_create_refuses_bad_fields_and_stores_nothing(client, auth, db, world, changes, message):
    auth.login_producer()
    if message is None:
        response = client.post("/dashboard/products/new", data=dict(VALID, **changes))
        assert response.status_code == 302, "1e2 is a valid way to write 100"
        return
    with db.unchanged():
        response = client.post("/dashboard/products/new", data=dict(VALID, **changes))
        assert response.status_code == 400
        assert message in response.get_data(as_text=True)


def test_edit_changes_fields_and_stock(client, auth, db, world):
    auth.login_producer()
    form = client.get(f"/dashboard/products/{world.product}/edit").get_data(as_text=True)
    assert 'value="Potatoes"' in form and 'name="quantity_seen" type="hidden" value="50"' in form
    data = dict(VALID, name="New potatoes", price="2.10", quantity_available="80", quantity_seen="50",
                reorder_threshold="15")
    data.pop("is_available")
    assert client.post(f"/dashboard/products/{world.product}/edit", data=data).status_code == 302
    product = [p for p in products_of(db, world.producer) if p["product_id"] == world.product][0]
    assert (product["name"], product["price"], product["is_available"], product["quantity_available"],
            product["reorder_threshold"]) == ("New potatoes", Decimal("2.10"), 0, 80, 15)


def test_saving_an_unchanged_stock_figure_keeps_sales_made_meanwhile(client, auth, db, world):
    auth.login_producer()
    db.execute("UPDATE stock SET quantity_available = 47 WHERE product_id = %s", (world.product,))
    data = dict(VALID, quantity_available="50", quantity_seen="50")
    assert client.post(f"/dashboard/products/{world.product}/edit", data=data).status_code == 302
    assert db.stock(world.product) == 47


@pytest.mark.parametrize("changes", [{"price": "abc"}, {"name": ""}, {"quantity_available": "-5"}])
def test_edit_with_bad_fields_changes_nothing(client, auth, db, world, changes):
    auth.login_producer()
    with db.unchanged():
        response = client.post(f"/dashboard/products/{world.product}/edit", data=dict(VALID, **changes))
        assert response.status_code == 400


def test_real_png_is_reencoded_as_jpeg_without_metadata_and_with_a_thumbnail(app, client, auth, db, world):
    auth.login_producer()
    upload = png_bytes((2400, 1200), metadata={"Comment": "secret GPS 51.5,-0.1"})
    response = client.post("/dashboard/products/new", data=with_file(VALID, upload),
                           content_type="multipart/form-data")
    assert response.status_code == 302
    product = products_of(db, world.producer)[-1]
    assert product["image_url"].startswith("/uploads/") and product["thumbnail_url"].startswith("/uploads/")
    served = client.get(product["image_url"])
    assert served.status_code == 200 and served.mimetype == "image/jpeg"
    stored = served.get_data()
    assert stored != upload and b"secret GPS" not in stored
    with Image.open(io.BytesIO(stored)) as image:
        assert image.format == "JPEG" and image.size == (1600, 800)
        assert not image.info.get("exif") and "Comment" not in image.info
    with Image.open(io.BytesIO(client.get(product["thumbnail_url"]).get_data())) as thumb:
        assert max(thumb.size) <= 480
    assert db.value("SELECT COUNT(*) FROM photo") == 2
    assert not os.path.exists(app.config["UPLOAD_FOLDER"]), "photos live in the database, not on this disk"
    page = client.get(f"/products/{product['product_id']}").get_data(as_text=True)
    assert f'src="{product["image_url"]}"' in page


SECRET = "secret comment at 51.5,-0.1"


def jpeg_with_metadata():
    exif = Image.Exif()
    exif[0x010E] = SECRET  # ImageDescription
    exif[0x8825] = {2: (51.0, 30.0, 0.0)}  # GPS latitude
    out = io.BytesIO()
    Image.new("RGB", (800, 600), "orange").save(out, "JPEG", comment=SECRET.encode(), exif=exif,
                                                 xmp=f"<x:xmpmeta>{SECRET}</x:xmpmeta>".encode())
    return out.getvalue()


def png_with_metadata():
    from PIL import PngImagePlugin
    info = PngImagePlugin.PngInfo()
    info.add_text("comment", SECRET)
    info.add_text("Description", SECRET, zip=True)
    info.add_itxt("XML:com.adobe.xmp", SECRET)
    out = io.BytesIO()
    exif = Image.Exif()
    exif[0x010E] = SECRET
    Image.new("RGB", (800, 600), "orange").save(out, "PNG", pnginfo=info, exif=exif)
    return out.getvalue()


@pytest.mark.parametrize("make, filename", [(jpeg_with_metadata, "photo.jpg"), (png_with_metadata, "photo.png")])
def test_comments_and_every_kind_of_metadata_are_stripped(client, auth, db, world, make, filename):
    upload = make()
    assert SECRET.encode() in upload
    with Image.open(io.BytesIO(upload)) as original:
        assert original.info.get("comment") and original.getexif(), "the upload carries a comment and EXIF"
    auth.login_producer()
    assert client.post("/dashboard/products/new", data=with_file(VALID, upload, filename),
                       content_type="multipart/form-data").status_code == 302
    product = products_of(db, world.producer)[-1]
    for url in (product["image_url"], product["thumbnail_url"]):
        served = client.get(url).get_data()
        assert b"secret" not in served and b"51.5" not in served
        with Image.open(io.BytesIO(served)) as image:
            assert set(image.info) <= {"jfif", "jfif_version", "jfif_unit", "jfif_density", "dpi"}, image.info
            assert not image.getexif()


def test_a_large_photo_within_the_budget_is_accepted_and_scaled_once(app, client, auth, db, world):
    """A 4000 × 3000 PNG costs less than the decoding budget; a 10,000 × 7,000 JPEG is decoded reduced."""
    auth.login_producer()
    big_jpeg = io.BytesIO()
    Image.new("RGB", (10_000, 7_000), "teal").save(big_jpeg, "JPEG")
    for content, filename, size in [(png_of(4000, 3000), "big.png", (1600, 1200)),
                                    (big_jpeg.getvalue(), "big.jpg", (1600, 1120))]:
        assert client.post("/dashboard/products/new", data=with_file(VALID, content, filename),
                           content_type="multipart/form-data").status_code == 302, filename
        product = products_of(db, world.producer)[-1]
        with Image.open(io.BytesIO(client.get(product["image_url"]).get_data())) as image:
            assert image.size == size


def test_transparent_png_and_webp_are_accepted(client, auth, db, world):
    auth.login_producer()
    out = io.BytesIO()
    Image.new("RGB", (30, 30), "green").save(out, "WEBP")
    for name, content in [("a.png", png_bytes(mode="RGBA", color=(0, 0, 0, 0))), ("b.webp", out.getvalue())]:
        response = client.post("/dashboard/products/new", data=with_file(VALID, content, name),
                                content_type="multipart/form-data")
        assert response.status_code == 302, name


@pytest.mark.parametrize("content, filename, message", [
    (b"just some text, honestly", "photo.png", "not a readable JPEG, PNG or WebP image"),
    (png_bytes()[:60], "truncated.png", "not a readable JPEG, PNG or WebP image"),
    (b"GIF89a" + b"\0" * 40, "anim.gif", "not a readable JPEG, PNG or WebP image"),
    (b"\x89PNG" + os.urandom(5 * 1024 * 1024), "huge.png", "Images must be 5 MB or smaller."),
    (png_claiming_size(50_000, 50_000), "bomb.png", "too many pixels"),
    (lambda: png_of(1, 39_000_000, color_type=0, channels=1), "tall.png", "1 × 39,000,000 pixels; photos can be at most"),
    (lambda: png_of(6300, 6300, color_type=6, channels=4), "rgba.png", "6,300 × 6,300 pixels, too large to process"),
])
def test_bad_images_are_refused_and_the_product_is_unchanged(app, client, auth, db, world, content, filename, message):
    content = content() if callable(content) else content  # the big ones are made only when needed
    auth.login_producer()
    with db.unchanged():
        for path in ["/dashboard/products/new", f"/dashboard/products/{world.product}/edit"]:
            response = client.post(path, data=with_file(VALID, content, filename), content_type="multipart/form-data")
            assert response.status_code == 400
            assert message in response.get_data(as_text=True)
    assert db.value("SELECT COUNT(*) FROM photo") == 0


def test_a_request_over_the_size_limit_gets_a_styled_413(client, auth, db, world):
    auth.login_producer()
    with db.unchanged():
        response = client.post("/dashboard/products/new", data=with_file(VALID, b"x" * (7 * 1024 * 1024)),
                               content_type="multipart/form-data")
        assert response.status_code == 413
        assert "Too large" in response.get_data(as_text=True)


def stored_photos(db):
    return {row["name"] for row in db.rows("SELECT name FROM photo")}


def test_replacing_a_photo_removes_the_old_one(client, auth, db, world):
    auth.login_producer()
    client.post(f"/dashboard/products/{world.product}/edit", data=with_file(VALID, png_bytes()),
                content_type="multipart/form-data")
    first = stored_photos(db)
    client.post(f"/dashboard/products/{world.product}/edit", data=with_file(VALID, png_bytes(color=(1, 2, 3))),
                content_type="multipart/form-data")
    second = stored_photos(db)
    assert len(first) == len(second) == 2 and not first & second
    assert client.get("/uploads/" + sorted(first)[0]).status_code == 404


def test_deleting_a_product_deletes_its_photo_with_it(client, auth, db, world):
    auth.login_producer()
    client.post("/dashboard/products/new", data=with_file(VALID, png_bytes()), content_type="multipart/form-data")
    product = products_of(db, world.producer)[-1]
    assert stored_photos(db)
    assert client.post(f"/dashboard/products/{product['product_id']}/delete").status_code == 302
    assert stored_photos(db) == set()


def test_a_photo_that_fails_to_save_with_its_product_is_not_kept(client, auth, db, world):
    """The photo is written in the product's transaction: a product that cannot be saved leaves no photo."""
    auth.login_producer()
    db.execute("CREATE TRIGGER refuse_product BEFORE UPDATE ON product FOR EACH ROW"
               " SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'refused'")
    try:
        response = client.post(f"/dashboard/products/{world.product}/edit", data=with_file(VALID, png_bytes()),
                               content_type="multipart/form-data")
    finally:
        db.execute("DROP TRIGGER refuse_product")
    assert response.status_code == 500
    assert stored_photos(db) == set()


def test_a_photo_is_served_with_its_hash_as_etag_and_kept_for_good(client, auth, db, world):
    auth.login_producer()
    client.post(f"/dashboard/products/{world.product}/edit", data=with_file(VALID, png_bytes()),
                content_type="multipart/form-data")
    url = db.value("SELECT image_url FROM product WHERE product_id = %s", (world.product,))
    photo = db.rows("SELECT sha256, byte_size, data FROM photo WHERE name = %s", (url.rsplit("/", 1)[1],))[0]
    assert photo["sha256"] == hashlib.sha256(photo["data"]).hexdigest() and photo["byte_size"] == len(photo["data"])
    served = client.get(url)
    assert served.status_code == 200 and served.get_data() == photo["data"]
    assert served.headers["ETag"] == f'"{photo["sha256"]}"'
    cache = served.headers["Cache-Control"]
    assert "public" in cache and "max-age=31536000" in cache and "immutable" in cache
    again = client.get(url, headers={"If-None-Match": served.headers["ETag"]})
    assert again.status_code == 304 and again.get_data() == b""


@pytest.mark.parametrize("name", ["../secret_key", "..%2F..%2Fapp.py", "nope.jpg"])
def test_uploads_never_serve_files_outside_the_folder(client, world, name):
    assert client.get(f"/uploads/{name}").status_code == 404


def test_toggle_availability_hides_and_shows(client, auth, db, world):
    auth.login_producer()
    response = client.post(f"/dashboard/products/{world.product}/availability", follow_redirects=True)
    assert "Potatoes is now hidden from the catalogue." in response.get_data(as_text=True)
    assert db.value("SELECT is_available FROM product WHERE product_id = %s", (world.product,)) == 0
    assert "Potatoes" not in client.get("/products").get_data(as_text=True)
    client.post(f"/dashboard/products/{world.product}/availability")
    assert db.value("SELECT is_available FROM product WHERE product_id = %s", (world.product,)) == 1


def test_delete_removes_a_product_that_was_never_ordered(client, auth, db, world):
    auth.login_producer()
    db.add_to_cart(world.customer, world.low_product, 1)
    response = client.post(f"/dashboard/products/{world.low_product}/delete", follow_redirects=True)
    assert "Kale was deleted." in response.get_data(as_text=True)
    assert db.value("SELECT COUNT(*) FROM product WHERE product_id = %s", (world.low_product,)) == 0
    assert db.value("SELECT COUNT(*) FROM stock WHERE product_id = %s", (world.low_product,)) == 0
    assert db.cart(world.customer) == {}


def test_delete_archives_a_product_that_was_ordered(client, auth, db, world):
    auth.login_producer()
    db.add_to_cart(world.other_customer, world.product, 1)
    response = client.post(f"/dashboard/products/{world.product}/delete", follow_redirects=True)
    page = response.get_data(as_text=True)
    assert "archived instead of deleted" in page
    row = db.row("SELECT is_archived, is_available FROM product WHERE product_id = %s", (world.product,))
    assert row == {"is_archived": 1, "is_available": 0}
    assert db.cart(world.other_customer) == {}
    assert f'id="product-{world.product}"' not in page, "archived products leave the dashboard list"
    assert client.get(f"/dashboard/products/{world.product}/edit").status_code == 404
    assert client.post(f"/dashboard/products/{world.product}/availability").status_code == 404
    assert "Potatoes" not in client.get("/products").get_data(as_text=True)
    auth.login_customer()
    assert "Potatoes" in client.get(f"/orders/{world.order}").get_data(as_text=True), "order history keeps it"


def test_restock_panel_lists_exactly_the_products_at_or_below_the_threshold(client, auth, db, world):
    at = db.add_product(world.producer, "Exactly at", quantity=5, threshold=5)
    db.add_product(world.producer, "One above", quantity=6, threshold=5)
    out = db.add_product(world.producer, "Sold out", quantity=0, threshold=0)
    archived = db.add_product(world.producer, "Archived", quantity=0, threshold=3)
    db.execute("UPDATE product SET is_archived = 1 WHERE product_id = %s", (archived,))
    db.add_product(world.other_producer, "Someone else's", quantity=0, threshold=3)
    auth.login_producer()
    page = client.get("/dashboard").get_data(as_text=True)
    listed = set(int(i) for i in __import__("re").findall(r'<tr id="restock-(\d+)"', page))
    assert listed == {world.low_product, at, out}
    assert '<span class="count" title="Products that need restocking">3<' in page
    assert f'id="restock-quantity-{out}"' in page, "each row has the inline stock form"


def test_out_of_stock_is_marked_on_the_dashboard_and_catalogue(client, auth, db, world):
    db.execute("UPDATE stock SET quantity_available = 0 WHERE product_id = %s", (world.product,))
    assert "Out of stock" in client.get("/products").get_data(as_text=True)
    auth.login_producer()
    row = client.get("/dashboard").get_data(as_text=True).split(f'id="product-{world.product}"')[1].split("</tr>")[0]
    assert "Out of stock" in row


def test_dashboard_products_are_paginated(client, auth, db, world):
    for n in range(30):
        db.add_product(world.producer, f"Zz item {n:02d}", quantity=100)
    auth.login_producer()
    first = client.get("/dashboard").get_data(as_text=True)
    second = client.get("/dashboard?page=2").get_data(as_text=True)
    assert "Page 1 of 2" in first and "Zz item 29" not in first and "Zz item 29" in second


def test_toggling_on_a_later_dashboard_page_comes_back_to_that_page(client, auth, db, world):
    for n in range(30):
        db.add_product(world.producer, f"Zucchini {n:02d}", category="Vegetables")
    auth.login_producer()
    page = client.get("/dashboard?page=2").get_data(as_text=True)
    target = db.value("SELECT product_id FROM product WHERE name = 'Zucchini 29'")
    form = re.search(rf'action="/dashboard/products/{target}/availability".*?</form>', page, re.S).group(0)
    assert 'name="next" value="/dashboard?page=2"' in form
    response = client.post(f"/dashboard/products/{target}/availability", data={"next": "/dashboard?page=2"})
    assert response.headers["Location"] == "/dashboard?page=2"
    assert db.value("SELECT is_available FROM product WHERE product_id = %s", (target,)) == 0
    elsewhere = client.post(f"/dashboard/products/{target}/availability", data={"next": "https://evil.example/"})
    assert elsewhere.headers["Location"] == "/dashboard"
