"""Vendor admin for rate cards and the cost catalog. Actions call services; a published version
is shown read-only (the ORM and the database would refuse a change anyway)."""

from collections.abc import Callable
from datetime import datetime
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db import transaction
from django.db.models import Exists, Model, OuterRef, Q, QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils import timezone

from ratecards.models import (
    CostCatalogVersion,
    CostPrice,
    ModelClassMultiplier,
    PublishStatus,
    Rate,
    RateCard,
    RateCardAssignment,
    RateCardVersion,
)
from ratecards.selectors import assignment_trap
from ratecards.services import (
    assignment_validate,
    cost_catalog_version_create_draft,
    cost_catalog_version_publish,
    ratecard_assign,
    ratecard_set_default,
    ratecard_version_create_draft,
    ratecard_version_publish,
)
from tenants.cache import config_stamp_bump
from tenants.exceptions import CreditlineError


class PublishForm(forms.Form):
    effective_from = forms.DateTimeField(
        help_text="YYYY-MM-DD HH:MM (UTC). Now, or later; never in the past."
    )


def _publish(
    modeladmin: admin.ModelAdmin,
    request: HttpRequest,
    queryset: QuerySet[Any],
    publish: Callable[[Any, datetime], object],
) -> TemplateResponse | None:
    """An action with an intermediate page that asks for the effective date."""
    if "apply" in request.POST:
        form = PublishForm(request.POST)
        if form.is_valid():
            for version in queryset:
                try:
                    publish(version, form.cleaned_data["effective_from"])
                except CreditlineError as error:
                    modeladmin.message_user(request, f"{version}: {error.message}", messages.ERROR)
                else:
                    modeladmin.message_user(request, f"Published {version}.", messages.SUCCESS)
            return None
    else:
        form = PublishForm(initial={"effective_from": timezone.now().replace(microsecond=0)})
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": "Publish with an effective date",
        "form": form,
        "queryset": queryset,
        "action": request.POST.get("action", ""),
        "action_checkbox_name": ACTION_CHECKBOX_NAME,
        "opts": modeladmin.model._meta,
    }
    return TemplateResponse(request, "admin/ratecards/publish.html", context)


class _FrozenWhenPublished:
    """Inline/admin mixin: editable while the version is a draft, read-only once published."""

    def _frozen(self, obj: Model | None) -> bool:
        status = getattr(obj, "status", None)
        return status == PublishStatus.PUBLISHED

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return not self._frozen(obj) and super().has_add_permission(request, obj)  # type: ignore[misc]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return not self._frozen(obj) and super().has_change_permission(request, obj)  # type: ignore[misc]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return not self._frozen(obj) and super().has_delete_permission(request, obj)  # type: ignore[misc]


class RateInline(_FrozenWhenPublished, admin.TabularInline):
    model = Rate
    extra = 0


class MultiplierInline(_FrozenWhenPublished, admin.TabularInline):
    model = ModelClassMultiplier
    extra = 0


class VersionInline(admin.TabularInline):
    model = RateCardVersion
    extra = 0
    fields = ["number", "status", "effective_from", "published_at", "notes"]
    readonly_fields = ["number", "status", "effective_from", "published_at", "notes"]
    show_change_link = True
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # "Create a draft copied from the latest version" numbers it.


@admin.register(RateCard)
class RateCardAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "is_default", "created_at"]
    search_fields = ["name", "slug"]
    readonly_fields = ["is_default"]
    inlines = [VersionInline]
    actions = ["create_draft", "make_default"]

    def save_model(self, request: HttpRequest, obj: RateCard, form: Any, change: bool) -> None:
        with transaction.atomic():  # cached pricers hold cards (name, slug) with their versions
            super().save_model(request, obj, form, change)
            if change:
                config_stamp_bump()

    @admin.action(description="Create a draft copied from the latest version")
    def create_draft(self, request: HttpRequest, queryset: QuerySet[RateCard]) -> None:
        for card in queryset:
            draft = ratecard_version_create_draft(rate_card=card)
            self.message_user(request, f"Created {draft}.", messages.SUCCESS)

    @admin.action(description="Make the default card (for tenants without an assignment)")
    def make_default(self, request: HttpRequest, queryset: QuerySet[RateCard]) -> None:
        if queryset.count() != 1:
            self.message_user(request, "Choose exactly one card.", messages.ERROR)
            return
        ratecard_set_default(rate_card=queryset.get())


