"""Where, when and how customers get their food: the slot rules, written once. Weekly slots become
dated occurrences in the TIMEZONE setting's zone; an occurrence can be ordered until its cutoff,
unless its date is closed, its option inactive or its capacity full. Fees, minimums and postcode
areas are here too. It knows nothing of requests or of the database's tables."""
import datetime
import functools
import re
from dataclasses import dataclass
from decimal import Decimal
from zoneinfo import ZoneInfo

from flask import current_app

UTC = datetime.timezone.utc
DAYS_AHEAD = 14
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
ARRANGED = "arranged"


def zone():
    return ZoneInfo(current_app.config["TIMEZONE"])


def utc_now():
    """The current instant; the one clock every slot rule reads, so tests can set it."""
    return datetime.datetime.now(UTC)


def local_today(now=None):
    return (now or utc_now()).astimezone(zone()).date()


def as_time(value):
    """A TIME column as MySQLdb returns it (a timedelta since midnight), or a time, as a time."""
    if isinstance(value, datetime.timedelta):
        return (datetime.datetime.min + value).time()
    return value


def local_instant(day, at, in_zone=None):
    """The instant a local wall-clock time happens on day (in TIMEZONE, or in_zone), as an aware UTC datetime.

    On the day clocks go forward, a time in the skipped hour is read as the zone's earlier offset
    (01:30 becomes 02:30 summer time); on the day they go back, a repeated time is its first.
    """
    return datetime.datetime.combine(day, as_time(at), tzinfo=in_zone or zone()).astimezone(UTC)


def stored_day_start(day):
    """When the local day begins, as the database stores instants (a naive UTC DATETIME): for filters on
    placed_at and the like."""
    return local_instant(day, datetime.time(0)).replace(tzinfo=None)


def stored_local(stored, local_zone):
    """A stored instant (naive UTC) as wall-clock time in local_zone, 'YYYY-MM-DD HH:MM:SS', for spreadsheets
    (the zone is passed in, as they are written after the request)."""
    return f"{stored.replace(tzinfo=UTC).astimezone(local_zone):%Y-%m-%d %H:%M:%S}"


def cutoff_instant(day, start, cutoff_hours):
    """When ordering for an occurrence closes: cutoff_hours of real time before it starts."""
    return local_instant(day, start) - datetime.timedelta(hours=cutoff_hours)


def format_window(day, start, end):
    """'Sat 29 Nov 2026, 09:00–12:00 GMT': the date, the window, and the zone in force that day."""
    return zoned_window(day, start, end, zone())


@functools.lru_cache(maxsize=4096)
def zoned_window(day, start, end, in_zone):
    """format_window in a given zone; a list of orders repeats a few windows many times, so each is kept."""
    starts = local_instant(day, start, in_zone).astimezone(in_zone)
    return f"{day:%a %-d %b %Y}, {as_time(start):%H:%M}–{as_time(end):%H:%M} {starts.tzname()}"


def format_instant(instant):
    """An instant as local time with its zone: 'Fri 28 Nov 2026, 09:00 GMT'."""
    local = instant.astimezone(zone())
    return f"{local:%a %-d %b %Y, %H:%M} {local.tzname()}"


# How pages write a date: one filter (|date, with one of these names) in place of a format per template.
DATE_FORMATS = {
    "day": "%-d %b %Y",             # 4 Dec 2026
    "weekday": "%a %-d %b %Y",      # Fri 4 Dec 2026
    "full": "%A %-d %B %Y",         # Friday 4 December 2026
    "month": "%B %Y",               # December 2026
    "day_month": "%-d %b",          # 4 Dec
    "weekday_month": "%a %-d %b",   # Fri 4 Dec
    "numeric": "%-d/%-m",           # 4/12
}


