from django.apps import AppConfig
from django.db.models.signals import post_save


def _organization_created(sender, instance, created, raw=False, **kwargs) -> None:
    """Give every new organisation the built-in coaching rules."""
    if not created or raw:
        return
    from coaching.services import builtin_rules_create

    builtin_rules_create(organization=instance)


class CoachingConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "coaching"

    def ready(self) -> None:
        from spm.models import Organization

        post_save.connect(
            _organization_created,
            sender=Organization,
            dispatch_uid="coaching_builtin_rules",
        )
