"""Where one /products request spends its time, in-process: `python bench/pieces.py [database]`.

Run after `make bench` (which leaves noeari_bench built at the last scale it ran).
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import app as noeari  # noqa: E402

noeari.app.config["MYSQL_DB"] = sys.argv[1] if len(sys.argv) > 1 else "noeari_bench"


def timed(label, action, repeat=500):
    for _ in range(30):
        action()
    started = time.perf_counter()
    for _ in range(repeat):
        action()
    print(f"{label:<34} {(time.perf_counter() - started) / repeat * 1000:6.3f} ms")


client = noeari.app.test_client()
timed("whole request, test client", lambda: client.get("/products"))
timed("a 404 page (request overhead)", lambda: client.get("/no-such-page"))
with noeari.app.test_request_context("/products"):
    noeari.app.preprocess_request()
    filters = noeari.catalogue_filters()
    timed("catalogue SQL (count + page)", lambda: noeari.catalogue_page(filters, 1))
    rows, total, _ = noeari.catalogue_page(filters, 1)
    timed("render the /products page", lambda: noeari.render_template(
        "shop/products.html", products=rows, total=total, page=1, pages=10, filters=filters, link_args={},
        categories=noeari.CATEGORIES, sorts=noeari.CATALOGUE_SORTS, search_limit=noeari.SEARCH_LIMIT))
    from bench import reference_app  # noqa: E402
    timed("reference: render its 24 rows", lambda: reference_app.PAGE.render(products=rows))
