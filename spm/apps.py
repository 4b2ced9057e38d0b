from django.apps import AppConfig


class SpmConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "spm"
    verbose_name = "Attain core"
