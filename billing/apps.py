from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Billing"

    def ready(self) -> None:
        from billing import (
            checks,  # noqa: F401  (registers the system checks)
            listeners,
        )
        from tenants import events

        events.balance_changed.connect(listeners.on_balance_changed, dispatch_uid="billing")
        events.domain_event.connect(listeners.on_domain_event, dispatch_uid="billing")
        events.watch_level_crossed.connect(listeners.on_watch_level_crossed, dispatch_uid="billing")
        events.tenant_settings.connect(listeners.on_tenant_settings, dispatch_uid="billing")
