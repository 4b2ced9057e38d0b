from django.apps import AppConfig
from django.db.models.signals import post_migrate


class SpmConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "spm"
    verbose_name = "Attain core"

    def ready(self) -> None:
        # Registers the API key scheme with drf-spectacular on import.
        from spm import schema  # noqa: F401
        from spm.rls.policies import apply_after_migrate

        # Every migrate (and flush) gives new tenant tables their row-level
        # security policies on PostgreSQL.
        post_migrate.connect(
            apply_after_migrate, sender=self, dispatch_uid="spm.rls.policies"
        )
