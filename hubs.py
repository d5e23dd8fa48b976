"""The co-op's shared pick-ups (hubs): a place with weekly collection times, a cutoff, a capacity in baskets and
a fee per basket, run by the operator. A producer who joins a hub gets a collection option there (hub_id set),
whose place, cutoff and weekly times follow the hub's; leaving archives it, so past orders keep theirs.

Request-free: the acting account comes in as an argument.
"""
from db import execute, query, transactional

HUB_FIELDS = ("name", "address", "instructions", "contact", "cutoff_hours", "capacity", "fee", "is_active")
HUB_COLUMNS = "h.hub_id, " + ", ".join(f"h.{field}" for field in HUB_FIELDS)


class HubNameTaken(Exception):
    """Another hub has this name."""


def all_hubs():
    """Every hub with its weekly times and how many producers deliver to it, by name."""
    hubs = query(f"SELECT {HUB_COLUMNS}, (SELECT COUNT(*) FROM fulfilment_option o WHERE o.hub_id = h.hub_id"
                 " AND o.is_archived = 0) AS members FROM hub h ORDER BY h.name")
    slots = slots_of([hub["hub_id"] for hub in hubs])
    for hub in hubs:
        hub["slots"] = slots.get(hub["hub_id"], [])
    return hubs


def slots_of(hub_ids):
    """{hub_id: [its weekly times]}."""
    found = {}
    if hub_ids:
        for slot in query("SELECT hub_slot_id, hub_id, weekday, start_time, end_time FROM hub_slot"
                          f" WHERE hub_id IN ({', '.join(['%s'] * len(hub_ids))}) ORDER BY weekday, start_time",
                          list(hub_ids)):
            found.setdefault(slot["hub_id"], []).append(slot)
    return found


def hub(hub_id):
    """One hub with its weekly times and the producers who deliver to it; None when there is none."""
    found = query(f"SELECT {HUB_COLUMNS} FROM hub h WHERE h.hub_id = %s", (hub_id,), one=True)
    if found:
        found["slots"] = slots_of([hub_id]).get(hub_id, [])
        found["members"] = query("SELECT o.option_id, o.producer_id, o.drop_off, o.payment_method, p.business_name"
                                 " FROM fulfilment_option o JOIN producer p ON p.producer_id = o.producer_id"
                                 " WHERE o.hub_id = %s AND o.is_archived = 0 ORDER BY p.business_name", (hub_id,))
    return found


@transactional
def create_hub(values):
    """A new hub from values (a dict of HUB_FIELDS); its id. HubNameTaken when the name is in use."""
    if query("SELECT 1 AS found FROM hub WHERE name = %s", (values["name"],), one=True):
        raise HubNameTaken(values["name"])
    return execute(f"INSERT INTO hub ({', '.join(HUB_FIELDS)}) VALUES ({', '.join(['%s'] * len(HUB_FIELDS))})",
                   [values[field] for field in HUB_FIELDS]).lastrowid


@transactional
def save_hub(hub_id, values):
    """Save a hub and carry its place, instructions, cutoff and state to its producers' options there; orders
    placed already keep what they were promised. HubNameTaken when another hub has the name."""
    if query("SELECT 1 AS found FROM hub WHERE name = %s AND hub_id <> %s", (values["name"], hub_id), one=True):
        raise HubNameTaken(values["name"])
    execute(f"UPDATE hub SET {', '.join(f'{field} = %s' for field in HUB_FIELDS)} WHERE hub_id = %s",
            [values[field] for field in HUB_FIELDS] + [hub_id])
    execute("UPDATE fulfilment_option SET name = %s, address = %s, instructions = %s, cutoff_hours = %s,"
            " is_active = %s WHERE hub_id = %s AND is_archived = 0",
            (values["name"], values["address"], values["instructions"], values["cutoff_hours"], values["is_active"],
             hub_id))


@transactional
def add_slot(hub_id, weekday, start, end):
    """A weekly time at the hub, and the same time at each producer's option there."""
    slot_id = execute("INSERT INTO hub_slot (hub_id, weekday, start_time, end_time) VALUES (%s, %s, %s, %s)",
                      (hub_id, weekday, start, end)).lastrowid
    execute("INSERT INTO fulfilment_slot (option_id, weekday, start_time, end_time, hub_slot_id)"
            " SELECT option_id, %s, %s, %s, %s FROM fulfilment_option WHERE hub_id = %s AND is_archived = 0",
            (weekday, start, end, slot_id, hub_id))
    return slot_id


def delete_slot(hub_id, hub_slot_id):
    """Remove a weekly time from the hub and from its producers' options (orders keep their times); False when
    the hub has no such time."""
    return execute("DELETE FROM hub_slot WHERE hub_slot_id = %s AND hub_id = %s", (hub_slot_id, hub_id)).rowcount == 1


# --- Producers at hubs --------------------------------------------------------

def producer_hubs(producer_id):
    """The active hubs with their times, each with the producer's option there (None when they have not joined)."""
    hubs = [found for found in all_hubs() if found["is_active"]]
    mine = {row["hub_id"]: row for row in query(
        "SELECT option_id, hub_id, drop_off, payment_method FROM fulfilment_option"
        " WHERE producer_id = %s AND hub_id IS NOT NULL AND is_archived = 0", (producer_id,))}
    for found in hubs:
        found["mine"] = mine.get(found["hub_id"])
    return hubs


@transactional
def join(producer_id, hub_id, drop_off, payment_method):
    """The producer delivers to the hub from now: a collection option there with the hub's place, cutoff and
    times, and their drop-off time and way of payment. Its id (the existing one when they are in already);
    None when there is no such active hub."""
    found = query("SELECT * FROM hub WHERE hub_id = %s AND is_active = 1 FOR UPDATE", (hub_id,), one=True)
    if found is None:
        return None
    existing = query("SELECT option_id FROM fulfilment_option WHERE producer_id = %s AND hub_id = %s"
                     " AND is_archived = 0", (producer_id, hub_id), one=True)
    if existing:
        return existing["option_id"]
    option_id = execute(
        "INSERT INTO fulfilment_option (producer_id, hub_id, kind, name, address, instructions, drop_off, fee,"
        " minimum_order, cutoff_hours, payment_method) VALUES (%s, %s, 'collection', %s, %s, %s, %s, 0, 0, %s, %s)",
        (producer_id, hub_id, found["name"], found["address"], found["instructions"], drop_off,
         found["cutoff_hours"], payment_method)).lastrowid
    execute("INSERT INTO fulfilment_slot (option_id, weekday, start_time, end_time, hub_slot_id)"
            " SELECT %s, weekday, start_time, end_time, hub_slot_id FROM hub_slot WHERE hub_id = %s",
            (option_id, hub_id))
    return option_id


def leave(producer_id, hub_id):
    """The producer stops delivering to the hub: their option there is archived, so orders placed keep it and
    their lists; whether they were in."""
    return execute("UPDATE fulfilment_option SET is_archived = 1, is_active = 0 WHERE producer_id = %s"
                   " AND hub_id = %s AND is_archived = 0", (producer_id, hub_id)).rowcount == 1


def is_hub_option(producer_id, option_id):
    """Whether one of the producer's options is their place at a hub (its place and times are the hub's)."""
    return query("SELECT 1 AS found FROM fulfilment_option WHERE option_id = %s AND producer_id = %s"
                 " AND hub_id IS NOT NULL", (option_id, producer_id), one=True) is not None
