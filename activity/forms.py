from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django import forms

from activity.importing.fields import KINDS, field_choice, split_choice
from activity.models import ImportFile, ImportPreset


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """A file field that accepts several files and cleans to a list of them."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None) -> list:
        items = data if isinstance(data, list | tuple) else [data]
        return [self._clean_one(item, initial) for item in items]

    def _clean_one(self, item, initial):
        try:
            return super().clean(item, initial)
        except forms.ValidationError as error:
            if error.code == "empty":
                raise forms.ValidationError(
                    f"{item.name} is empty: export the file again, with a header "
                    "row and at least one data row.",
                    code="empty",
                ) from error
            raise


class ImportUploadForm(forms.Form):
    files = MultipleFileField(
        help_text="One or more CSV files: deals, members, accounts or products."
    )
    preset = forms.ChoiceField(
        required=False,
        help_text="Maps the columns of known exports. Without a preset, columns "
        "are matched by header name.",
    )

    def __init__(self, *args, presets: Sequence[str] = (), **kwargs) -> None:
        super().__init__(*args, **kwargs)
        choices = [("", "None: match columns by header name")]
        self.fields["preset"].choices = choices + [(name, name) for name in presets]


def _target_choices() -> list:
    choices: list[Any] = [("", "(not imported)")]
    for kind in KINDS.values():
        group = [(field_choice(kind.key, f.key), f.label) for f in kind.fields]
        choices.append((kind.label, group))
    return choices


class ImportMappingForm(forms.Form):
    """One select of target fields per column of each file, and a preset name."""

    save_preset_as = forms.CharField(
        required=False,
        max_length=ImportPreset._meta.get_field("name").max_length,
        label="Save this mapping as a preset named",
        help_text="Optional. A preset with the same name is replaced.",
    )

    def __init__(self, *args, files: Sequence[ImportFile], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.import_files = list(files)
        choices = _target_choices()
        for import_file in self.import_files:
            for index, header in enumerate(import_file.header):
                target = import_file.mapping[index] if import_file.kind else ""
                self.fields[self.field_name(import_file, index)] = forms.ChoiceField(
                    label=header or f"Column {index + 1}",
                    choices=choices,
                    required=False,
                    initial=field_choice(import_file.kind, target) if target else "",
                )

    @staticmethod
    def field_name(import_file: ImportFile, index: int) -> str:
        return f"file{import_file.pk}_column{index}"

    def file_rows(self) -> list[tuple[ImportFile, list[forms.BoundField]]]:
        """Return each file with the bound select of each of its columns."""
        return [
            (
                import_file,
                [
                    self[self.field_name(import_file, index)]
                    for index in range(len(import_file.header))
                ],
            )
            for import_file in self.import_files
        ]

    def clean(self) -> dict:
        cleaned = super().clean()
        self.mappings: dict[int, tuple[str, list[str]]] = {}
        for import_file in self.import_files:
            self.mappings[import_file.pk] = self._clean_file(import_file, cleaned)
        return cleaned

    def _clean_file(self, import_file: ImportFile, cleaned: dict):
        values = [
            cleaned.get(self.field_name(import_file, index)) or ""
            for index in range(len(import_file.header))
        ]
        pairs = [split_choice(value) if value else ("", "") for value in values]
        kinds = {kind for kind, _ in pairs if kind}
        if len(kinds) > 1:
            labels = " and ".join(sorted(KINDS[kind].label.lower() for kind in kinds))
            self.add_error(
                None,
                f"{import_file.name}: the columns are mapped to fields of {labels}. "
                "Map one file to one kind of record.",
            )
        fields = [field for _, field in pairs]
        repeated = sorted({f for f in fields if f and fields.count(f) > 1})
        if repeated:
            self.add_error(
                None,
                f"{import_file.name}: several columns are mapped to "
                f"{', '.join(repeated)}. Map each field from one column.",
            )
        kind = kinds.pop() if len(kinds) == 1 else ""
        return kind, fields