@admin.register(RateCardVersion)
class RateCardVersionAdmin(_FrozenWhenPublished, admin.ModelAdmin):
    list_display = ["__str__", "rate_card", "number", "status", "effective_from", "published_at"]
    list_filter = ["status", "rate_card"]
    fields = ["rate_card", "number", "status", "effective_from", "published_at", "notes"]
    readonly_fields = ["rate_card", "number", "status", "effective_from", "published_at"]
    inlines = [RateInline, MultiplierInline]
    actions = ["publish"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # Drafts are created from the rate card's page, so they are numbered.

    @admin.action(description="Publish with an effective date")
    def publish(
        self, request: HttpRequest, queryset: QuerySet[RateCardVersion]
    ) -> TemplateResponse | None:
        return _publish(
            self,
            request,
            queryset,
            lambda v, at: ratecard_version_publish(version=v, effective_from=at),
        )


class AssignmentForm(forms.ModelForm):
    valid_from = forms.DateTimeField(
        required=False, help_text="YYYY-MM-DD HH:MM (UTC). Empty: now. Now, or later."
    )

    class Meta:
        model = RateCardAssignment
        fields = [
            "tenant",
            "rate_card",
            "mode",
            "notice_days",
            "pinned_version",
            "pinned_until",
            "valid_from",
        ]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.errors:
            return data
        data["valid_from"] = data.get("valid_from") or timezone.now()
        try:
            assignment_validate(
                rate_card=data["rate_card"],
                mode=data["mode"],
                notice_days=data["notice_days"],
                pinned_version=data.get("pinned_version"),
                pinned_until=data.get("pinned_until"),
                valid_from=data["valid_from"],
            )
        except CreditlineError as error:
            field = error.details.get("field")
            self.add_error(field if field in self.fields else None, error.message)
        return data


@admin.register(RateCardAssignment)
class RateCardAssignmentAdmin(admin.ModelAdmin):
    """The assignment history. A row is never edited: "Add" puts the tenant on new terms from
    a moment on (the service keeps the earlier rows, which still price older events)."""

    form = AssignmentForm
    list_display = [
        "tenant",
        "valid_from",
        "in_force",
        "rate_card",
        "mode",
        "notice_days",
        "pinned_version",
        "pinned_until",
        "trap",
    ]
    list_filter = ["mode", "rate_card"]
    list_select_related = ["tenant", "rate_card", "pinned_version"]
    search_fields = ["tenant__slug"]
    ordering = ["tenant__slug", "-valid_from"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[RateCardAssignment]:
        now = timezone.now()
        superseded = RateCardAssignment.objects.filter(
            tenant=OuterRef("tenant"), valid_from__gt=OuterRef("valid_from"), valid_from__lte=now
        )
        return (
            super()
            .get_queryset(request)
            .annotate(is_in_force=Q(valid_from__lte=now) & ~Exists(superseded))
        )

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="In force now", boolean=True)
    def in_force(self, obj: RateCardAssignment) -> bool:
        return bool(getattr(obj, "is_in_force", False))

    @admin.display(description="Rate card trap")
    def trap(self, obj: RateCardAssignment) -> str:
        info = assignment_trap(assignment=obj) if self.in_force(obj) else None
        if info is None:
            return ""
        until = f" until {info.pinned_until:%Y-%m-%d}" if info.pinned_until else " with no end date"
        return (
            f"⚠ pinned to v{info.pinned_number}{until}; {info.newer_count} newer version(s), "
            f"newest v{info.newest_number} effective {info.newest_effective_from:%Y-%m-%d}"
        )

    def save_model(
        self, request: HttpRequest, obj: RateCardAssignment, form: Any, change: bool
    ) -> None:
        saved = ratecard_assign(
            tenant=obj.tenant,
            rate_card=obj.rate_card,
            mode=obj.mode,
            notice_days=obj.notice_days,
            pinned_version=obj.pinned_version,
            pinned_until=obj.pinned_until,
            valid_from=obj.valid_from,
        )
        obj.pk, obj.valid_from = saved.pk, saved.valid_from


class CostPriceInline(_FrozenWhenPublished, admin.TabularInline):
    model = CostPrice
    extra = 0


@admin.register(CostCatalogVersion)
class CostCatalogVersionAdmin(_FrozenWhenPublished, admin.ModelAdmin):
    list_display = ["__str__", "number", "status", "currency", "effective_from", "published_at"]
    list_filter = ["status"]
    fields = ["number", "status", "currency", "effective_from", "published_at", "notes"]
    readonly_fields = ["number", "status", "currency", "effective_from", "published_at"]
    inlines = [CostPriceInline]
    actions = ["create_draft", "publish"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # "Create a draft copied from this version's catalog" numbers it.

    @admin.action(description="Create a draft copied from the latest version")
    def create_draft(self, request: HttpRequest, queryset: QuerySet[CostCatalogVersion]) -> None:
        latest = CostCatalogVersion.objects.order_by("-number").first()
        draft = cost_catalog_version_create_draft(currency=latest.currency if latest else "USD")
        self.message_user(request, f"Created {draft}.", messages.SUCCESS)

    @admin.action(description="Publish with an effective date")
    def publish(
        self, request: HttpRequest, queryset: QuerySet[CostCatalogVersion]
    ) -> TemplateResponse | None:
        return _publish(
            self,
            request,
            queryset,
            lambda v, at: cost_catalog_version_publish(version=v, effective_from=at),
        )
