"""Fixtures for the core's tests."""

import pytest
from django.core.cache import cache


@pytest.fixture(autouse=True)
def empty_cache():
    """Start each test with an empty cache, where rate limits keep their counts.

    The test cache lives in process memory and outlasts a test, so without
    this the sign-in and API attempts of earlier tests count against later
    ones.
    """
    cache.clear()
    yield
    cache.clear()
