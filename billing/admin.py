"""Vendor admin for billing. Writes that move credits go through services (contracts are
activated by contract_activate, never by saving the row alone)."""

from decimal import ROUND_HALF_UP
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.models import User
from django.db.models import Q, QuerySet
from django.http import HttpRequest

from billing import signing
from billing.exceptions import (
    GatewayError,
    InvalidContract,
    InvalidCreditDisplay,
    InvalidWebhookEventTypes,
    InvalidWebhookUrl,
    TopUpNotRefundable,
)
from billing.models import (
    AlertSettings,
    AlertState,
    AutoTopUpPolicy,
    BillingCustomer,
    Contract,
    ContractInvoice,
    CreditPack,
    CreditPackPrice,
    Plan,
    PlanPrice,
    StripeEvent,
    Subscription,
    SubscriptionInvoice,
    TenantBilling,
    TopUp,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from billing.money import money_format
from billing.services import contract_activate
from billing.services.refunds import topup_refund
from billing.services.stripe_payloads import MALFORMED
from billing.services.tenant_billing import credits_display_set
from billing.services.webhook_targets import webhook_event_types_validate, webhook_url_validate
from ratecards.selectors import rate_card_trap


class PlanPriceInline(admin.TabularInline):
    """The plan's fee per currency and the Stripe Prices that charge it (README, "Stripe
    set-up for subscriptions")."""

    model = PlanPrice
    extra = 0


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "slug",
        "price_minor",
        "currency",
        "included_credits",
        "credits_per_seat",
        "active",
    ]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [PlanPriceInline]


class CreditPackPriceInline(admin.TabularInline):
    """The pack's price per currency: a tenant is offered it in its billing currency only."""

    model = CreditPackPrice
    extra = 0


@admin.register(CreditPack)
class CreditPackAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "credits", "price_minor", "currency", "active"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [CreditPackPriceInline]


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records written by services only: visible, never edited by hand."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Subscription)
class SubscriptionAdmin(ReadOnlyAdmin):
    list_display = [
        "tenant",
        "plan",
        "seats",
        "status",
        "gateway",
        "gateway_reference",
        "current_period_start",
        "current_period_end",
        "cancel_at_period_end",
    ]
    list_filter = ["status", "gateway", "plan"]


@admin.register(SubscriptionInvoice)
class SubscriptionInvoiceAdmin(ReadOnlyAdmin):
    list_display = [
        "tenant",
        "subscription",
        "kind",
        "status",
        "period_index",
        "plan",
        "seats",
        "credits",
        "amount_minor",
        "currency",
        "gateway_reference",
        "created_at",
        "paid_at",
    ]
    list_filter = ["kind", "status"]


@admin.register(TopUp)
class TopUpAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "tenant",
        "pack",
        "credits",
        "amount_minor",
        "currency",
        "status",
        "auto",
        "created_at",
        "refunded",
        "debt",
    ]
    list_filter = ["status", "auto", "gateway", "refund_reason"]
    search_fields = ["gateway_reference", "payment_reference", "idempotency_key"]
    readonly_fields = ["debt"]
    actions = ["refund"]

    @admin.display(description="refunded")
    def refunded(self, obj: TopUp) -> str:
        if not obj.refund_reason:
            return ""
        return (
            f"{money_format(obj.refunded_minor, obj.currency)} ({obj.get_refund_reason_display()}),"
            f" {obj.credits_taken_back.normalize():f} credits taken back"
        )

    @admin.display(description="debt (spent before the refund)")
    def debt(self, obj: TopUp) -> str:
        """What the customer spent of credits whose money went back: credits, and their price."""
        if not obj.credits_owed:
            return ""
        minor = int(
            (obj.credits_owed * obj.amount_minor / obj.credits).to_integral_value(ROUND_HALF_UP)
        )
        return f"{obj.credits_owed.normalize():f} credits ({money_format(minor, obj.currency)})"

    @admin.action(description="Refund through the gateway and take back the unspent credits")
    def refund(self, request: HttpRequest, queryset: QuerySet[TopUp]) -> None:
        user = request.user if isinstance(request.user, User) else None
        for top_up in queryset.select_related("pack"):
            try:
                done = topup_refund(top_up=top_up, actor=user)
            except (TopUpNotRefundable, GatewayError) as exc:
                detail = exc.details.get("detail", "")
                messages.error(request, f"Top-up {top_up.pk}: {exc.message} {detail}".strip())
            else:
                messages.success(
                    request,
                    f"Top-up {done.pk}: {money_format(done.refunded_minor, done.currency)} "
                    f"refunded, {done.credits_taken_back.normalize():f} credits taken back, "
                    f"{done.credits_owed.normalize():f} already spent.",
                )


@admin.register(AutoTopUpPolicy)
class AutoTopUpPolicyAdmin(ReadOnlyAdmin):
    list_display = ["tenant", "enabled", "threshold", "pack", "monthly_cap_minor", "state"]


@admin.register(AlertSettings)
class AlertSettingsAdmin(ReadOnlyAdmin):
    """Set by the tenant (PUT /api/v1/alert-settings), which also evaluates the balance."""

    list_display = ["tenant", "thresholds", "updated_at"]
    search_fields = ["tenant__slug"]


