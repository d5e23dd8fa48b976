"""How a product is sold: by the unit, by measure (a price per kg, per 100 g, per litre or per unit of count,
bought in steps) or by the item priced by weight (a price per kg and an estimated weight per item). Its
quantities and their checks, the unit prices a shopper reads, and each line's money, rounded in one place.

Request-free. A "product" here is any row with the selling columns (SELLING_COLUMNS) and price and unit; an
order line has the same names, with the weight the producer found once it is weighed.
"""
from collections import namedtuple
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal, InvalidOperation

from fulfilment import format_money

PENNY = Decimal("0.01")
SELLING_COLUMNS = ("p.sold_by, p.measure, p.step, p.min_quantity, p.max_quantity, p.estimated_weight,"
                   " p.tolerance_percent")
LINE_COLUMNS = "oi.sold_by, oi.measure, oi.estimated_weight, oi.tolerance_percent, oi.weight, oi.line_total"

SOLD_BY = {
    "unit": "By the unit",
    "measure": "By measure (per kg, 100 g, litre or count, bought in steps)",
    "weighed": "By the item, paid by weight (per kg, each item weighed when packed)",
}

# quantity_unit: what the customer's quantity counts; per: how many of those the price is for; places: the
# decimals a quantity may have (grams of a kg, millilitres of a litre).
Measure = namedtuple("Measure", "label quantity_unit per places price_suffix")
MEASURES = {
    "kg": Measure("per kg", "kg", Decimal(1), 3, "/kg"),
    "100g": Measure("per 100 g", "g", Decimal(100), 0, " per 100 g"),
    "l": Measure("per litre", "l", Decimal(1), 3, "/litre"),
    "count": Measure("per unit of count", "", Decimal(1), 0, " each"),
}
WEIGHT_PLACES = 3
MAX_QUANTITY = Decimal("1000000")
ABSURD_WEIGHT = 100  # a weight over this many times its estimate is a slip of the finger


def round_money(amount):
    """The one rounding of money: half up, to the penny."""
    return Decimal(amount).quantize(PENNY, rounding=ROUND_HALF_UP)


def measure_of(product):
    """The product's Measure, or None when it is sold by the unit or by the item."""
    return MEASURES.get(product["measure"]) if product["sold_by"] == "measure" else None


def places(product):
    """How many decimals a quantity of the product may have."""
    measure = measure_of(product)
    return measure.places if measure else 0


def plain(number):
    """A decimal without trailing zeros: 2, 0.75, 12.5."""
    text = f"{Decimal(number):f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def quantity_unit(product):
    """What a quantity of the product counts: "kg", "g", "l", or the product's own unit ("jar", "chicken")."""
    measure = measure_of(product)
    return (measure.quantity_unit if measure else "") or product["unit"]


def quantity_text(product, quantity):
    """A quantity as a shopper reads it: "0.75 kg", "300 g", "2 × jar", "2 × whole chicken"."""
    if measure_of(product) is None:
        return f"{plain(quantity)} × {product['unit']}"
    return f"{plain(quantity)} {quantity_unit(product)}"


def how_much(product, quantity):
    """A quantity in a sentence: "2" of a thing counted, "0.75 kg" of one measured."""
    return quantity_text(product, quantity) if measure_of(product) else plain(quantity)


def amount_of(product, quantity):
    """Some of a product in a sentence: "2 × Kale", "0.75 kg of Cheddar"."""
    if measure_of(product):
        return f"{quantity_text(product, quantity)} of {product['name']}"
    return f"{plain(quantity)} × {product['name']}"


def line_text(line):
    """An order line in a plain-text email or list: "2 x Kale (bunch)", "0.75 kg Cheddar",
    "1 x Whole chicken (bird), about 1.8 kg" until weighed, then "weighed 1.93 kg"."""
    if measure_of(line):
        return f"{quantity_text(line, line['quantity'])} {line['name']}"
    text = f"{plain(line['quantity'])} x {line['name']} ({line['unit']})"
    if line["sold_by"] == "weighed":
        weight = line.get("weight")
        text += f", about {plain(estimated_weight(line))} kg" if weight is None else f", weighed {plain(weight)} kg"
    return text


def step_text(product):
    """The steps a measured product is bought in, or "" for one counted in whole units."""
    if measure_of(product) is None:
        return ""
    unit = quantity_unit(product)
    text = f"In steps of {plain(product['step'])} {unit}, at least {plain(product['min_quantity'])} {unit}"
    if product["max_quantity"] is not None:
        text += f", at most {plain(product['max_quantity'])} {unit}"
    return text + "."


def unit_price(product, price=None):
    """The price as the law asks and a shopper reads it: "£3.20 / jar", "£24.00/kg", "£1.20 per 100 g"."""
    price = price_of(product) if price is None else price
    if product["sold_by"] == "weighed":
        return f"{format_money(price)}/kg"
    measure = measure_of(product)
    if measure is None:
        return f"{format_money(price)} / {product['unit']}"
    return f"{format_money(price)}{measure.price_suffix}"


