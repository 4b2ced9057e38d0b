"""Mapping presets, and the guess of a file's kind and mapping from its header.

A preset maps each record kind to ``{normalised header: target field}``.
Built-in presets are defined here, and an organisation's own presets are
ImportPreset rows.
"""

from __future__ import annotations

from activity.importing.fields import KINDS, normalise_header
from activity.models import ImportPreset

# The four tables of the Maven Analytics "CRM + Sales + Opportunities" data
# set. Its revenue column is in millions of USD.
MAVEN = {
    "deals": {
        "opportunity_id": "external_id",
        "sales_agent": "owner",
        "product": "product",
        "account": "account",
        "deal_stage": "stage",
        "engage_date": "created_on",
        "close_date": "close_date",
        "close_value": "amount",
    },
    "members": {
        "sales_agent": "name",
        "manager": "manager",
        "regional_office": "team",
    },
    "accounts": {
        "account": "name",
        "sector": "industry",
        "year_established": "year_established",
        "revenue": "annual_revenue_millions",
        "employees": "employees",
        "office_location": "country",
        "subsidiary_of": "parent",
    },
    "products": {
        "product": "name",
        "series": "family",
        "sales_price": "list_price",
    },
}

BUILTIN_PRESETS: dict[str, dict[str, dict[str, str]]] = {"maven": MAVEN}

Preset = dict[str, dict[str, str]]


class PresetNotFound(LookupError):
    pass


def preset_names() -> list[str]:
    """Return the names of the current organisation's presets, built-ins first."""
    saved = ImportPreset.objects.order_by("name").values_list("name", flat=True)
    return [*BUILTIN_PRESETS, *saved]


def preset_get(name: str) -> Preset:
    """Return the mapping of a built-in or saved preset, or raise PresetNotFound."""
    if name in BUILTIN_PRESETS:
        return BUILTIN_PRESETS[name]
    preset = ImportPreset.objects.filter(name__iexact=name).first()
    if preset is None:
        raise PresetNotFound(f'No import preset is named "{name}".')
    return preset.mapping


def _alias_preset() -> Preset:
    """Return the mapping that header names alone give, with no preset."""
    mapping: Preset = {}
    for kind in KINDS.values():
        mapping[kind.key] = {
            alias: field.key for field in kind.fields for alias in field.aliases
        }
    return mapping


def _best_kind(names: list[str], preset: Preset) -> str:
    scores = {
        kind: sum(name in columns for name in names)
        for kind, columns in preset.items()
        if kind in KINDS
    }
    best = max(scores, key=lambda kind: scores[kind], default="")
    return best if scores.get(best) else ""


def guess_mapping(header: list[str], preset: Preset | None) -> tuple[str, list[str]]:
    """Return the kind of a file and the target field of each of its columns.

    The kind is the one whose preset columns match the most header names.
    Without a preset, or when none of its columns match, header names are
    compared with each field's usual names. A field goes to the first
    column that names it. The kind is "" when no column matches.
    """
    names = [normalise_header(cell) for cell in header]
    kind = _best_kind(names, preset) if preset else ""
    columns = preset.get(kind, {}) if kind else {}
    if not kind:
        aliases = _alias_preset()
        kind = _best_kind(names, aliases)
        columns = aliases.get(kind, {})

    mapping: list[str] = []
    for name in names:
        field = columns.get(name, "")
        mapping.append("" if field in mapping else field)
    return kind, mapping


def preset_from_files(files) -> Preset:
    """Return the preset that reproduces the mapping of ``files``."""
    preset: Preset = {}
    for import_file in files:
        if not import_file.kind:
            continue
        columns = preset.setdefault(import_file.kind, {})
        for cell, field in zip(import_file.header, import_file.mapping, strict=False):
            if field:
                columns[normalise_header(cell)] = field
    return preset
