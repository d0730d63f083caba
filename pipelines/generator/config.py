"""Constants of the demo world: segments, vocabularies, rates."""

from __future__ import annotations

# Nominal purchase cadence (days between orders) of each segment. Wholesale is
# four-weekly (28) so that its clients stay inside the volume-drop judgement limit
# (expected interval <= 30 days) with per-client jitter.
SEGMENTS: dict[str, int] = {
    "horeca": 7,
    "retail": 14,
    "wholesale": 28,
    "industrial": 91,
    "public": 365,
}
SEGMENT_NAMES: tuple[str, ...] = tuple(SEGMENTS)
SEGMENT_WEIGHTS: tuple[float, ...] = (0.30, 0.30, 0.20, 0.12, 0.08)

# Segments by cadence, used to place planted behaviours where they are meaningful.
FAST_SEGMENTS = ("horeca", "retail", "wholesale")  # cadence <= 30 days
WEEKLY_BIWEEKLY = ("horeca", "retail")

INDUSTRIES: dict[str, tuple[str, ...]] = {
    "horeca": ("restaurants", "hotels", "catering", "cafes"),
    "retail": ("grocery", "convenience", "pharmacy", "specialty retail"),
    "wholesale": ("food distribution", "cash and carry", "trading"),
    "industrial": ("manufacturing", "construction", "logistics", "energy"),
    "public": ("education", "healthcare", "municipality", "defence"),
}
REGIONS = ("North", "South", "East", "West", "Central", "Coast")
TEAM_NAMES = (
    "Atlas", "Boreal", "Cobalt", "Delta", "Ember", "Fjord", "Granite", "Harbor",
    "Iris", "Juniper", "Kestrel", "Lumen", "Meridian", "Nimbus", "Orion", "Pine",
    "Quartz", "Raven", "Summit", "Tundra",
)  # fmt: skip
CATEGORIES = (
    "Beverages", "Dairy", "Bakery", "Frozen", "Cleaning", "Packaging",
    "Paper", "Tools", "Safety", "Electrical", "Office", "Snacks",
)  # fmt: skip
NAME_PREFIXES = (
    "Alder", "Brook", "Cedar", "Dover", "Elm", "Falcon", "Grove", "Hazel", "Ivy", "Jade",
    "Kings", "Lark", "Maple", "North", "Oak", "Pearl", "Quill", "Rowan", "Silver", "Thorn",
    "Upton", "Vale", "Willow", "York", "Zenith", "Amber", "Birch", "Crown", "Dawn", "Echo",
)  # fmt: skip
NAME_SUFFIXES = (
    "Trading", "Foods", "Group", "Supplies", "Partners", "Holdings", "Services",
    "Industries", "Market", "House", "Works", "Company",
)  # fmt: skip
FIRST_NAMES = (
    "Anna", "Ben", "Clara", "David", "Eva", "Felix", "Grace", "Hugo", "Ines", "Jonas",
    "Karin", "Leo", "Maria", "Nils", "Olga", "Paul", "Rosa", "Sven", "Tara", "Umar",
    "Vera", "Walter", "Yara", "Zoe", "Omar", "Lena", "Marco", "Nora", "Igor", "Elif",
)  # fmt: skip
LAST_NAMES = (
    "Adler", "Berg", "Costa", "Dietz", "Evans", "Fischer", "Garcia", "Hansen", "Ivanova",
    "Jensen", "Keller", "Lindqvist", "Meyer", "Novak", "Olsen", "Petrov", "Quinn", "Rossi",
    "Schmidt", "Tanaka", "Ulrich", "Vogel", "Weber", "Young", "Zimmer", "Moreau", "Kowalski",
)  # fmt: skip
POSITIONS = {
    "director": ("CEO", "Managing Director", "Purchasing Director", "Operations Director"),
    "head": ("Head of Purchasing", "Head of Operations", "Head of Category", "Head of Finance"),
    "specialist": ("Buyer", "Procurement Specialist", "Category Manager", "Store Manager"),
}

# Monthly value factors (Jan..Dec) of non-planted clients: Q4 peak, summer dip.
MONTH_FACTORS = (0.95, 0.95, 1.0, 1.0, 1.0, 1.0, 0.92, 0.9, 1.0, 1.12, 1.22, 1.3)

MEDIAN_ANNUAL_REVENUE = 60_000.0
PAYMENT_TERMS = (14, 30, 45, 60)
PAYMENT_TERMS_P = (0.2, 0.45, 0.2, 0.15)

# Payer types.
PAYER_ON_TIME, PAYER_SOMETIMES_LATE, PAYER_POOR, PAYER_PLANTED_LATE = 0, 1, 2, 3

# Clients generated (and written) per batch; part of the determinism contract.
BATCH_CLIENTS = 1000
