"""Quota writes under PostgreSQL row-level security, as the application runs."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from goals.models import Quota
from tests.conftest import login
from tests.goals.conftest import make_quota
from tests.security.conftest import switch_to_rls_role

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="Row-level security is PostgreSQL's."
)


def test_import_update_under_row_level_security(client, personas):
    make_quota(personas.rep1, "100.00")
    make_quota(personas.other_rep, "700.00")
    switch_to_rls_role()
    login(client, personas.admin)
    content = b"email,period_start,amount\nrita.rep@acme.test,2024-01-01,150\n"

    response = client.post(
        "/o/acme/goals/quotas/import/",
        {"file": SimpleUploadedFile("quotas.csv", content)},
    )

    assert response.status_code == 302
    amounts = dict(
        Quota.unscoped.values_list("member__display_name", "amount").order_by()
    )
    assert amounts == {"Rita Rep": Decimal("150.00"), "Oona Rep": Decimal("700.00")}
