"""Organisation settings, members and audit log pages."""

import pytest
from django.urls import reverse
from django.utils import timezone

from spm.models import AuditLog, Membership
from spm.tenancy import tenant_context
from tests.conftest import login


def _url(name, org="acme", **kwargs):
    return reverse(name, kwargs={"org_slug": org, **kwargs})


@pytest.mark.parametrize("name", ["spm:settings", "spm:members", "spm:audit-log"])
@pytest.mark.parametrize("persona", ["vp", "manager", "rep1"])
def test_admin_pages_are_404_for_non_admins(client, personas, name, persona):
    login(client, getattr(personas, persona))
    assert client.get(_url(name)).status_code == 404


@pytest.mark.parametrize("name", ["spm:settings", "spm:members", "spm:audit-log"])
def test_admin_pages_open_for_admin(client, personas, name):
    login(client, personas.admin)
    assert client.get(_url(name)).status_code == 200


def test_outsider_gets_404_on_organisation(client, personas):
    login(client, personas.outsider)
    assert client.get(_url("spm:settings")).status_code == 404
    assert client.get("/o/acme/").status_code == 404
    assert client.get("/o/no-such-org/").status_code == 404


def test_anonymous_is_sent_to_login(client, personas):
    response = client.get(_url("spm:members"))
    assert response.status_code == 302
    assert response.url.startswith(reverse("account_login"))


def test_settings_change_is_audited(client, personas):
    login(client, personas.admin)
    response = client.post(
        _url("spm:settings"),
        {
            "name": "Acme Inc",
            "time_zone": "Europe/Berlin",
            "currency": "eur",
            "fiscal_year_start_month": 2,
        },
    )
    assert response.status_code == 302
    personas.org.refresh_from_db()
    assert personas.org.time_zone == "Europe/Berlin"
    assert personas.org.currency == "EUR"
    with tenant_context(personas.org):
        entry = AuditLog.objects.get(action="organization.update")
    assert entry.actor == personas.admin.user
    assert entry.old["time_zone"] == "UTC"
    assert entry.new["time_zone"] == "Europe/Berlin"
    assert entry.old["fiscal_year_start_month"] == 1
    assert entry.new["fiscal_year_start_month"] == 2


def test_invalid_currency_is_rejected(client, personas):
    login(client, personas.admin)
    response = client.post(
        _url("spm:settings"),
        {
            "name": "Acme",
            "time_zone": "UTC",
            "currency": "E1",
            "fiscal_year_start_month": 1,
        },
    )
    assert response.status_code == 200
    assert "not a currency code" in response.content.decode()
    personas.org.refresh_from_db()
    assert personas.org.currency == "USD"


def test_role_change_is_audited(client, personas):
    login(client, personas.admin)
    member = personas.rep3
    response = client.post(
        _url("spm:member-edit", member_id=member.public_id),
        {
            "display_name": member.display_name,
            "role": "manager",
            "reports_to": personas.vp.pk,
            "team": member.team_id,
            "is_active": "on",
        },
    )
    assert response.status_code == 302
    member.refresh_from_db()
    assert member.role == Membership.Role.MANAGER
    with tenant_context(personas.org):
        entry = AuditLog.objects.get(action="membership.update")
    assert entry.old["role"] == "rep"
    assert entry.new["role"] == "manager"


def test_reporting_cycle_is_rejected(client, personas):
    login(client, personas.admin)
    vp = personas.vp
    response = client.post(
        _url("spm:member-edit", member_id=vp.public_id),
        {
            "display_name": vp.display_name,
            "role": "manager",
            "reports_to": personas.manager.pk,
            "is_active": "on",
        },
    )
    assert response.status_code == 200
    assert "reporting cycle" in response.content.decode()
    vp.refresh_from_db()
    assert vp.reports_to_id is None


def test_other_organisations_member_is_404(client, personas):
    login(client, personas.admin)
    url = _url("spm:member-edit", member_id=personas.other_rep.public_id)
    assert client.get(url).status_code == 404
    response = client.post(url, {"display_name": "Hacked", "role": "admin"})
    assert response.status_code == 404
    personas.other_rep.refresh_from_db()
    assert personas.other_rep.display_name == "Oona Rep"


