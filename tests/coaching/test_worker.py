"""A rule evaluation run by a real Celery worker through Redis."""

import datetime as dt

import pytest

from coaching.models import Alert
from coaching.tasks import coaching_evaluate_task
from tests.coaching.conftest import only_rule
from tests.measurement.builders import make_deal
from tests.worker import wait_for

pytestmark = pytest.mark.worker


def test_worker_evaluates_rules(celery_worker, personas):
    rule = only_rule(personas.org, "stale_open_deal")
    deal = make_deal(
        personas.rep2, personas.stages["Engaging"], "10.00", None, dt.date(2020, 1, 1)
    )

    coaching_evaluate_task.delay(personas.org.pk)

    alert = wait_for(lambda: Alert.unscoped.filter(rule=rule).first())
    assert alert.member_id == personas.rep2.pk
    assert alert.details["evidence"]["deals"][0]["id"] == str(deal.public_id)
    assert Alert.unscoped.count() == 1