@admin.register(TenantBilling)
class TenantBillingAdmin(admin.ModelAdmin):
    """The vendor sets how a tenant sees its credits (invisible credits: money at a price per
    credit); its currency is stored by its first subscription, purchase or contract, not here."""

    list_display = ["tenant", "currency", "credit_display", "minor_per_credit", "updated_at"]
    search_fields = ["tenant__slug"]
    readonly_fields = ["currency", "updated_at"]
    fields = ["tenant", "currency", "credit_display", "minor_per_credit", "updated_at"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [*self.readonly_fields, "tenant"] if obj is not None else self.readonly_fields

    def save_model(self, request: HttpRequest, obj: TenantBilling, form: Any, change: bool) -> None:
        try:
            saved = credits_display_set(
                tenant_id=obj.tenant_id,
                display=obj.credit_display,
                minor_per_credit=obj.minor_per_credit,
            )
        except InvalidCreditDisplay as exc:
            messages.error(request, exc.message)
            return
        obj.pk = saved.pk


@admin.register(BillingCustomer)
class BillingCustomerAdmin(ReadOnlyAdmin):
    list_display = ["tenant", "gateway", "customer_id", "payment_method_id"]


class StripeEventStateFilter(admin.SimpleListFilter):
    """What needs a look: events that failed (retried by the sweep) or were malformed (signed
    by Stripe but not a sound event: stored, answered 200, never processed)."""

    title = "state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [
            ("malformed", "Malformed"),
            ("failed", "Failed, to be retried"),
            ("pending", "Waiting to be processed"),
            ("processed", "Processed"),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        malformed = Q(error__startswith=MALFORMED)
        return {
            "malformed": queryset.filter(malformed),
            "failed": queryset.filter(processed_at__isnull=True).exclude(error=""),
            "pending": queryset.filter(processed_at__isnull=True, error=""),
            "processed": queryset.filter(processed_at__isnull=False).exclude(malformed),
        }.get(self.value() or "", queryset)


@admin.register(StripeEvent)
class StripeEventAdmin(ReadOnlyAdmin):
    list_display = ["event_id", "type", "received_at", "processed_at", "error"]
    list_filter = [StripeEventStateFilter, "type"]
    search_fields = ["event_id", "type", "error"]


class WebhookEndpointAdminForm(forms.ModelForm):
    """The same checks as the API's (webhook_targets), so the admin saves no target that the
    API would refuse."""

    url = forms.URLField(max_length=2000, assume_scheme="https")

    class Meta:
        model = WebhookEndpoint
        fields = ["tenant", "url", "active", "event_types"]

    def clean_url(self) -> str:
        url: str = self.cleaned_data["url"]
        try:
            webhook_url_validate(url)
        except InvalidWebhookUrl as exc:
            raise forms.ValidationError(exc.message) from None
        return url

    def clean_event_types(self) -> list[str]:
        types = self.cleaned_data["event_types"] or []
        if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
            raise forms.ValidationError('A list of event types, e.g. ["balance.low"].')
        try:
            return webhook_event_types_validate(types)
        except InvalidWebhookEventTypes as exc:
            raise forms.ValidationError(exc.message) from None


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    form = WebhookEndpointAdminForm
    list_display = ["tenant", "url", "active", "event_types", "deleted_at"]
    list_filter = ["active"]
    readonly_fields = ["secret", "deleted_at"]

    def save_model(
        self, request: HttpRequest, obj: WebhookEndpoint, form: Any, change: bool
    ) -> None:
        if not obj.secret:  # made here: shown on its page, as the API shows it once
            obj.secret = signing.secret_generate()
        super().save_model(request, obj, form, change)


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    extra = 0
    can_delete = False
    readonly_fields = ["number", "status_code", "error", "duration_ms", "at"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = ["event_id", "tenant", "event_type", "status", "attempts", "next_attempt_at"]
    list_filter = ["status", "event_type"]
    inlines = [WebhookAttemptInline]


@admin.register(ContractInvoice)
class ContractInvoiceAdmin(ReadOnlyAdmin):
    """Written by billing/services/contract_invoices.py; `error` says why a request waits."""

    list_display = [
        "number",
        "tenant",
        "contract",
        "kind",
        "period_index",
        "credits",
        "amount",
        "status",
        "due_at",
        "error",
    ]
    list_filter = ["status", "kind"]

    @admin.display(description="amount")
    def amount(self, obj: ContractInvoice) -> str:
        return money_format(obj.amount_minor, obj.currency)


@admin.register(AlertState)
class AlertStateAdmin(ReadOnlyAdmin):
    list_display = ["tenant", "threshold", "state", "fired_at"]


@admin.register(Contract)
class ContractAdmin(admin.ModelAdmin):
    """Contracts are listed and read here, and activated by the action; they are made and
    changed only through billing's contract services, under the contract's lock, with a reason
    logged: the vendor console's form (insights/admin.py leads this admin's pages there). The
    admin's own form would save beside those services, so it has none: every field is read
    only and nothing is added here."""

    list_display = ["name", "tenant", "status", "committed_credits", "rate_card_mode", "trap"]
    list_filter = ["status", "rate_card_mode"]
    actions = ["activate"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def get_readonly_fields(self, request: HttpRequest, obj: Contract | None = None) -> list[str]:
        return [*(f.name for f in Contract._meta.fields), "trap"]

    @admin.display(description="Rate card trap")
    def trap(self, obj: Contract) -> str:
        if obj.status != Contract.Status.ACTIVE:
            return ""
        trap = rate_card_trap(tenant=obj.tenant)
        if trap is None:
            return "—"
        return (
            f"Pinned to v{trap.pinned_number}; {trap.newer_count} newer version(s), newest "
            f"v{trap.newest_number} from {trap.newest_effective_from:%Y-%m-%d}"
        )

    @admin.action(description="Activate (assign the rate card, set the overdraft, grant credits)")
    def activate(self, request: HttpRequest, queryset: QuerySet[Contract]) -> None:
        for contract in queryset:
            try:
                contract_activate(contract=contract)
            except InvalidContract as exc:
                messages.error(request, f"{contract}: {exc.message}")
            else:
                messages.success(request, f"{contract} is active.")
