"""The console's contracts (staff only): every contract with its rate-card trap in money, a
form to create one and one to edit one, each field saying what it does. Writes go through
insights/staff_actions.py (permission, billing's contract services, the staff log); a staff
user without the permission sees no form and a POST is refused (403)."""

from typing import Any

from django.contrib import messages
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils import timezone

from billing.exceptions import InvalidContract
from billing.models import Contract
from billing.services.contract_terms import LOCKED_WHEN_ACTIVE
from insights.base import StaffPage
from insights.forms import ContractCreateForm, ContractDraftForm, ContractForm
from insights.staff_actions import (
    CONTRACT_ADD_PERMISSION,
    CONTRACT_CHANGE_PERMISSION,
    staff_contract_create,
    staff_contract_update,
)
from insights.trap import contract_trap, stored_traps


def _user(request: HttpRequest) -> User:
    if not isinstance(request.user, User):
        raise PermissionDenied
    return request.user


def _refuse_without(request: HttpRequest, permission: str) -> User:
    user = _user(request)
    if not user.has_perm(permission):
        raise PermissionDenied(f"This needs the permission {permission}.")
    return user


class ContractsPage(StaffPage):
    template_name = "insights/contracts.html"
    nav_name = "insights:contracts"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        contracts = list(
            Contract.objects.select_related("tenant", "rate_card", "pinned_version").order_by(
                "tenant__name", "-start_at"
            )
        )
        active = [c for c in contracts if c.status == Contract.Status.ACTIVE]
        by_id = stored_traps(contracts=active)
        traps = [by_id[c.pk] for c in active if c.pk in by_id]
        return super().get_context_data(
            contracts=contracts,
            traps=traps,
            can_add=_user(self.request).has_perm(CONTRACT_ADD_PERMISSION),
            **kwargs,
        )


class ContractCreatePage(StaffPage):
    template_name = "insights/contract_form.html"
    nav_name = "insights:contracts"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        user = _user(self.request)
        form = kwargs.pop("form", None)
        if form is None and user.has_perm(CONTRACT_ADD_PERMISSION):
            tenant = self.request.GET.get("tenant", "")
            form = ContractCreateForm(initial={"tenant": tenant} if tenant.isdigit() else {})
        return super().get_context_data(form=form, contract=None, trap=None, **kwargs)

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        user = _refuse_without(request, CONTRACT_ADD_PERMISSION)
        form = ContractCreateForm(request.POST)
        if not form.is_valid():
            return self.render_to_response(self.get_context_data(form=form), status=422)
        try:
            contract = staff_contract_create(
                user=user,
                tenant=form.cleaned_data["tenant"],
                terms=form.terms(),
                activate=form.cleaned_data["activate"],
                reason=form.cleaned_data["reason"],
            )
        except InvalidContract as exc:
            _form_error(form, exc)
            return self.render_to_response(self.get_context_data(form=form), status=422)
        messages.success(request, f"Contract {contract.name} saved ({contract.status}).")
        return HttpResponseRedirect(reverse("insights:contract", args=[contract.pk]))


class ContractPage(StaffPage):
    template_name = "insights/contract_form.html"
    nav_name = "insights:contracts"

    def contract(self) -> Contract:
        return get_object_or_404(
            Contract.objects.select_related("tenant", "rate_card", "pinned_version"),
            pk=self.kwargs["contract_id"],
        )

    def _form(self, contract: Contract, data: Any = None) -> ContractForm:
        if contract.status == Contract.Status.DRAFT:
            return ContractDraftForm(data, instance=contract)
        return ContractForm(data, instance=contract, locked=LOCKED_WHEN_ACTIVE)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        contract = kwargs.pop("contract", None) or self.contract()
        form = kwargs.pop("form", None)
        if form is None and _user(self.request).has_perm(CONTRACT_CHANGE_PERMISSION):
            form = self._form(contract)
        return super().get_context_data(
            contract=contract,
            form=form,
            trap=contract_trap(contract=contract, now=timezone.now()),
            **kwargs,
        )

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        user = _refuse_without(request, CONTRACT_CHANGE_PERMISSION)
        contract = self.contract()
        form = self._form(Contract.objects.get(pk=contract.pk), request.POST)
        if not form.is_valid():
            return self._invalid(contract, form)
        try:
            saved = staff_contract_update(
                user=user,
                contract=contract,
                terms=form.terms(),
                reason=form.cleaned_data["reason"],
                activate=bool(form.cleaned_data.get("activate")),
            )
        except InvalidContract as exc:
            _form_error(form, exc)
            return self._invalid(contract, form)
        messages.success(request, f"Contract {saved.name} saved ({saved.status}).")
        return HttpResponseRedirect(reverse("insights:contract", args=[contract.pk]))

    def _invalid(self, contract: Contract, form: ContractForm) -> HttpResponse:
        context = self.get_context_data(contract=contract, form=form)
        return self.render_to_response(context, status=422)


def _form_error(form: ContractForm, exc: InvalidContract) -> None:
    field = exc.details.get("field")
    form.add_error(field if field in form.fields else None, exc.message)
