from django.apps import AppConfig


class MeteringConfig(AppConfig):
    name = "metering"
    verbose_name = "Metering and workflows"

    def ready(self) -> None:
        from metering import listeners
        from tenants import events

        events.balance_changed.connect(listeners.on_balance_changed, dispatch_uid="metering")
        events.tenant_settings.connect(listeners.on_tenant_settings, dispatch_uid="metering")
