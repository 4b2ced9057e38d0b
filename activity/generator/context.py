"""The state one generation run shares: random source, calendar and inserts."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import accumulate, islice
from typing import TypeVar
from zoneinfo import ZoneInfo

from django.db import models

from spm.models import Organization

T = TypeVar("T")
ModelT = TypeVar("ModelT", bound=models.Model)

# Rows per INSERT statement. PostgreSQL accepts at most 65,535 bind parameters
# per statement, and the widest generated row (Activity) has 12 columns, so
# 2,000 rows use 24,000 parameters. Streamed inserts free each batch of model
# instances once written, so a 1M-activity run keeps a flat memory footprint.
BATCH_SIZE = 2000

# Working hours in the organisation's time zone: activities and stage moves
# happen from WORKDAY_START_HOUR:00 to WORKDAY_END_HOUR:00 on weekdays.
WORKDAY_START_HOUR = 9
WORKDAY_END_HOUR = 18


@dataclass
class Run:
    """One generation: the organisation, its random source and the date span.

    Events happen on days from ``first_day`` to ``last_day`` inclusive;
    ``last_day`` is the day before the base date, so nothing is in the future.
    """

    organization: Organization
    rng: random.Random
    zone: ZoneInfo
    first_day: dt.date
    last_day: dt.date

    def weighted(self, items: Sequence[T], cumulative: Sequence[float]) -> T:
        """Pick one of ``items``, given their cumulative weights."""
        return self.rng.choices(items, cum_weights=cumulative)[0]

    def day_between(self, first: dt.date, last: dt.date) -> dt.date:
        """Return a random weekday from ``first`` to ``last`` (a weekend only if no
        weekday is in range)."""
        span = max((last - first).days, 0)
        day = first + dt.timedelta(days=self.rng.randint(0, span))
        return weekday_within(day, first, last)

    def working_time(self, day: dt.date) -> dt.datetime:
        """Return a random aware time within working hours on ``day``."""
        return dt.datetime(
            day.year,
            day.month,
            day.day,
            self.rng.randrange(WORKDAY_START_HOUR, WORKDAY_END_HOUR),
            self.rng.randrange(60),
            self.rng.randrange(60),
            tzinfo=self.zone,
        )

    def next_working_time(self, moment: dt.datetime) -> dt.datetime:
        """Return ``moment`` if it is in working hours, else the next opening
        time plus up to 30 minutes."""
        local = moment.astimezone(self.zone)
        in_hours = WORKDAY_START_HOUR <= local.hour < WORKDAY_END_HOUR
        if local.weekday() < 5 and in_hours:
            return local
        day = local.date()
        if local.hour >= WORKDAY_START_HOUR:
            day += dt.timedelta(days=1)
        day = weekday_on_or_after(day)
        return dt.datetime(
            day.year,
            day.month,
            day.day,
            WORKDAY_START_HOUR,
            self.rng.randrange(30),
            self.rng.randrange(60),
            tzinfo=self.zone,
        )


def cumulative(weights: Iterable[float]) -> list[float]:
    return list(accumulate(weights))


def weekday_on_or_before(day: dt.date) -> dt.date:
    while day.weekday() >= 5:
        day -= dt.timedelta(days=1)
    return day


def weekday_on_or_after(day: dt.date) -> dt.date:
    while day.weekday() >= 5:
        day += dt.timedelta(days=1)
    return day


def weekday_within(day: dt.date, first: dt.date, last: dt.date) -> dt.date:
    """Move a weekend ``day`` to a nearby weekday inside ``[first, last]``."""
    before = weekday_on_or_before(day)
    if before >= first:
        return before
    after = weekday_on_or_after(day)
    return after if after <= last else day


def months_before(day: dt.date, months: int) -> dt.date:
    """Return the same day of the month ``months`` earlier, clamped to month end."""
    index = day.year * 12 + day.month - 1 - months
    year, month = divmod(index, 12)
    month += 1
    for candidate in (day.day, 30, 29, 28):
        try:
            return dt.date(year, month, candidate)
        except ValueError:
            continue
    raise AssertionError("every month has 28 days")


def chunked(items: Iterable[T], size: int) -> Iterator[list[T]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def insert(model: type[ModelT], objects: Iterable[ModelT]) -> list[ModelT]:
    """Insert ``objects`` in batches and return them with primary keys set."""
    created: list[ModelT] = []
    for chunk in chunked(objects, BATCH_SIZE):
        created.extend(model.objects.bulk_create(chunk))
    return created


def insert_stream(model: type[models.Model], objects: Iterable[models.Model]) -> int:
    """Insert ``objects`` in batches without keeping them, and return the count."""
    count = 0
    for chunk in chunked(objects, BATCH_SIZE):
        model.objects.bulk_create(chunk)
        count += len(chunk)
    return count
