from spm.models import Membership
from spm.tenancy import system_context


def organization(request):
    """Expose the current organisation and the user's other ones to templates."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}

    def user_memberships():
        # The user's memberships span organisations, so the read leaves the
        # current one, to which row-level security would limit it.
        with system_context():
            return list(
                Membership.unscoped.filter(user=user, is_active=True)
                .select_related("organization")
                .order_by("organization__name")
            )

    return {
        "organization": getattr(request, "organization", None),
        "membership": getattr(request, "membership", None),
        # Evaluated by the template only when the switcher is drawn.
        "user_memberships": user_memberships,
    }
