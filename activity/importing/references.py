"""Find, or create, the rows that imported records point at.

Each lookup loads the organisation's rows of one table in one query and
creates the missing ones with one bulk insert. Names compare in lowercase,
products by ``Product.key_for``. Run these inside the import's transaction
and the organisation's tenant context.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from activity.importing.bulk import BATCH_SIZE
from activity.importing.fields import LOST_STAGE_NAMES, WON_STAGE_NAMES
from activity.models import Account, Pipeline, Product, Stage
from spm.models import Membership, Organization, Team

DEFAULT_PIPELINE_NAME = "Sales"
SOURCE = "csv"


@dataclass
class Counts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "skipped": self.skipped,
        }


class References:
    """Lookups shared by the upserts of one job, with the counts of rows created."""

    def __init__(self, organization: Organization, counts: dict[str, Counts]):
        self.organization = organization
        self.org_id = organization.pk
        self.counts = counts

    def pipelines(self, names: Iterable[str | None]) -> dict[str, Pipeline]:
        """Return pipelines by lowercase name, with "" for the default pipeline.

        Without a default pipeline, the one named "Sales" becomes the default,
        or is created.
        """
        pipelines = {p.name.lower(): p for p in Pipeline.objects.order_by("id")}
        requested = {(name or "").strip() for name in names}
        if "" in requested:
            pipelines[""] = self._default_pipeline(pipelines)
        for name in sorted(requested - {""}):
            if name.lower() not in pipelines:
                pipelines[name.lower()] = Pipeline.objects.create(
                    organization=self.organization, name=name, external_source=SOURCE
                )
        return pipelines

    def _default_pipeline(self, pipelines: dict[str, Pipeline]) -> Pipeline:
        default = next((p for p in pipelines.values() if p.is_default), None)
        if default is not None:
            return default
        default = pipelines.get(DEFAULT_PIPELINE_NAME.lower())
        if default is not None:
            default.is_default = True
            default.save(update_fields=["is_default"])
            return default
        default = Pipeline.objects.create(
            organization=self.organization, name=DEFAULT_PIPELINE_NAME, is_default=True
        )
        pipelines[default.name.lower()] = default
        return default

    def stages(
        self, requested: dict[tuple[int, str], str]
    ) -> dict[tuple[int, str], int]:
        """Return stage ids by (pipeline id, lowercase name), creating missing stages.

        ``requested`` maps each key to the name as first written in the file, in
        file order. New open stages come after the pipeline's existing stages,
        then new won and lost stages.
        """
        ids: dict[tuple[int, str], int] = {}
        last_order: dict[int, int] = {}
        for stage in Stage.objects.order_by("order", "id"):
            ids.setdefault((stage.pipeline_id, stage.name.lower()), stage.pk)
            last_order[stage.pipeline_id] = max(
                stage.order, last_order.get(stage.pipeline_id, 0)
            )

        missing = [key for key in requested if key not in ids]
        missing.sort(key=lambda key: key[1] in WON_STAGE_NAMES | LOST_STAGE_NAMES)
        new = []
        for pipeline_id, name in missing:
            last_order[pipeline_id] = last_order.get(pipeline_id, 0) + 1
            new.append(self._new_stage(pipeline_id, requested[(pipeline_id, name)]))
            new[-1].order = last_order[pipeline_id]
        Stage.objects.bulk_create(new)
        ids.update({(stage.pipeline_id, stage.name.lower()): stage.pk for stage in new})
        return ids

    def _new_stage(self, pipeline_id: int, name: str) -> Stage:
        won = name.lower() in WON_STAGE_NAMES
        lost = name.lower() in LOST_STAGE_NAMES
        return Stage(
            organization_id=self.org_id,
            pipeline_id=pipeline_id,
            name=name,
            probability=Decimal(1) if won else Decimal(0),
            is_closed=won or lost,
            is_won=won,
            external_source=SOURCE,
        )

    def teams(self, names: Iterable[str]) -> dict[str, Team]:
        """Return teams by lowercase name, creating the missing ones."""
        teams = {team.name.lower(): team for team in Team.objects.order_by("id")}
        new = {}
        for name in names:
            if name.lower() not in teams and name.lower() not in new:
                new[name.lower()] = Team(organization_id=self.org_id, name=name)
        Team.objects.bulk_create(new.values())
        return teams | new

    def account_ids(self, names: Iterable[str]) -> dict[str, int]:
        """Return account ids by lowercase name, creating the missing accounts."""
        ids: dict[str, int] = {}
        for pk, name in Account.objects.order_by("id").values_list("id", "name"):
            ids.setdefault(name.lower(), pk)
        new = {}
        for name in names:
            if name.lower() not in ids and name.lower() not in new:
                new[name.lower()] = Account(
                    organization_id=self.org_id, name=name, external_source=SOURCE
                )
        Account.objects.bulk_create(new.values(), batch_size=BATCH_SIZE)
        self.counts["accounts"].created += len(new)
        return ids | {key: account.pk for key, account in new.items()}

    def product_ids(self, names: Iterable[str]) -> dict[str, int]:
        """Return product ids by ``Product.key_for(name)``, creating missing ones."""
        ids = dict(Product.objects.values_list("match_key", "id"))
        new = {}
        for name in names:
            key = Product.key_for(name)
            if key not in ids and key not in new:
                new[key] = Product(
                    organization_id=self.org_id,
                    name=name,
                    match_key=key,
                    external_source=SOURCE,
                )
        Product.objects.bulk_create(new.values(), batch_size=BATCH_SIZE)
        self.counts["products"].created += len(new)
        return ids | {key: product.pk for key, product in new.items()}

    def member_ids(self, people: Iterable[str]) -> dict[str, int]:
        """Return member ids by lowercase email or name, creating missing members.

        A value with "@" is an email address, matched by email and then by
        display name. A member created here is a rep with no login.
        """
        by_email: dict[str, int] = {}
        by_name: dict[str, int] = {}
        rows = Membership.objects.order_by("id").values_list(
            "id", "email", "display_name"
        )
        for pk, email, name in rows:
            if email:
                by_email.setdefault(email.lower(), pk)
            by_name.setdefault(name.lower(), pk)

        ids: dict[str, int] = {}
        new: dict[str, Membership] = {}
        for person in people:
            key = person.lower()
            found = by_email.get(key) if "@" in key else None
            found = found or by_name.get(key)
            if found is not None:
                ids[key] = found
            elif key not in new:
                new[key] = self.new_member(person)
        Membership.objects.bulk_create(new.values())
        self.counts["members"].created += len(new)
        return ids | {key: member.pk for key, member in new.items()}

    def new_member(self, person: str, role: str = Membership.Role.REP) -> Membership:
        """Return an unsaved member with no login, named by email or display name."""
        return Membership(
            organization_id=self.org_id,
            display_name=person,
            email=person.lower() if "@" in person else "",
            role=role,
            external_source=SOURCE,
        )
