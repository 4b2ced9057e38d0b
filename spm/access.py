"""Who may see whom inside an organisation.

A rep may see only their own numbers, and a manager the members of their
reporting tree (direct and indirect reports). An admin may see everyone in
the organisation. A member outside the viewer's reach gets 404, so ids reveal
nothing.
"""

from __future__ import annotations

import functools
from collections import defaultdict

from django.http import Http404

from spm.models import Membership


def visible_member_ids(viewer: Membership) -> set[int]:
    """Return the ids of the memberships ``viewer`` may see, in one query."""
    if viewer.is_admin:
        return set(Membership.objects.values_list("pk", flat=True))
    if not viewer.is_manager:
        return {viewer.pk}

    children: dict[int | None, list[int]] = defaultdict(list)
    for pk, manager_id in Membership.objects.values_list("pk", "reports_to_id"):
        children[manager_id].append(pk)

    # Walk down from the viewer. The seen set stops a cycle in bad data.
    seen = {viewer.pk}
    stack = [viewer.pk]
    while stack:
        for child in children.get(stack.pop(), ()):
            if child not in seen:
                seen.add(child)
                stack.append(child)
    return seen


def member_visible_or_404(viewer: Membership, public_id) -> Membership:
    """Load a member of the current organisation that ``viewer`` may see, or 404."""
    try:
        member = Membership.objects.select_related("team", "reports_to").get(
            public_id=public_id
        )
    except (Membership.DoesNotExist, ValueError):
        raise Http404("No such member.") from None
    if member.pk not in visible_member_ids(viewer):
        raise Http404("No such member.")
    return member


def require_admin(viewer: Membership) -> None:
    """Raise 404 unless ``viewer`` is an admin: admin pages do not reveal themselves."""
    if not viewer.is_admin:
        raise Http404("Page not found.")


def admin_required(view):
    """Return 404 to non-admins before any other check, the method check included.

    Put it under ``login_required`` and above ``require_POST``, so a non-admin
    cannot tell an admin page exists from a 405.
    """

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        require_admin(request.membership)
        return view(request, *args, **kwargs)

    return wrapper


def require_manager_or_admin(viewer: Membership) -> None:
    if not (viewer.is_admin or viewer.is_manager):
        raise Http404("Page not found.")
