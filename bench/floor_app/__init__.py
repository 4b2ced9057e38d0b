"""A minimal Django and Celery application for bench/routing_floor.py.

It does what lead intake and routing must do at the least: the view commits
one row and publishes one task on commit, and the task commits one row that
refers to it. The time the stack takes for that is the floor under the
product's lead routing latency.
"""

from .celery import app as celery_app

__all__ = ["celery_app"]