def format_date(value, style="day"):
    """A date in one of DATE_FORMATS; a stored DATETIME (UTC) is first moved to its day in TIMEZONE."""
    if isinstance(value, datetime.datetime):
        value = (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(zone()).date()
    return value.strftime(DATE_FORMATS[style])


def format_stored(value):
    """A stored DATETIME (UTC) or an aware instant, in TIMEZONE with its zone."""
    return format_instant(value if value.tzinfo else value.replace(tzinfo=UTC))


def format_clock(value):
    """A TIME column as 09:00."""
    return f"{as_time(value):%H:%M}"


def option_heading(option, goods):
    """How a customer sees an option at checkout: where, and its fee for these goods (at a co-op hub, the hub's
    fee, charged once for all the producers' orders there)."""
    where = (f"Collect at {option['name']}" if option["kind"] == "collection"
             else f"{option['name']}: delivery to {option['areas']}")
    if option.get("hub_id") is not None and option.get("hub_fee"):
        return f"{where} · {format_money(option['hub_fee'])} once for the basket"
    fee = fee_for(option, goods)
    return f"{where} · {format_money(fee) if fee else 'free'}"


@dataclass(frozen=True)
class Occurrence:
    """One orderable time of an option: a slot on a date, or the option itself when it has no slots."""
    option: dict
    slot: dict | None
    day: datetime.date | None
    full: bool = False

    @property
    def key(self):
        """The checkout form's value: <slot_id>@<YYYY-MM-DD>, or <option_id>@arranged."""
        if self.slot is None:
            return f"{self.option['option_id']}@{ARRANGED}"
        return f"{self.slot['slot_id']}@{self.day.isoformat()}"

    @property
    def start(self):
        return as_time(self.slot["start_time"]) if self.slot else None

    @property
    def end(self):
        return as_time(self.slot["end_time"]) if self.slot else None

    @property
    def cutoff(self):
        return cutoff_instant(self.day, self.start, self.option["cutoff_hours"]) if self.slot else None

    @property
    def when(self):
        return format_window(self.day, self.start, self.end) if self.slot else "By arrangement"


def occurrences(options, slots, closed_days, booked, now=None, days=DAYS_AHEAD, include_full=False):
    """Every orderable occurrence of options over the next days, in time order, then arranged ones; with
    include_full, also those whose slot is full, marked full.

    options: option rows; slots: slot rows (slot_id, option_id, weekday, start_time, end_time);
    closed_days: {producer_id or ("hub", hub_id): set of dates}; booked: {(slot_id, date): orders booked}.
    """
    now = now or utc_now()
    today = local_today(now)
    slots_of = {}
    for slot in slots:
        slots_of.setdefault(slot["option_id"], []).append(slot)
    dated, arranged = [], []
    for option in options:
        if not option["is_active"]:
            continue
        option_slots = slots_of.get(option["option_id"], [])
        if not option_slots:
            arranged.append(Occurrence(option, None, None))
            continue
        closed = closed_days.get(option["producer_id"], set()) | closed_days.get(("hub", option.get("hub_id")), set())
        for offset in range(days):
            day = today + datetime.timedelta(days=offset)
            if day in closed:
                continue
            for slot in option_slots:
                if slot["weekday"] != day.weekday():
                    continue
                full = option["capacity"] is not None and booked.get((slot["slot_id"], day), 0) >= option["capacity"]
                occurrence = Occurrence(option, slot, day, full)
                if now < occurrence.cutoff and (include_full or not full):
                    dated.append(occurrence)
    dated.sort(key=lambda o: (o.day, o.start, o.option["option_id"], o.slot["slot_id"]))
    return dated + arranged


def fee_for(option, goods):
    """The option's fee for an order of goods: nothing once goods reach free_over."""
    if option["free_over"] is not None and goods >= option["free_over"]:
        return Decimal("0.00")
    return option["fee"]


def shortfall(option, goods):
    """How much more the order needs to reach the option's minimum (0 when it does)."""
    return max(option["minimum_order"] - goods, Decimal("0.00"))


# --- Postcodes ---------------------------------------------------------------

POSTCODE_PREFIX = re.compile(r"[A-Z0-9]{1,8}")
UK_POSTCODE = re.compile(r"[A-Z]{1,2}[0-9][A-Z0-9]?[0-9][A-Z]{2}")


def normalise_postcode(text):
    return re.sub(r"\s+", "", text or "").upper()


def parse_postcodes(text):
    """The prefixes in 'BS1, bs2,BA': normalised, in order, without repeats; ValueError naming a bad one."""
    prefixes = []
    for part in (text or "").split(","):
        prefix = normalise_postcode(part)
        if not prefix:
            continue
        if not POSTCODE_PREFIX.fullmatch(prefix):
            raise ValueError(f"“{part.strip()[:20]}” is not a postcode area: use letters and digits, like BS1 or BA.")
        if prefix not in prefixes:
            prefixes.append(prefix)
    return prefixes


def full_postcode(text):
    """text as a full UK postcode without spaces, upper case (BS14DJ), or None when it is not one."""
    code = normalise_postcode(text)
    return code if UK_POSTCODE.fullmatch(code) else None


def postcode_served(postcode, prefixes):
    """Whether a customer's postcode lies in one of the prefixes, without regard to case or spaces.

    Only a full UK postcode is served, matched on its outward code: a prefix names a whole area, district or
    sector, so BS1 serves BS1 4DJ but not BS10 5AA, and BA serves BA2 3QD but not B1 1AA. A partial code
    (BS10, BS10 5A) or one that is no postcode (BS1ZZZZ) is served by no area.
    """
    code = full_postcode(postcode)
    if code is None:
        return False
    outward = code[:-3]
    for prefix in prefixes:
        if len(prefix) > len(outward):
            if code.startswith(prefix):
                return True
        elif outward == prefix:
            return True
        elif outward.startswith(prefix) and prefix[-1].isalpha() and outward[len(prefix)].isdigit():
            return True
    return False


def postcodes_summary(prefixes):
    """'BS1–BS8, BA': three or more consecutive districts of one area shown as a range."""
    parts, run = [], []

    def close_run():
        if len(run) >= 3:
            parts.append(f"{run[0][2]}–{run[-1][2]}")
        else:
            parts.extend(prefix for _, _, prefix in run)
        run.clear()

    for prefix in prefixes:
        match = re.fullmatch(r"([A-Z]+)(\d+)", prefix)
        if match and run and run[-1][0] == match.group(1) and run[-1][1] + 1 == int(match.group(2)):
            run.append((match.group(1), int(match.group(2)), prefix))
            continue
        close_run()
        if match:
            run.append((match.group(1), int(match.group(2)), prefix))
        else:
            parts.append(prefix)
    close_run()
    return ", ".join(parts)


def format_money(amount):
    """An amount in CURRENCY_SYMBOL with two decimals and thousands separated: £1,234.50, or −£2.40 below 0."""
    amount = Decimal(amount)
    return f"{'−' if amount < 0 else ''}{current_app.config['CURRENCY_SYMBOL']}{abs(amount):,.2f}"
