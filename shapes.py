"""How the API and webhooks write money and times in JSON: money as a decimal string with its currency,
times in UTC ISO 8601."""
from flask import current_app

import fulfilment


def money(amount):
    return {"amount": str(amount), "currency": current_app.config["CURRENCY"].upper()}


def utc(value):
    """A stored UTC DATETIME as ISO 8601 with its zone."""
    return value.isoformat() + "Z" if value is not None else None


def instant(value):
    """An aware datetime as UTC ISO 8601."""
    return value.astimezone(fulfilment.UTC).isoformat().replace("+00:00", "Z") if value is not None else None