def estimate_text(product, price=None, count=1):
    """A weighed product's estimate for count items: "about 1.8 kg, about £16.20"; "" for others."""
    if product["sold_by"] != "weighed":
        return ""
    price = price_of(product) if price is None else price
    weight = product["estimated_weight"] * count
    return f"about {plain(weight)} kg, about {format_money(round_money(weight * price))}"


def tolerance_text(tolerance_percent):
    """The weighed-goods rule in one sentence."""
    return (f"You pay for the actual weight, at most {plain(tolerance_percent)}% more than estimated.")


def least_quantity(product):
    """The least a shopper can buy: one unit or item, or the measure's minimum."""
    return product["min_quantity"] if measure_of(product) else Decimal(1)


def estimated_weight(line):
    """A weighed line's estimated weight (its items times the estimate per item)."""
    return line["quantity"] * line["estimated_weight"]


def weight_cap(line):
    """The most weight a weighed line's customer pays for: the estimate plus the tolerance."""
    return estimated_weight(line) * (1 + Decimal(line["tolerance_percent"]) / 100)


def price_of(line):
    """A cart line's or product's price, or an order line's price when ordered."""
    return line["unit_price"] if "unit_price" in line else line["price"]


def line_total(line, price=None):
    """A line's money, rounded once: quantity times price per measure; for a weighed line, its actual weight
    (never more than the estimate plus tolerance) times the price per kg, or its estimate until weighed."""
    price = price_of(line) if price is None else price
    if line["sold_by"] == "weighed":
        weight = line.get("weight")
        charged = estimated_weight(line) if weight is None else min(weight, weight_cap(line))
        return round_money(charged * price)
    measure = measure_of(line)
    return round_money(line["quantity"] * price / (measure.per if measure else 1))


def most_charged(line):
    """The most a line can cost: a weighed line at its estimate plus tolerance, any other at its total."""
    if line["sold_by"] == "weighed":
        return line_total(dict(line, weight=weight_cap(line)))
    return line_total(line)


def is_estimate(line):
    """Whether a line's total is an estimate: weighed, and not weighed yet."""
    return line["sold_by"] == "weighed" and line.get("weight") is None


def parse_decimal(text):
    """A decimal typed by a person, or None: finite, plain digits with at most one point."""
    text = (text or "").strip()
    digits = text[1:] if text.startswith("-") else text
    if not digits or len(digits) > 20 or any(c not in "0123456789." for c in digits) or digits.count(".") > 1 \
            or digits == ".":
        return None
    try:
        return Decimal(text)
    except InvalidOperation:
        return None


def decimals(number):
    """How many decimals a number really has (2.50 has 1)."""
    exponent = Decimal(number).normalize().as_tuple().exponent
    return max(0, -exponent)


def quantity_problem(product, quantity):
    """Why quantity of product cannot be bought, in a sentence, or None when it can."""
    measure = measure_of(product)
    unit = quantity_unit(product)
    shown = quantity_text(product, quantity)
    if quantity <= 0:
        return "Enter a quantity above 0."
    if quantity > MAX_QUANTITY:
        return "That quantity is far more than anyone can order."
    if decimals(quantity) > places(product):
        if places(product) == 0:
            return f"{product['name']} is bought in whole numbers, not {plain(quantity)}."
        return f"{product['name']} is bought to at most {places(product)} decimals, not {plain(quantity)}."
    if measure is None:
        return None
    if quantity % product["step"] != 0:
        return f"{product['name']} is bought in steps of {plain(product['step'])} {unit}; {shown} is not one of them."
    if quantity < product["min_quantity"]:
        return f"{product['name']} is bought {plain(product['min_quantity'])} {unit} at least, not {shown}."
    if product["max_quantity"] is not None and quantity > product["max_quantity"]:
        return f"{product['name']} is bought {plain(product['max_quantity'])} {unit} at most, not {shown}."
    return None


def fit(product, wanted, available):
    """The most of wanted that can be bought with available in stock: whole steps, within the minimum and
    maximum; 0 when not even the minimum fits."""
    limit = min(wanted, available)
    if product.get("max_quantity") is not None and measure_of(product):
        limit = min(limit, product["max_quantity"])
    step = product["step"] if measure_of(product) else Decimal(1)
    fitted = (limit / step).to_integral_value(rounding=ROUND_DOWN) * step
    return fitted if fitted >= least_quantity(product) and fitted > 0 else Decimal(0)


WeightCheck = namedtuple("WeightCheck", "problem needs_confirming")


