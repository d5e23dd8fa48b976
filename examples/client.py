"""A script that drives noeari over HTTP with requests, as a co-op's own program would: sign up, log in, browse,
fill the cart, check out, and list the orders. Plain form posts and JSON answers, no CSRF token to scrape.

    python examples/client.py http://127.0.0.1:5000 eve@example.com "a long password"
"""
import sys
import uuid

import requests


def main(base, email, password):
    api = f"{base.rstrip('/')}/api/v1"
    signed_up = requests.post(f"{api}/customers", data={"name": "Eve", "email": email, "password": password},
                              timeout=10)
    print("sign up:", signed_up.status_code, signed_up.json().get("email") or signed_up.json().get("detail"))
    login = requests.post(f"{api}/tokens", data={"email": email, "password": password, "role": "customer",
                                                  "name": "example client"}, timeout=10)
    login.raise_for_status()
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {login.json()['token']}"
    print("log in:", login.status_code, "token expires", login.json()["expires_at"])

    products = session.get(f"{api}/products", params={"in_stock": "1", "sort": "price_asc"}, timeout=10).json()
    print("browse:", products["total"], "products in stock; cheapest:",
          ", ".join(f"{p['name']} {p['unit_price']}" for p in products["items"][:3]))
    for product in products["items"][:2]:
        line = session.put(f"{api}/cart/lines/{product['id']}", data={"quantity": "1"}, timeout=10)
        print("add to cart:", product["name"], line.status_code, line.json().get("quantity"))

    cart = session.get(f"{api}/cart", timeout=10).json()
    choices = {}
    for group in cart["groups"]:
        # Collect where a producer offers it; a delivery needs the address it goes to.
        times = sorted(group["open_times"], key=lambda time: time["kind"] != "collection")
        if times:
            time = times[0]
            choices[f"when_{group['producer']['id']}"] = time["key"]
            if time["kind"] == "delivery":
                choices.update(delivery_address="12 Orchard Row", postcode="BS1 4DJ")
            print("choose:", group["producer"]["name"], "->", time["kind"], time["place"],
                  time["date"] or "by arrangement", time["start"] or "")
    placed = session.post(f"{api}/checkout", data=choices, headers={"Idempotency-Key": uuid.uuid4().hex}, timeout=30)
    answer = placed.json()
    print("check out:", placed.status_code,
          ", ".join(f"#{o['id']} {o['producer']['name']} {o['total']['amount']} {o['total']['currency']}"
                    for o in answer.get("orders", []))
          or f"{answer.get('detail')} {answer.get('errors', '')}")

    orders = session.get(f"{api}/orders", timeout=10).json()
    print("orders:", orders["total"], "-", ", ".join(f"#{o['id']} {o['status']}" for o in orders["items"]))
    return 0 if placed.status_code == 201 else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
