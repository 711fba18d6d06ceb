from django.apps import AppConfig


class PortalConfig(AppConfig):
    """The customer portal: the top layer that reads every app below it (docs/architecture.md,
    "Apps and layers"). Nothing imports it."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "portal"
