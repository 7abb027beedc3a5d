"""Built-in word lists and text generators for the synthetic documents.

Everything is generated from small in-code lists so the sample data needs no
external files; every generator takes the document's ``np.random.Generator``
so output stays deterministic.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import numpy as np

T = TypeVar("T")

FIRST_NAMES = (
    "Anna", "James", "Maria", "Lukas", "Sofia", "Oliver", "Emma", "Noah", "Chloe", "Mateo",
    "Hannah", "David", "Elena", "Samuel", "Laura", "Daniel", "Julia", "Peter", "Clara", "Jonas",
)
LAST_NAMES = (
    "Smith", "Novak", "Garcia", "Muller", "Rossi", "Jensen", "Kowalski", "Dubois", "Brown",
    "Silva", "Larsen", "Fischer", "Martin", "Weber", "Moreau", "Berg", "Clarke", "Varga",
)
STREET_NAMES = (
    "Baker", "Maple", "Harbour", "Station", "Mill", "Church", "Victoria", "Oak", "Bridge",
    "Market", "Park", "River", "King", "Garden", "Elm", "Castle",
)
STREET_TYPES = ("Street", "Road", "Avenue", "Lane", "Way", "Drive", "Place", "Square")
CITIES = (
    "Springfield", "Riverton", "Lakeside", "Fairview", "Westbrook", "Northgate", "Ashford",
    "Kingsport", "Milton", "Bayview", "Oakridge", "Greenfield",
)
COMPANY_WORDS = (
    "Nordic", "Blue", "Summit", "Apex", "Green", "Silver", "Harbor", "Pioneer", "Bright",
    "Metro", "Atlas", "Crown", "Vertex", "Coastal", "Prime", "Golden",
)
COMPANY_KINDS = (
    "Trading", "Foods", "Logistics", "Consulting", "Systems", "Supplies", "Studio",
    "Engineering", "Media", "Holdings", "Energy", "Partners",
)
COMPANY_SUFFIXES = ("Ltd", "Inc.", "GmbH", "LLC", "& Co.", "S.A.", "Group")
SHOP_NAMES = (
    "FRESHMART", "QUICKSTOP", "CITY MARKET", "GREEN GROCER", "CAFE LUNA", "BAKERY ROSE",
    "MEGA STORE", "CORNER SHOP", "SUPERSAVE", "DAILY FRESH", "PHARMA PLUS", "BOOK NOOK",
)
GROCERY_ITEMS = (
    "MILK 1L", "WHOLE WHEAT BREAD", "EGGS FREE RANGE 6", "BANANAS", "APPLES GALA", "BUTTER 250G",
    "CHEDDAR CHEESE", "ORANGE JUICE", "COFFEE BEANS", "GREEN TEA", "PASTA PENNE", "RICE BASMATI",
    "TOMATOES", "OLIVE OIL", "CHICKEN BREAST", "YOGURT NATURAL", "CHOCOLATE BAR", "WATER 1.5L",
    "DISH SOAP", "PAPER TOWELS", "SHAMPOO", "TOOTHPASTE", "CEREAL OATS", "HONEY", "SALMON FILLET",
    "POTATOES 2KG", "ONIONS", "CROISSANT", "CAPPUCCINO", "SPARKLING WATER", "BATTERIES AA",
)
SERVICES = (
    "Consulting services", "Web hosting (annual)", "Software license", "Installation and setup",
    "Maintenance contract", "Design revisions", "Office chairs", "Laptop stand", "Printer toner",
    "Training workshop", "Travel expenses", "Cloud storage 1TB", "Support hours", "Shipping",
    "Network cabling", "Data migration", "Monitor 27 inch", "Project management",
)
LETTER_SENTENCES = (
    "Thank you for your letter regarding the renewal of our service agreement.",
    "We are pleased to confirm that your application has been approved.",
    "Please find enclosed the documents requested during our meeting last week.",
    "Our records show that the outstanding balance was settled on time.",
    "The new terms will take effect from the first day of next month.",
    "Should you have any questions, please do not hesitate to contact our office.",
    "We would appreciate it if you could return the signed copy at your earliest convenience.",
    "As discussed, the delivery schedule has been adjusted to meet your requirements.",
    "Our team has reviewed the proposal and found it consistent with the project goals.",
    "The annual inspection is planned for the second week of the quarter.",
    "We apologise for any inconvenience caused by the delay in processing your request.",
    "A detailed summary of the costs is attached to this letter for your reference.",
    "The committee will meet again to discuss the remaining points in detail.",
    "We look forward to continuing our successful cooperation in the coming year.",
    "Kindly note that the reference number must be quoted in all correspondence.",
    "Payment can be made by bank transfer to the account listed below.",
    "Following your request, we have updated the contact details in our system.",
    "The revised price list will apply to all orders placed after this date.",
    "We confirm receipt of your payment and thank you for settling the account promptly.",
    "Our representative will call you next week to arrange a convenient appointment.",
    "Please check the enclosed statement and inform us of any discrepancies within fourteen days.",
    "Unfortunately we are unable to accept the goods returned without the original receipt.",
    "The warranty covers parts and labour for a period of two years from delivery.",
    "We have forwarded your complaint to the department responsible for quality control.",
    "Access to the building will be restricted during the renovation works.",
    "Your membership has been extended until the end of the current calendar year.",
)
REPORT_TITLES = (
    "Quarterly Sales Report", "Inventory Summary", "Regional Performance Overview",
    "Monthly Expense Report", "Production Statistics", "Budget vs Actual Analysis",
    "Warehouse Stock Levels", "Customer Orders by Region",
)
REPORT_ROW_LABELS = (
    "North", "South", "East", "West", "Central", "Online", "Retail", "Wholesale", "Export",
    "Hardware", "Software", "Services", "Spare parts", "Accessories", "Licensing", "Support",
)
REPORT_COLUMNS = (
    "Jan", "Feb", "Mar", "Q1", "Units", "Revenue", "Cost", "Margin %", "YoY %", "Budget",
    "Variance", "Orders", "Returns", "Stock", "Avg price",
)
CAPITAL_WORDS = ("REPUBLIC", "KINGDOM", "FEDERATION", "STATE", "UNION")
COUNTRY_NAMES = ("ARDENIA", "VALORIA", "NORVANIA", "ESTELLIA", "CARDOVA", "MIRELAND")
MONTH_ABBREVIATIONS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")


def pick(rng: np.random.Generator, options: Sequence[T]) -> T:
    """Pick one option uniformly.

    Args:
        rng: the document's random generator.
        options: non-empty sequence.

    Returns:
        One element of ``options``.
    """
    return options[int(rng.integers(len(options)))]


def person_name(rng: np.random.Generator) -> str:
    """Return a "First Last" person name."""
    return f"{pick(rng, FIRST_NAMES)} {pick(rng, LAST_NAMES)}"


def company_name(rng: np.random.Generator) -> str:
    """Return a company name such as "Nordic Foods Ltd"."""
    return f"{pick(rng, COMPANY_WORDS)} {pick(rng, COMPANY_KINDS)} {pick(rng, COMPANY_SUFFIXES)}"


def street_address(rng: np.random.Generator) -> str:
    """Return a street address such as "42 Baker Street"."""
    return f"{int(rng.integers(1, 240))} {pick(rng, STREET_NAMES)} {pick(rng, STREET_TYPES)}"


def city_line(rng: np.random.Generator) -> str:
    """Return a postcode and city such as "40213 Riverton"."""
    return f"{int(rng.integers(10000, 99999))} {pick(rng, CITIES)}"


def phone_number(rng: np.random.Generator) -> str:
    """Return a phone number in international format."""
    digits = rng.integers(0, 10, size=10)
    return "+{} {}{} {}{}{}{} {}{}{}{}".format(int(rng.integers(1, 50)), *digits)


def email_address(rng: np.random.Generator) -> str:
    """Return an e-mail address built from a name and company word."""
    first, last = pick(rng, FIRST_NAMES).lower(), pick(rng, LAST_NAMES).lower()
    return f"{first[0]}.{last}@{pick(rng, COMPANY_WORDS).lower()}-{pick(rng, COMPANY_KINDS).lower()}.com"


def money(value: float, thousands: bool = False) -> str:
    """Format an amount with two decimals.

    Args:
        value: the amount.
        thousands: whether to group thousands with commas (1,234.50).

    Returns:
        The formatted amount.
    """
    return f"{value:,.2f}" if thousands else f"{value:.2f}"


def price(rng: np.random.Generator, low: float, high: float) -> float:
    """Draw a price rounded to cents, log-uniform so small prices dominate.

    Args:
        rng: the document's random generator.
        low: smallest price (> 0).
        high: largest price.

    Returns:
        The price.
    """
    return round(float(np.exp(rng.uniform(np.log(low), np.log(high)))), 2)


def date_text(rng: np.random.Generator) -> str:
    """Return a date in one of several common formats (2024-03-17, 17/03/2024, ...)."""
    year, month, day = int(rng.integers(2018, 2026)), int(rng.integers(1, 13)), int(rng.integers(1, 29))
    formats = (
        f"{year}-{month:02d}-{day:02d}",
        f"{day:02d}/{month:02d}/{year}",
        f"{day:02d}.{month:02d}.{year}",
        f"{month:02d}/{day:02d}/{year % 100:02d}",
        f"{day:02d} {MONTH_ABBREVIATIONS[month - 1]} {year}",
    )
    return formats[int(rng.integers(len(formats)))]


def time_text(rng: np.random.Generator) -> str:
    """Return a 24-hour time, with seconds half of the time."""
    hour, minute, second = int(rng.integers(6, 23)), int(rng.integers(60)), int(rng.integers(60))
    return f"{hour:02d}:{minute:02d}:{second:02d}" if rng.random() < 0.5 else f"{hour:02d}:{minute:02d}"


def reference_code(rng: np.random.Generator, prefix: str) -> str:
    """Return a document code such as "INV-2024-00417".

    Args:
        rng: the document's random generator.
        prefix: leading letters of the code.

    Returns:
        The code.
    """
    return f"{prefix}-{int(rng.integers(2018, 2026))}-{int(rng.integers(0, 100000)):05d}"


def alphanumeric(rng: np.random.Generator, length: int) -> str:
    """Return an upper-case alphanumeric string of ``length`` characters."""
    alphabet = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"
    return "".join(alphabet[i] for i in rng.integers(0, len(alphabet), size=length))
