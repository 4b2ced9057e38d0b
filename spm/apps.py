from django.apps import AppConfig


class SpmConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "spm"
    verbose_name = "Attain core"

    def ready(self) -> None:
        # Registers the API key scheme with drf-spectacular on import.
        from spm import schema  # noqa: F401
