"""factory_boy factories. Tenant rows take their organisation explicitly."""

import datetime as dt
from decimal import Decimal

import factory

from activity.models import Activity, Deal, Pipeline, Stage
from spm.models import Membership, Organization, Team, User


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User

    email = factory.Sequence(lambda n: f"user{n}@example.test")
    password = factory.django.Password("pw-test-1234")


class OrganizationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organization

    name = factory.Sequence(lambda n: f"Org {n}")
    slug = factory.Sequence(lambda n: f"org-{n}")
    time_zone = "UTC"
    currency = "USD"


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Team

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"Team {n}")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    organization = factory.SubFactory(OrganizationFactory)
    user = factory.SubFactory(UserFactory)
    display_name = factory.Sequence(lambda n: f"Member {n}")
    role = Membership.Role.REP


class PipelineFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Pipeline

    organization = factory.SubFactory(OrganizationFactory)
    name = "Sales"
    is_default = True


def default_stages(pipeline: Pipeline) -> dict[str, Stage]:
    """Create Prospecting, Engaging, Won and Lost on ``pipeline``."""
    specs = [
        ("Prospecting", 1, "0.10", False, False),
        ("Engaging", 2, "0.50", False, False),
        ("Won", 3, "1", True, True),
        ("Lost", 4, "0", True, False),
    ]
    stages = {}
    for name, order, probability, closed, won in specs:
        stages[name] = Stage.unscoped.create(
            organization_id=pipeline.organization_id,
            pipeline=pipeline,
            name=name,
            order=order,
            probability=Decimal(probability),
            is_closed=closed,
            is_won=won,
        )
    return stages


class DealFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Deal

    organization = factory.SelfAttribute("stage.organization")
    pipeline = factory.SelfAttribute("stage.pipeline")
    name = factory.Sequence(lambda n: f"Deal {n}")
    external_source = "test"
    external_id = factory.Sequence(lambda n: f"D{n}")
    currency = "USD"
    created_on = dt.date(2024, 1, 2)


class ActivityFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Activity

    type = Activity.Type.CALL
    occurred_at = factory.LazyFunction(
        lambda: dt.datetime(2024, 1, 10, 15, 0, tzinfo=dt.UTC)
    )
