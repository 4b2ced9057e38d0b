"""What an import writes: parsed values, matching, re-import and stage history."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from activity.models import (
    Account,
    Deal,
    DealProduct,
    DealStageChange,
    ImportJob,
    Pipeline,
    Product,
    Stage,
)
from spm.models import AuditLog, Membership, Organization, Team
from spm.services import organization_create
from spm.tenancy import tenant_context
from tests.activity.conftest import fixture_bytes, import_fixtures, run_import

Status = ImportJob.Status


def _deal(org, external_id: str) -> Deal:
    with tenant_context(org):
        return Deal.objects.select_related("stage", "owner", "account").get(
            external_id=external_id
        )


def test_quirky_deals_file_values(org, personas):
    job = import_fixtures(org, "deals_bom_crlf.csv")
    assert job.status == Status.DONE
    assert job.counts["deals"]["created"] == 4

    won = _deal(org, "Q1")
    assert won.amount == Decimal("1054")
    assert won.close_date == dt.date(2017, 3, 1)
    assert won.created_on == dt.date(2016, 10, 20)
    assert won.stage == personas.stages["Won"]
    assert won.owner == personas.rep1
    assert won.account.name == "Cancity"
    assert won.currency == "USD"
    assert won.external_source == "csv"

    lost = _deal(org, "Q2")
    assert lost.created_on == dt.date(2016, 10, 25)
    assert lost.amount == Decimal("0")

    open_deal = _deal(org, "Q3")
    assert open_deal.close_date is None
    assert open_deal.amount is None
    assert open_deal.account is None


def test_unknown_owner_becomes_rep_without_login(org):
    import_fixtures(org, "deals_bom_crlf.csv")
    nina = _deal(org, "Q4").owner
    assert nina.display_name == "Nina New"
    assert nina.user is None
    assert nina.role == Membership.Role.REP


def test_semicolon_file_amounts_in_euro_organisation(org):
    Organization.objects.filter(pk=org.pk).update(currency="EUR")
    org.refresh_from_db()
    job = import_fixtures(org, "deals_semicolon.csv")
    assert (_deal(org, "S1").amount, _deal(org, "S1").currency) == (
        Decimal("1054.50"),
        "EUR",
    )
    assert (_deal(org, "S2").amount, _deal(org, "S2").currency) == (
        Decimal("1054.50"),
        "EUR",
    )
    assert _deal(org, "S1").name == "Big deal"
    # S3 names USD in its currency column, which a EUR organisation refuses.
    assert [(e["line"], e["column"], e["value"]) for e in job.errors] == [
        (4, "currency", "usd")
    ]


def test_foreign_currency_deals_are_refused(org):
    job = import_fixtures(org, "deals_semicolon.csv")
    errors = [(e["line"], e["column"], e["value"]) for e in job.errors]
    assert errors == [(2, "amount", "€1.054,50"), (3, "currency", "EUR")]
    assert "does not convert currencies" in job.errors[0]["message"]
    assert (_deal(org, "S3").amount, _deal(org, "S3").currency) == (
        Decimal("1054.50"),
        "USD",
    )
    with tenant_context(org):
        assert not Deal.objects.filter(external_id__in=["S1", "S2"]).exists()


def test_tab_file_values(org):
    import_fixtures(org, "deals_tab.tsv")
    assert _deal(org, "T1").amount == Decimal("1054.50")
    assert _deal(org, "T2").amount == Decimal("1054")
    assert _deal(org, "T2").close_date == dt.date(2017, 12, 31)


def test_owner_matched_by_email(org, personas):
    with tenant_context(org):
        Membership.objects.filter(pk=personas.rep2.pk).update(email="rob@acme.test")
    content = b"external_id,owner,stage\nE1,ROB@acme.test,Engaging\n"
    run_import(org, {"deals.csv": content})
    assert _deal(org, "E1").owner == personas.rep2


def test_cp1252_accounts_with_parent(org):
    job = import_fixtures(org, "accounts_cp1252.csv")
    assert job.counts["accounts"]["created"] == 2
    with tenant_context(org):
        societe = Account.objects.get(name="Société Générale")
        cafe = Account.objects.get(name__iexact="café müller")
    assert societe.annual_revenue == Decimal("1100.00")
    assert societe.employees == 2822
    assert societe.year_established == 1864
    assert societe.industry == "finance"
    assert societe.country == "France"
    assert societe.parent is None
    assert cafe.country == "Österreich"
    assert cafe.parent == societe


def test_maven_revenue_is_in_millions(org):
    content = b"account,sector,revenue\nAcme Corporation,technolgy,1100.04\n"
    run_import(org, {"accounts.csv": content}, preset="maven")
    with tenant_context(org):
        account = Account.objects.get(name="Acme Corporation")
    assert account.annual_revenue == Decimal("1100040000.00")


def test_products_match_by_key(org):
    job = import_fixtures(org, "products.csv", "deals_bom_crlf.csv")
    # GTX Pro and GTX Basic from the products file, and MG Special, named only
    # in the deals file. "GTXPro" in the deals file is GTX Pro.
    assert job.counts["products"] == {
        "created": 3,
        "updated": 0,
        "unchanged": 0,
        "skipped": 0,
    }
    with tenant_context(org):
        assert Product.objects.count() == 3
        gtx_pro = Product.objects.get(name="GTX Pro")
        line = DealProduct.objects.get(deal__external_id="Q1")
    assert gtx_pro.list_price == Decimal("4821")
    assert gtx_pro.family == "GTX"
    assert line.product == gtx_pro
    assert line.quantity == Decimal("1")
    assert line.amount == Decimal("1054")


def test_sales_team_builds_reporting_tree(org, personas):
    job = import_fixtures(org, "sales_teams.csv")
    # Nina New, Ned New and their manager Mona Manager are new. Rita Rep
    # already reports to Max Manager in East.
    assert job.counts["members"] == {
        "created": 3,
        "updated": 0,
        "unchanged": 1,
        "skipped": 0,
    }
    with tenant_context(org):
        mona = Membership.objects.get(display_name="Mona Manager")
        nina = Membership.objects.get(display_name="Nina New")
        ned = Membership.objects.get(display_name="Ned New")
        central = Team.objects.get(name="Central")
    assert mona.role == Membership.Role.MANAGER
    assert mona.user is None
    assert mona.team == central
    assert (nina.reports_to, nina.team, nina.email) == (mona, central, "nina@acme.test")
    assert (ned.reports_to, ned.role) == (mona, Membership.Role.REP)


def test_sales_team_moves_existing_member_and_audits(org, personas):
    content = b"sales_agent,manager,regional_office\nRita Rep,Rob Rep,West\n"
    job = run_import(org, {"teams.csv": content})
    assert job.counts["members"]["updated"] == 2  # Rita moved, Rob promoted
    with tenant_context(org):
        rita = Membership.objects.get(pk=personas.rep1.pk)
        rob = Membership.objects.get(pk=personas.rep2.pk)
        entry = AuditLog.objects.get(
            action="membership.import", object_id=rita.public_id
        )
    assert rita.reports_to == rob
    assert rita.team.name == "West"
    assert rob.role == Membership.Role.MANAGER
    assert entry.old["reports_to"] == "Max Manager"
    assert entry.new["reports_to"] == "Rob Rep"
    assert (entry.old["team"], entry.new["team"]) == ("East", "West")


def test_reimport_changes_nothing(org):
    files = ("products.csv", "accounts_cp1252.csv", "sales_teams.csv")
    import_fixtures(org, *files, "deals_bom_crlf.csv")
    with tenant_context(org):
        stamps = dict(Deal.objects.values_list("external_id", "updated_at"))

    job = import_fixtures(org, *files, "deals_bom_crlf.csv")

    assert job.created_count == 0
    assert job.updated_count == 0
    assert job.unchanged_count == 2 + 2 + 3 + 4
    assert job.counts["deals"]["unchanged"] == 4
    with tenant_context(org):
        assert dict(Deal.objects.values_list("external_id", "updated_at")) == stamps
        assert DealStageChange.objects.count() == 0
        assert DealProduct.objects.count() == 4


def test_changed_row_updates_deal_and_records_stage_change(org, personas):
    import_fixtures(org, "deals_bom_crlf.csv")
    before = _deal(org, "Q2")
    changed = fixture_bytes("deals_bom_crlf.csv").replace(
        b"Q3,Rita Rep,MG Special,,Engaging,2016-10-25,,",
        b"Q3,Rob Rep,GTX Basic,Codehow,Won,2016-10-25,2017-04-02,2500",
    )

    job = run_import(org, {"deals.csv": changed})

    assert job.counts["deals"] == {
        "created": 0,
        "updated": 1,
        "unchanged": 3,
        "skipped": 0,
    }
    deal = _deal(org, "Q3")
    assert deal.stage == personas.stages["Won"]
    assert deal.owner == personas.rep2
    assert deal.account.name == "Codehow"
    assert deal.amount == Decimal("2500")
    assert deal.close_date == dt.date(2017, 4, 2)
    assert deal.stage_changed_at == job.finished_at
    assert deal.updated_at >= job.started_at
    assert _deal(org, "Q2").updated_at == before.updated_at
    with tenant_context(org):
        (change,) = DealStageChange.objects.all()
        line = DealProduct.objects.select_related("product").get(deal=deal)
    assert change.deal == deal
    assert change.from_stage == personas.stages["Engaging"]
    assert change.to_stage == personas.stages["Won"]
    assert change.source == "csv"
    assert change.changed_at == job.finished_at
    assert (line.product.name, line.amount) == ("GTX Basic", Decimal("2500"))


def test_unmapped_column_keeps_stored_value(org):
    import_fixtures(org, "deals_bom_crlf.csv")
    content = b"opportunity_id,deal_stage,close_value\nQ1,Won,1054\n"
    job = run_import(org, {"deals.csv": content})
    assert job.counts["deals"]["unchanged"] == 1
    deal = _deal(org, "Q1")
    assert deal.account.name == "Cancity"
    assert deal.close_date == dt.date(2017, 3, 1)


def test_blank_mapped_cell_clears_value(org):
    import_fixtures(org, "deals_bom_crlf.csv")
    content = b"opportunity_id,deal_stage,account,close_date\nQ1,Won,,2017-03-01\n"
    job = run_import(org, {"deals.csv": content})
    assert job.counts["deals"]["updated"] == 1
    assert _deal(org, "Q1").account is None


def test_new_stages_follow_won_and_lost_names(org, personas):
    content = (
        b"external_id,stage,close_date\n"
        b"N1,Closed Won,2017-01-02\n"
        b"N2,closed lost,2017-01-03\n"
        b"N3,Negotiation,\n"
    )
    run_import(org, {"deals.csv": content})
    with tenant_context(org):
        stages = {
            s.name: s
            for s in Stage.objects.filter(pipeline=personas.stages["Won"].pipeline)
        }
    assert (stages["Closed Won"].is_closed, stages["Closed Won"].is_won) == (True, True)
    assert stages["Closed Won"].probability == Decimal("1")
    assert (stages["closed lost"].is_closed, stages["closed lost"].is_won) == (
        True,
        False,
    )
    assert stages["closed lost"].probability == Decimal("0")
    assert (stages["Negotiation"].is_closed, stages["Negotiation"].is_won) == (
        False,
        False,
    )
    # After the four existing stages: the new open stage, then the closed ones.
    assert [stages[n].order for n in ("Negotiation", "Closed Won", "closed lost")] == [
        5,
        6,
        7,
    ]


def test_fresh_organisation_gets_default_sales_pipeline(db):
    organization = organization_create(name="Fresh", slug="fresh")
    run_import(organization, {"deals.csv": b"external_id,stage\nF1,Engaging\n"})
    with tenant_context(organization):
        (pipeline,) = Pipeline.objects.all()
        deal = Deal.objects.get()
    assert (pipeline.name, pipeline.is_default) == ("Sales", True)
    assert deal.pipeline == pipeline
    assert deal.currency == organization.currency


def test_named_pipeline_is_created(org):
    content = b"external_id,stage,pipeline\nP1,Engaging,Renewals\n"
    run_import(org, {"deals.csv": content})
    deal = _deal(org, "P1")
    assert deal.pipeline.name == "Renewals"
    assert deal.stage.pipeline == deal.pipeline


def test_same_external_id_in_other_org_is_separate(personas):
    content = fixture_bytes("deals_bom_crlf.csv")
    run_import(personas.org, {"deals.csv": content})
    job = run_import(personas.other_org, {"deals.csv": content})
    assert job.counts["deals"]["created"] == 4
    with tenant_context(personas.other_org):
        owners = set(Deal.objects.values_list("owner__display_name", flat=True))
        assert (
            Deal.objects.filter(stage__in=personas.other_stages.values()).count() == 4
        )
    assert owners == {"Rita Rep", "Rob Rep", "Nina New"}
    assert Deal.unscoped.filter(external_id="Q1").count() == 2


def test_rerun_of_finished_import_does_nothing(org):
    from activity import services

    job = import_fixtures(org, "deals_bom_crlf.csv")
    with tenant_context(org):
        Deal.objects.filter(external_id="Q1").update(amount=Decimal("1"))
        again = services.import_job_import(job=job)
        assert services.import_job_validate(job=job).status == Status.DONE
    assert again.status == Status.DONE
    assert _deal(org, "Q1").amount == Decimal("1")


def test_import_finish_is_audited(org):
    job = import_fixtures(org, "deals_bom_crlf.csv")
    with tenant_context(org):
        entry = AuditLog.objects.get(action="import.finish")
    assert entry.object_id == str(job.public_id)
    assert entry.new["counts"]["deals"]["created"] == 4


def test_failure_rolls_back_every_row(org, monkeypatch):
    from activity.importing import upsert

    def broken(self, records):
        raise RuntimeError("disk full")

    monkeypatch.setattr(upsert.DealUpsert, "run", broken)
    job = import_fixtures(org, "products.csv", "deals_bom_crlf.csv")

    assert job.status == Status.FAILED
    assert job.failure == "RuntimeError: disk full"
    with tenant_context(org):
        assert Product.objects.count() == 0
        assert Deal.objects.count() == 0
        assert not AuditLog.objects.filter(action="import.finish").exists()