def test_invite_page_sends_invitation(client, personas, mailoutbox):
    with tenant_context(personas.org):
        ghost = Membership.objects.create(
            organization=personas.org, display_name="Gus Ghost"
        )
    login(client, personas.admin)
    response = client.post(
        _url("spm:member-invite", member_id=ghost.public_id),
        {"email": "Gus@Example.test"},
    )
    assert response.status_code == 302
    ghost.refresh_from_db()
    assert ghost.email == "gus@example.test"
    assert ghost.invited_at is not None


def test_switcher_lists_both_organisations(client, personas):
    Membership.unscoped.create(
        organization=personas.other_org,
        user=personas.admin.user,
        display_name=personas.admin.display_name,
        role=Membership.Role.MANAGER,
    )
    login(client, personas.admin)
    content = client.get(_url("spm:members")).content.decode()
    assert 'href="/o/acme/"' in content
    assert 'href="/o/globex/"' in content


def test_organisation_delete_removes_every_row(personas):
    from activity.models import Deal
    from spm.services import organization_delete

    with tenant_context(personas.org):
        Deal.objects.create(
            organization=personas.org,
            owner=personas.rep1,
            pipeline=personas.stages["Won"].pipeline,
            stage=personas.stages["Won"],
            amount="10.00",
        )
    org_id = personas.org.pk
    organization_delete(organization=personas.org)

    assert not Membership.unscoped.filter(organization_id=org_id).exists()
    assert not Deal.unscoped.filter(organization_id=org_id).exists()
    assert Membership.unscoped.filter(organization=personas.other_org).count() == 2


def test_organisation_delete_in_batches(personas):
    from activity.models import Activity, Deal
    from spm.services import organization_delete

    won = personas.stages["Won"]
    deals = Deal.unscoped.bulk_create(
        Deal(
            organization=personas.org,
            owner=personas.rep1,
            pipeline=won.pipeline,
            stage=won,
            name=f"Deal {number}",
        )
        for number in range(7)
    )
    Activity.unscoped.bulk_create(
        Activity(
            organization=personas.org,
            type="call",
            occurred_at=timezone.now(),
            deal=deal,
        )
        for deal in deals
    )
    org_id = personas.org.pk

    # 7 deals in batches of 3: three batches, the last of one deal.
    organization_delete(organization=personas.org, batch_size=3)

    assert not Deal.unscoped.filter(organization_id=org_id).exists()
    assert not Activity.unscoped.filter(organization_id=org_id).exists()
    assert Membership.unscoped.filter(organization=personas.other_org).count() == 2


def _edit(client, personas, member, **changes):
    data = {
        "display_name": member.display_name,
        "role": member.role,
        "is_active": "on",
        **changes,
    }
    data = {key: value for key, value in data.items() if value is not None}
    url = _url("spm:member-edit", member_id=member.public_id)
    return client.post(url, data)


def test_only_admin_cannot_demote_themselves(client, personas):
    login(client, personas.admin)
    response = _edit(client, personas, personas.admin, role="rep")
    assert response.status_code == 200
    assert "only active admin" in response.content.decode()
    personas.admin.refresh_from_db()
    assert personas.admin.role == Membership.Role.ADMIN


def test_only_admin_cannot_deactivate_themselves(client, personas):
    login(client, personas.admin)
    response = _edit(client, personas, personas.admin, is_active=None)
    assert response.status_code == 200
    personas.admin.refresh_from_db()
    assert personas.admin.is_active


def test_admin_can_step_down_when_another_admin_exists(client, personas):
    Membership.unscoped.filter(pk=personas.vp.pk).update(role=Membership.Role.ADMIN)
    login(client, personas.admin)
    response = _edit(client, personas, personas.admin, role="manager")
    assert response.status_code == 302
    personas.admin.refresh_from_db()
    assert personas.admin.role == Membership.Role.MANAGER


