"""Fixed lists the generator draws from: names, stages, products, places.

Changing any list changes what a given seed generates, so the demo and the
benchmark tenant look different after an edit here.
"""

from __future__ import annotations

from decimal import Decimal

FIRST_NAMES = [
    "Aisha", "Alejandro", "Amara", "Andre", "Anika", "Ben", "Bianca", "Caleb",
    "Camila", "Chen", "Chloe", "Daniel", "Diego", "Elena", "Elif", "Emeka",
    "Farah", "Felix", "Grace", "Hannah", "Hiro", "Imani", "Isaac", "Jada",
    "Jonas", "Julia", "Kai", "Keisha", "Lars", "Leah", "Liam", "Lucia",
    "Malik", "Maya", "Mateo", "Mei", "Nadia", "Nikhil", "Noah", "Olivia",
    "Omar", "Priya", "Rafael", "Rosa", "Samir", "Sara", "Sean", "Sofia",
    "Tariq", "Tessa", "Theo", "Uma", "Victor", "Wen", "Yara", "Yusuf",
    "Zane", "Zoe", "Marcus", "Ingrid",
]  # fmt: skip

LAST_NAMES = [
    "Abbott", "Adeyemi", "Alvarez", "Bauer", "Bennett", "Brooks", "Castillo",
    "Chandra", "Cohen", "Dalton", "Diaz", "Eriksen", "Farouk", "Fischer",
    "Garcia", "Gupta", "Hale", "Hoffman", "Ibrahim", "Jensen", "Kim",
    "Kowalski", "Larsen", "Lopez", "Mbeki", "Mendez", "Moreau", "Nakamura",
    "Novak", "Okafor", "Olsen", "Park", "Patel", "Quinn", "Reyes", "Rossi",
    "Santos", "Schmidt", "Silva", "Singh", "Sorensen", "Sullivan", "Tanaka",
    "Torres", "Turner", "Vasquez", "Walsh", "Weber", "Whitaker", "Wong",
    "Yamada", "Yilmaz", "Young", "Zhang", "Ziegler", "Murphy", "Lindqvist",
    "Haddad", "Osei", "Ferreira",
]  # fmt: skip

TEAM_NAMES = [
    "East", "West", "Central", "North", "South", "Pacific", "Mountain",
    "Atlantic", "Gulf", "Midwest", "Northeast", "Southwest",
]  # fmt: skip

# (name, probability, is_closed, is_won), in pipeline order.
STAGES = [
    ("Prospecting", Decimal("0.1"), False, False),
    ("Qualification", Decimal("0.2"), False, False),
    ("Demo", Decimal("0.4"), False, False),
    ("Proposal", Decimal("0.6"), False, False),
    ("Negotiation", Decimal("0.8"), False, False),
    ("Closed Won", Decimal("1"), True, True),
    ("Closed Lost", Decimal("0"), True, False),
]
OPEN_STAGE_COUNT = 5
WON_STAGE = 5
LOST_STAGE = 6

# (name, family, list price, segments that buy it).
PRODUCTS = [
    ("Starter Seats", "Seats", Decimal("480.00"), ("smb",)),
    ("Professional Seats", "Seats", Decimal("1200.00"), ("smb", "mid")),
    ("Data Connector", "Add-ons", Decimal("3600.00"), ("smb", "mid")),
    ("Analytics Add-on", "Add-ons", Decimal("9600.00"), ("mid",)),
    ("Premium Support", "Services", Decimal("18000.00"), ("mid", "enterprise")),
    ("Implementation Services", "Services", Decimal("25000.00"), ("enterprise",)),
    ("Enterprise Platform", "Platform", Decimal("48000.00"), ("enterprise",)),
]

# Segment by account head count: (name, employees below which it applies).
SEGMENT_LIMITS = [("smb", 200), ("mid", 2000), ("enterprise", None)]

INDUSTRIES = [
    "Software", "Manufacturing", "Healthcare", "Financial Services", "Retail",
    "Logistics", "Education", "Energy", "Telecommunications", "Media",
    "Construction", "Hospitality",
]  # fmt: skip

# (country, relative weight) for accounts and leads.
COUNTRIES = [
    ("United States", 55), ("Canada", 8), ("United Kingdom", 9), ("Germany", 6),
    ("France", 4), ("Netherlands", 3), ("Australia", 4), ("Brazil", 3),
    ("India", 4), ("Japan", 2), ("Mexico", 2),
]  # fmt: skip

# Company names are a prefix and a root joined, then a suffix word.
COMPANY_PREFIXES = [
    "Blue", "Bright", "Cedar", "Clear", "Copper", "Crest", "Delta", "Eagle",
    "Ever", "Falcon", "First", "Granite", "Green", "Harbor", "High", "Iron",
    "Keystone", "Lake", "Lumen", "Maple", "Meridian", "North", "Nova", "Oak",
    "Omni", "Peak", "Pine", "Prime", "Quantum", "Red", "River", "Silver",
    "Sky", "Stone", "Summit", "Sun", "True", "Vertex", "West", "Zen",
]  # fmt: skip
COMPANY_ROOTS = [
    "bridge", "field", "gate", "line", "point", "path", "works", "core",
    "wave", "stack", "forge", "light", "view", "shore", "ridge", "grid",
    "leaf", "mark", "port", "scale", "signal", "stream", "tech", "vale",
    "well", "wind", "logic", "cloud", "bay", "haven",
]  # fmt: skip
COMPANY_SUFFIXES = [
    "Systems", "Labs", "Group", "Industries", "Health", "Logistics",
    "Partners", "Holdings", "Networks", "Foods", "Energy", "Analytics",
]  # fmt: skip

CONTACT_TITLES = [
    "VP Sales", "Head of Operations", "CFO", "IT Director", "Procurement Manager",
    "Chief Revenue Officer", "Operations Manager", "Sales Operations Lead",
    "CTO", "Finance Director",
]  # fmt: skip

# (lead source, relative weight).
LEAD_SOURCES = [
    ("Web form", 30), ("Webinar", 12), ("Referral", 10), ("Paid search", 18),
    ("Partner", 8), ("Event", 7), ("Content download", 15),
]  # fmt: skip

# Activity type weights: on a deal, prospecting an account, working a lead.
DEAL_ACTIVITY_WEIGHTS = {"call": 30, "email": 35, "meeting": 20, "note": 10, "task": 5}
PROSPECTING_ACTIVITY_WEIGHTS = {"call": 50, "email": 40, "task": 10}
LEAD_FOLLOW_UP_WEIGHTS = {"call": 45, "email": 45, "meeting": 10}

SUBJECTS = {
    "call": ["Discovery call", "Follow-up call", "Pricing call", "Check-in call"],
    "email": ["Sent proposal", "Follow-up email", "Shared case study", "Intro email"],
    "meeting": ["Product demo", "Onsite meeting", "Executive review", "Kickoff"],
    "note": ["Call notes", "Competitive note", "Budget confirmed", "Next steps"],
    "task": ["Send contract", "Prepare quote", "Book demo", "Update forecast"],
}
