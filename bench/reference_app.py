"""The ceiling of this stack for `make bench`: a bare Flask view with one kept MySQLdb connection per
worker thread, running the same catalogue query as /products page 1 and rendering the same 24 rows
with a minimal Jinja2 template. Served by gunicorn with the app's own gunicorn.conf.py."""
import os
import sys
import threading

import MySQLdb
import MySQLdb.cursors
from flask import Flask

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from catalogue import CATALOGUE_SELECT, CATALOGUE_SORTS, PRODUCTS_PER_PAGE  # noqa: E402  (the query, not the app)

app = Flask(__name__)
kept = threading.local()
ORDER = CATALOGUE_SORTS["name"][1]
PAGE_ONE = (CATALOGUE_SELECT + " JOIN (SELECT p.product_id FROM product p WHERE p.is_listed = 1"
            f" ORDER BY {ORDER} LIMIT %s OFFSET %s) page_ids ON page_ids.product_id = p.product_id ORDER BY {ORDER}")
PAGE = app.jinja_env.from_string("""<!doctype html><title>Products</title><ul>
{% for p in products %}<li>{{ p.name }} · {{ p.business_name }} · {{ p.price }} / {{ p.unit }} · {{ p.quantity_available }}</li>
{% endfor %}</ul>""")


def connection():
    if not hasattr(kept, "conn"):
        kept.conn = MySQLdb.connect(unix_socket=os.environ["MYSQL_UNIX_SOCKET"], user=os.environ["MYSQL_USER"],
                                    db=os.environ["MYSQL_DB"], charset="utf8mb4", autocommit=True,
                                    cursorclass=MySQLdb.cursors.DictCursor)
    return kept.conn


@app.route("/products")
def products():
    cur = connection().cursor()
    cur.execute(PAGE_ONE, (PRODUCTS_PER_PAGE, 0))
    rows = cur.fetchall()
    cur.close()
    return PAGE.render(products=rows)