def test_invite_with_taken_address_is_refused(client, personas, mailoutbox):
    Membership.unscoped.filter(pk=personas.rep1.pk).update(email="rita@acme.test")
    login(client, personas.admin)
    response = client.post(
        _url("spm:member-invite", member_id=personas.rep2.public_id),
        {"email": "RITA@acme.test"},
        follow=True,
    )
    assert response.status_code == 200
    assert "already the address of Rita Rep" in response.content.decode()
    personas.rep2.refresh_from_db()
    assert personas.rep2.email == ""
    assert mailoutbox == []


def test_invite_rejects_overlong_address(client, personas):
    login(client, personas.admin)
    address = "a" * 250 + "@example.test"
    client.post(
        _url("spm:member-invite", member_id=personas.rep2.public_id),
        {"email": address},
    )
    personas.rep2.refresh_from_db()
    assert personas.rep2.email == ""


@pytest.mark.parametrize("method", ["get", "post"])
def test_post_only_admin_url_is_404_for_manager(client, personas, method):
    login(client, personas.manager)
    url = _url("spm:member-invite", member_id=personas.rep1.public_id)
    assert getattr(client, method)(url).status_code == 404


def test_pages_show_times_in_organisation_zone(client, personas):
    from spm.services import audit_log_write

    Organization = type(personas.org)
    Organization.objects.filter(pk=personas.org.pk).update(time_zone="Asia/Tokyo")
    personas.org.refresh_from_db()
    entry = audit_log_write(
        organization=personas.org, actor=None, action="test.entry", object_type="x"
    )
    AuditLog.unscoped.filter(pk=entry.pk).update(created_at="2024-03-01T23:30:00+00:00")
    login(client, personas.admin)
    content = client.get(_url("spm:audit-log")).content.decode()
    # 23:30 UTC on 1 March is 08:30 on 2 March in Tokyo.
    assert "2024-03-02 08:30" in content


def _member_post(member, **changes) -> dict:
    return {
        "display_name": member.display_name,
        "role": member.role,
        "reports_to": member.reports_to_id or "",
        "team": member.team_id or "",
        "is_active": "on",
        **changes,
    }


def test_employee_id_saved_and_audited(client, personas):
    login(client, personas.admin)
    member = personas.rep3

    response = client.post(
        _url("spm:member-edit", member_id=member.public_id),
        _member_post(member, employee_id=" E-2042 "),
    )

    assert response.status_code == 302
    member.refresh_from_db()
    assert member.employee_id == "E-2042"
    with tenant_context(personas.org):
        entry = AuditLog.objects.get(action="membership.update")
    assert entry.old["employee_id"] == ""
    assert entry.new["employee_id"] == "E-2042"


def test_duplicate_employee_id_is_rejected(client, personas):
    personas.rep1.employee_id = "E-1001"
    personas.rep1.save()
    login(client, personas.admin)
    member = personas.rep3

    response = client.post(
        _url("spm:member-edit", member_id=member.public_id),
        _member_post(member, employee_id="E-1001"),
    )

    assert response.status_code == 200
    assert "Rita Rep already has employee ID E-1001." in response.content.decode()
    member.refresh_from_db()
    assert member.employee_id == ""


def test_employee_id_may_repeat_across_organisations(personas):
    personas.rep1.employee_id = "E-1001"
    personas.rep1.save()
    personas.other_rep.employee_id = "E-1001"
    personas.other_rep.save()

    assert Membership.unscoped.filter(employee_id="E-1001").count() == 2


def test_post_without_employee_id_keeps_it(client, personas):
    personas.rep3.employee_id = "E-3003"
    personas.rep3.save()
    login(client, personas.admin)

    client.post(
        _url("spm:member-edit", member_id=personas.rep3.public_id),
        _member_post(personas.rep3, display_name="Remy R. Rep"),
    )

    personas.rep3.refresh_from_db()
    assert personas.rep3.display_name == "Remy R. Rep"
    assert personas.rep3.employee_id == "E-3003"
