"""Enrolment, exit conditions, the daily limit and exactly-once steps."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.core import mail
from django.db import connections

from activity.models import Activity
from followups import dispatch, services, triggers
from followups.models import Enrollment, OptOut, RepDailySend, StepRun
from notifications.models import Notification
from spm.models import AuditLog
from spm.tenancy import tenant_context
from tests.followups.conftest import MONDAY_10, make_deal, make_sequence

EMAIL_TWICE = [(0, "business_days", "email"), (1, "business_days", "email")]


def run_due(now) -> list[str]:
    """Dispatch and perform the steps due at ``now``, as beat and a worker would."""
    return [
        dispatch.perform_step(run_id, now=now)
        for _, run_id in dispatch.dispatch_due(now=now)
    ]


def test_two_step_sequence_sends_two_emails(acme, personas):
    deal = make_deal(personas)
    sequence = make_sequence(acme, EMAIL_TWICE)
    enrollment = services.enroll(sequence=sequence, target=deal, now=MONDAY_10)

    assert enrollment.next_due_at == MONDAY_10
    assert run_due(MONDAY_10) == ["done"]
    enrollment.refresh_from_db()
    # Step 2 is one business day after step 1 ran: Tuesday 10:00 EST.
    assert enrollment.next_step == 2
    assert enrollment.next_due_at == dt.datetime(2024, 3, 5, 15, 0, tzinfo=dt.UTC)
    assert run_due(MONDAY_10 + dt.timedelta(hours=12)) == []
    assert run_due(enrollment.next_due_at) == ["done"]

    enrollment.refresh_from_db()
    assert enrollment.status == "finished"
    assert len(mail.outbox) == 2
    assert mail.outbox[0].to == ["pat@initech.test"]
    assert mail.outbox[0].subject == "Hello Pat"
    assert mail.outbox[0].body.startswith(
        "Hi Pat, about Initech renewal at Initech. Rita Rep"
    )
    assert "/followups/unsubscribe/" in mail.outbox[0].body
    runs = StepRun.objects.filter(enrollment=enrollment).order_by("step__order")
    assert [run.status for run in runs] == ["done", "done"]
    assert all(run.message_id.startswith("<") for run in runs)
    # The sent emails are logged on the deal, and do not count as a reply.
    assert Activity.objects.filter(deal=deal, type="email").count() == 2


def test_reply_before_next_step_exits(acme, personas):
    deal = make_deal(personas)
    sequence = make_sequence(acme, EMAIL_TWICE)
    enrollment = services.enroll(sequence=sequence, target=deal, now=MONDAY_10)
    run_due(MONDAY_10)
    Activity.objects.create(
        organization=acme,
        type="email",
        subject="Re: Hello Pat",
        occurred_at=MONDAY_10 + dt.timedelta(hours=2),
        deal=deal,
    )

    assert run_due(dt.datetime(2024, 3, 5, 15, 0, tzinfo=dt.UTC)) == []
    enrollment.refresh_from_db()
    assert enrollment.status == "exited"
    assert enrollment.exit_reason == "replied"
    assert len(mail.outbox) == 1


def test_stage_change_exits(acme, personas):
    deal = make_deal(personas)
    enrollment = services.enroll(
        sequence=make_sequence(acme, EMAIL_TWICE), target=deal, now=MONDAY_10
    )
    deal.stage = personas.stages["Engaging"]
    deal.save()

    assert run_due(MONDAY_10) == []
    enrollment.refresh_from_db()
    assert enrollment.exit_reason == "stage_changed"
    assert mail.outbox == []


def test_closed_deal_exits(acme, personas):
    deal = make_deal(personas)
    enrollment = services.enroll(
        sequence=make_sequence(acme, EMAIL_TWICE), target=deal, now=MONDAY_10
    )
    deal.stage = personas.stages["Lost"]
    deal.save()

    run_due(MONDAY_10)
    enrollment.refresh_from_db()
    assert enrollment.exit_reason == "deal_closed"


def test_opted_out_contact_is_never_emailed(acme, personas):
    deal = make_deal(personas)
    OptOut.objects.create(organization=acme, email="PAT@initech.test", reason="bounced")
    enrollment = services.enroll(
        sequence=make_sequence(acme, EMAIL_TWICE), target=deal, now=MONDAY_10
    )

    assert run_due(MONDAY_10) == []
    enrollment.refresh_from_db()
    assert enrollment.status == "exited"
    assert enrollment.exit_reason == "opted_out"
    assert mail.outbox == []
    assert StepRun.objects.count() == 0


def test_bounce_exits_active_enrollments(acme, personas):
    deal = make_deal(personas)
    enrollment = services.enroll(
        sequence=make_sequence(acme, EMAIL_TWICE), target=deal, now=MONDAY_10
    )

    exited = services.opt_out_record(
        organization=acme, email="Pat@Initech.test", reason="bounced"
    )

    enrollment.refresh_from_db()
    assert exited == 1
    assert enrollment.exit_reason == "opted_out"
    assert OptOut.objects.get().reason == "bounced"


def test_daily_limit_defers_to_next_window(acme, personas, settings):
    settings.FOLLOWUPS_DAILY_SEND_LIMIT = 2
    sequence = make_sequence(acme, [(0, "business_days", "email")])
    enrollments = [
        services.enroll(
            sequence=sequence,
            target=make_deal(personas, email=f"buyer{n}@initech.test"),
            now=MONDAY_10 + dt.timedelta(minutes=n),
        )
        for n in range(3)
    ]

    assert run_due(MONDAY_10 + dt.timedelta(minutes=5)) == ["done", "done"]
    third = Enrollment.objects.get(pk=enrollments[2].pk)
    # Over the limit of 2: deferred to Tuesday 09:00 EST.
    assert third.next_due_at == dt.datetime(2024, 3, 5, 14, 0, tzinfo=dt.UTC)
    assert len(mail.outbox) == 2
    counter = RepDailySend.objects.get(member=personas.rep1)
    assert counter.day == dt.date(2024, 3, 4)
    assert counter.count == 2
    assert run_due(third.next_due_at) == ["done"]
    assert len(mail.outbox) == 3


def test_step_task_twice_sends_once(acme, personas):
    deal = make_deal(personas)
    enrollment = services.enroll(
        sequence=make_sequence(acme, [(0, "business_days", "email")]),
        target=deal,
        now=MONDAY_10,
    )
    [(_, run_id)] = dispatch.dispatch_due(now=MONDAY_10)
    # A second start of the same (enrollment, step) is rejected by the unique key.
    locked = Enrollment.objects.get(pk=enrollment.pk)
    assert dispatch.start_step(locked, MONDAY_10) is None

    assert dispatch.perform_step(run_id, now=MONDAY_10) == "done"
    assert dispatch.perform_step(run_id, now=MONDAY_10) == "done"

    assert StepRun.objects.filter(enrollment=enrollment).count() == 1
    assert len(mail.outbox) == 1


def test_recorded_message_id_is_not_sent_again(acme, personas):
    deal = make_deal(personas)
    enrollment = services.enroll(
        sequence=make_sequence(acme, [(0, "business_days", "email")]),
        target=deal,
        now=MONDAY_10,
    )
    [(_, run_id)] = dispatch.dispatch_due(now=MONDAY_10)
    # A worker sent the email, recorded it, and died before marking the run done.
    StepRun.objects.filter(pk=run_id).update(message_id="<sent@attain.test>")

    resend = dispatch.sweep_started(older_than=dt.timedelta(0), now=MONDAY_10)
    assert resend == [(acme.pk, run_id)]
    assert dispatch.perform_step(run_id, now=MONDAY_10) == "done"

    assert mail.outbox == []
    enrollment.refresh_from_db()
    assert enrollment.status == "finished"
    assert StepRun.objects.get(pk=run_id).attempts == 1


def test_task_step_creates_activity_for_rep(acme, personas):
    deal = make_deal(personas)
    sequence = make_sequence(
        acme,
        [
            {
                "delay_amount": 0,
                "delay_unit": "business_days",
                "action": "task",
                "subject": "Call {{ first_name }} at {{ company }}",
            }
        ],
    )
    services.enroll(sequence=sequence, target=deal, now=MONDAY_10)

    assert run_due(MONDAY_10) == ["done"]
    task = Activity.objects.get(type="task")
    assert task.subject == "Call Pat at Initech"
    assert task.owner == personas.rep1
    assert task.deal == deal
    assert mail.outbox == []
    [notice] = Notification.objects.filter(member=personas.rep1)
    assert notice.event.type == "followup.task_due"
    assert notice.event.title == "Follow-up task due: Call Pat at Initech"
    assert notice.event.url == "/o/acme/followups/mine/"


def test_manual_enroll_and_unenroll_are_audited(acme, personas):
    deal = make_deal(personas)
    sequence = make_sequence(acme, EMAIL_TWICE)
    user = personas.manager.user

    enrollment = services.enroll(
        sequence=sequence, target=deal, actor=user, now=MONDAY_10
    )
    again = services.enroll(sequence=sequence, target=deal, actor=user, now=MONDAY_10)
    services.unenroll(enrollment=enrollment, actor=user)

    assert again is None
    enrollment.refresh_from_db()
    assert enrollment.exit_reason == "manual"
    actions = list(
        AuditLog.objects.filter(action__startswith="followups.")
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions == ["followups.enroll", "followups.unenroll"]


def test_stage_trigger_enrols_matching_deal(acme, personas):
    engaging = personas.stages["Engaging"]
    sequence = make_sequence(
        acme,
        EMAIL_TWICE,
        trigger="deal_enters_stage",
        trigger_stage=engaging,
        filters={"amount_min": "1000"},
    )
    deal = make_deal(personas)
    deal.stage = engaging
    deal.save()

    enrolled = triggers.deal_entered_stage(deal, now=MONDAY_10)

    assert [e.sequence_id for e in enrolled] == [sequence.pk]
    assert enrolled[0].member == personas.rep1
    assert enrolled[0].stage_at_enrollment == engaging


def test_quiet_deal_scan_enrols_once(acme, personas):
    sequence = make_sequence(
        acme, EMAIL_TWICE, trigger="no_activity_days", trigger_days=7
    )
    deal = make_deal(personas)
    deal.created_at = MONDAY_10 - dt.timedelta(days=10)
    deal.save()
    Activity.objects.create(
        organization=acme,
        type="call",
        occurred_at=MONDAY_10 - dt.timedelta(days=8),
        deal=deal,
    )

    assert triggers.scan_elapsed(now=MONDAY_10) == 1
    services.unenroll(enrollment=Enrollment.objects.get(), actor=None)
    # No new activity since that enrolment: the next scan leaves the deal alone.
    assert triggers.scan_elapsed(now=MONDAY_10 + dt.timedelta(hours=1)) == 0
    assert Enrollment.objects.filter(sequence=sequence).count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_dispatchers_run_each_step_once(personas):
    org = personas.org
    with tenant_context(org):
        sequence = make_sequence(org, [(0, "business_days", "email")])
        expected = {
            services.enroll(
                sequence=sequence,
                target=make_deal(personas, email=f"buyer{n}@initech.test"),
                now=MONDAY_10,
            ).pk
            for n in range(30)
        }
    results: list[list] = [[], []]
    barrier = threading.Barrier(2)

    def dispatcher(number):
        try:
            barrier.wait()
            results[number] = dispatch.dispatch_due(now=MONDAY_10)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=dispatcher, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    pairs = results[0] + results[1]
    with tenant_context(org):
        for _, run_id in pairs:
            dispatch.perform_step(run_id, now=MONDAY_10)
        runs = list(StepRun.objects.values_list("enrollment_id", flat=True))

    assert len(pairs) == 30
    assert len({run_id for _, run_id in pairs}) == 30
    assert sorted(runs) == sorted(expected)
    assert len(mail.outbox) == 30
    assert sorted(m.to[0] for m in mail.outbox) == sorted(
        f"buyer{n}@initech.test" for n in range(30)
    )