def weight_problem(line, weight, confirmed=False):
    """Whether a weight can stand for a weighed line: WeightCheck(a sentence or None, whether it only needs the
    producer to confirm it). Over the estimate plus tolerance needs confirming; the customer still pays at
    most the estimate plus tolerance."""
    estimate = estimated_weight(line)
    if weight is None or weight <= 0:
        return WeightCheck(f"Enter the weight of {line['name']} in kg, above 0.", False)
    if decimals(weight) > WEIGHT_PLACES:
        return WeightCheck(f"Enter the weight of {line['name']} to the gram (3 decimals of a kg) at most.", False)
    if weight > estimate * ABSURD_WEIGHT:
        return WeightCheck(f"{plain(weight)} kg is over {ABSURD_WEIGHT} times the estimated {plain(estimate)} kg "
                           f"of {line['name']}: check the weight.", False)
    if weight > weight_cap(line) and not confirmed:
        capped = format_money(round_money(weight_cap(line) * price_of(line)))
        return WeightCheck(
            f"{plain(weight)} kg of {line['name']} is more than {plain(line['tolerance_percent'])}% over the "
            f"estimated {plain(estimate)} kg. Confirm it to record it; the customer pays at most {capped}.", True)
    return WeightCheck(None, False)


def csv_quantities(line):
    """A line's quantity and what it counts, as spreadsheet cells: ["0.75", "kg"], ["2", "jar"]."""
    return [plain(line["quantity"]), quantity_unit(line)]


def csv_weights(line):
    """A weighed line's (or pick's) estimated and final weight in kg, as spreadsheet cells; blanks for others.
    A pick (several lines of one product) carries its own estimate, and a weight only once all are weighed."""
    if line["sold_by"] != "weighed":
        return ["", ""]
    estimate = line["estimate"] if "estimate" in line else estimated_weight(line)
    weight = line["weight"]
    return [plain(estimate), "" if weight is None else plain(weight)]


def selling_values(values):
    """A product's selling columns from its form's values, with the defaults of the way it is sold: a unit or
    weighed product is bought one at a time; a measured one from its step unless a minimum is given."""
    sold_by = values["sold_by"]
    measured = sold_by == "measure"
    step = values.get("step") if measured else None
    return {"sold_by": sold_by, "measure": values["measure"] if measured else None,
            "step": step or Decimal(1),
            "min_quantity": (values.get("min_quantity") or step) if measured else Decimal(1),
            "max_quantity": values.get("max_quantity") if measured else None,
            "estimated_weight": values.get("estimated_weight") if sold_by == "weighed" else None,
            "tolerance_percent": values.get("tolerance_percent") if values.get("tolerance_percent") is not None
            else Decimal(10)}


def selling_problems(values):
    """What is wrong with a product's selling fields, {field: sentence}; empty when they stand together."""
    rules, problems = selling_values(values), {}
    if rules["sold_by"] == "measure":
        measure = MEASURES.get(rules["measure"])
        unit = measure.quantity_unit or values.get("unit") or "units" if measure else ""
        fitting = {"step": "step", "min_quantity": "minimum", "max_quantity": "maximum"}
        if values.get("step") is None:
            problems["step"] = f"Enter the step it is bought in, in {unit}, like 0.25."
        else:
            for field, name in fitting.items():
                value = rules[field]
                if value is None:
                    continue
                if value <= 0 or value > MAX_QUANTITY:
                    problems[field] = f"Enter a {name} above 0 and below {MAX_QUANTITY:,} {unit}."
                elif decimals(value) > measure.places:
                    problems[field] = (f"A {name} in {unit} has at most {measure.places} decimals."
                                       if measure.places else f"A {name} in {unit} is a whole number.")
                elif value % rules["step"] != 0:
                    problems[field] = f"The {name} must be a whole number of steps of {plain(rules['step'])} {unit}."
            if "max_quantity" not in problems and rules["max_quantity"] is not None \
                    and rules["max_quantity"] < rules["min_quantity"]:
                problems["max_quantity"] = "The maximum cannot be below the minimum."
    if rules["sold_by"] == "weighed":
        weight = rules["estimated_weight"]
        if weight is None or not 0 < weight <= 1000:
            problems["estimated_weight"] = "Enter the weight of a typical item in kg, like 1.8."
        elif decimals(weight) > WEIGHT_PLACES:
            problems["estimated_weight"] = "Enter the weight to the gram at most, like 1.85."
    if not 0 <= rules["tolerance_percent"] <= 100 or decimals(rules["tolerance_percent"]) > 2:
        problems["tolerance_percent"] = "Enter a percentage from 0 to 100."
    return problems


def stock_problem(product, quantity):
    """Why quantity cannot be a product's stock figure, or None."""
    if decimals(quantity) > places(product):
        return (f"Stock of {product['name']} is counted in whole numbers." if places(product) == 0
                else f"Stock of {product['name']} is counted to {places(product)} decimals at most.")
    return None


def input_attributes(product, available=None):
    """The attributes of a number input for a quantity of product: its least, steps and most."""
    measured = measure_of(product) is not None
    most = [value for value in (available, product["max_quantity"] if measured else None) if value is not None]
    attributes = {"min": plain(least_quantity(product)), "step": plain(product["step"] if measured else 1),
                  "inputmode": "decimal" if places(product) else "numeric"}
    if most:
        attributes["max"] = plain(min(most))
    return attributes
