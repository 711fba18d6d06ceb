"""Contracts invoice their money, with the fake gateway playing Stripe Invoicing's lifecycle:
the commitment invoiced on the contract's net terms (credits at signature or on payment), the
overdraft a contract month left owing invoiced in arrears and cleared in the ledger by an entry
naming its invoice (never also repaid by a grant), everything still owed invoiced and cleared
when the contract ends, and a gateway that fails granting nothing."""

import importlib
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.apps import apps as django_apps
from django.contrib.auth.models import User
from django.test import Client
from rest_framework.test import APIClient

from billing.gateways.fake import FakeGateway
from billing.models import Contract, ContractInvoice, CreditPack
from billing.services.contract_invoices import contract_invoices_due
from billing.services.contracts import contract_activate, contract_end_due, contract_tranches_due
from billing.services.topups import topup_complete, topup_create
from ledger.models import CreditBucket, LedgerTransaction
from ledger.selectors import balance_get, credit_account_get, ledger_verify
from ledger.services import credit_account_update, ledger_debit
from metering.exceptions import WorkflowSuspended
from metering.services import UsageInput
from metering.workflows import workflow_start, workflow_step
from ratecards.services import ratecard_seed_example
from tenants.models import Membership, Tenant
from tenants.services import membership_add

pytestmark = pytest.mark.django_db(transaction=True)

START = datetime(2026, 1, 31, 12, tzinfo=UTC)
END = datetime(2026, 4, 30, 12, tzinfo=UTC)


def at(month: int, day: int, hour: int = 12) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


def make_contract(tenant: Tenant, **fields: Any) -> Contract:
    values: dict[str, Any] = {
        "name": "Acme Q1",
        "price_per_1000_minor": 800,
        "overage_price_per_1000_minor": 1_200,
        "committed_credits": Decimal("1000"),
        "start_at": START,
        "end_at": END,
        "rate_card": ratecard_seed_example(),
        "overdraft_limit": Decimal("500"),
        "net_terms_days": 30,
        **fields,
    }
    return Contract.objects.create(tenant=tenant, **values)


def available(tenant: Tenant) -> Decimal:
    return balance_get(tenant=tenant).available


def spend(tenant: Tenant, credits: str, key: str) -> None:
    ledger_debit(tenant=tenant, amount=Decimal(credits), idempotency_key=key)


def invoices(tenant: Tenant) -> list[tuple[str, int, Decimal, int, str]]:
    return list(
        ContractInvoice.objects.filter(tenant=tenant)
        .order_by("pk")
        .values_list("kind", "period_index", "credits", "amount_minor", "status")
    )


def contract_grants(tenant: Tenant) -> list[tuple[str, Decimal]]:
    return list(
        CreditBucket.objects.filter(tenant=tenant, source="contract")
        .order_by("pk")
        .values_list("external_reference", "granted")
    )


def test_the_overdraft_is_invoiced_monthly_and_cleared_at_the_end_then_a_pack_is_spendable(
    tenant: Tenant, api_client: APIClient
) -> None:
    # Given a contract of 1,000 credits up front at $8.00 per 1,000 with a 500-credit overdraft
    # at $12.00 per 1,000, signed on net terms.
    with time_machine.travel(START, tick=False):
        contract = make_contract(tenant)
        contract_activate(contract=contract)
    commitment = ContractInvoice.objects.get(tenant=tenant, kind="commitment")
    assert (commitment.status, commitment.amount_minor, commitment.currency) == ("open", 800, "USD")
    assert commitment.number == f"FAKE-{tenant.pk}-{commitment.pk:06d}"
    assert commitment.due_at == datetime(2026, 3, 2, 12, tzinfo=UTC)  # 30 days' net terms
    assert contract_grants(tenant) == [(f"contract:{contract.pk}:0", Decimal("1000.0000"))]

    # Month 1 (Jan 31 to Feb 28): 1,300 spent, 300 of it lent by the overdraft.
    with time_machine.travel(at(2, 10), tick=False):
        spend(tenant, "1300", "m1")
    assert available(tenant) == Decimal("-300")

    # The month's end: its overdraft invoiced in arrears and cleared at once, once.
    with time_machine.travel(at(2, 28, 13), tick=False):
        assert contract_invoices_due()["overage"] == 1
        assert contract_invoices_due()["overage"] == 0
    assert available(tenant) == Decimal("0")
    assert credit_account_get(tenant=tenant).overdraft_used == Decimal("0")
    overage = ContractInvoice.objects.get(tenant=tenant, kind="overage", period_index=0)
    assert (overage.credits, overage.amount_minor, overage.status) == (Decimal("300"), 360, "open")
    assert (overage.period_start, overage.period_end) == (START, at(2, 28))
    clearing = LedgerTransaction.objects.get(tenant=tenant, source_id=str(overage.pk))
    assert (clearing.kind, clearing.amount, clearing.source_type) == (
        "settlement",
        Decimal("300.0000"),
        "billing.contractinvoice",
    )

    # Month 2 (Feb 28 to Mar 31) lends 200; month 3, the last, 100 more after its end's invoice.
    with time_machine.travel(at(3, 10), tick=False):
        spend(tenant, "200", "m2")
    with time_machine.travel(at(3, 31, 13), tick=False):
        contract_invoices_due()
    with time_machine.travel(at(4, 10), tick=False):
        spend(tenant, "100", "m3")
    assert available(tenant) == Decimal("-100")

    # The contract ends: what is still owed is invoiced and cleared.
    with time_machine.travel(at(4, 30, 13), tick=False):
        assert contract_end_due() == 1
        assert contract_end_due() == 0
        contract_invoices_due()
    assert invoices(tenant) == [
        ("commitment", 0, Decimal("1000.0000"), 800, "open"),
        ("overage", 0, Decimal("300.0000"), 360, "open"),
        ("overage", 1, Decimal("200.0000"), 240, "open"),
        ("overage", 2, Decimal("100.0000"), 120, "open"),
    ]
    assert available(tenant) == Decimal("0")

    # Then a $15 pack of 500 credits bought afterwards is spendable in full.
    pack = CreditPack.objects.create(
        slug="pack-500", name="500 credits", credits=Decimal("500"), price_minor=1_500
    )
    with time_machine.travel(at(5, 2), tick=False):
        top_up = topup_create(tenant=tenant, pack=pack, gateway="fake")
        topup_complete(top_up=top_up, gateway_reference="fpi_after_contract")
    assert available(tenant) == Decimal("500")
    assert ledger_verify(tenant=tenant) == []

    # The customer lists the invoices with their links (the fake's pages are the portal's).
    listed = api_client.get("/api/v1/contract-invoices").json()["results"]
    assert [(i["kind"], i["amount_minor"], i["status"]) for i in listed] == [
        ("overage", 120, "open"),
        ("overage", 240, "open"),
        ("overage", 360, "open"),
        ("commitment", 800, "open"),
    ]
    assert listed[-1]["url"] == f"http://127.0.0.1:8000/billing/contract-invoices/{commitment.pk}/"
    assert listed[-1]["number"] == commitment.number


def test_a_month_s_overdraft_is_invoiced_not_repaid_by_the_next_tranche(tenant: Tenant) -> None:
    with time_machine.travel(START, tick=False):
        contract = make_contract(
            tenant, committed_credits=Decimal("300"), grant_schedule=Contract.Schedule.MONTHLY
        )
        contract_activate(contract=contract)
        spend(tenant, "150", "m1")  # 100 from the tranche, 50 lent
    # The tranche sweep runs first at the month's end: the month is invoiced before the next
    # tranche is granted, so that tranche is spendable in full.
    with time_machine.travel(at(2, 28, 12), tick=False):
        assert contract_tranches_due() == 1
    assert available(tenant) == Decimal("100")
    assert invoices(tenant) == [
        ("commitment", 0, Decimal("100.0000"), 80, "open"),
        ("overage", 0, Decimal("50.0000"), 60, "open"),
        ("commitment", 1, Decimal("100.0000"), 80, "open"),
    ]
    assert ledger_verify(tenant=tenant) == []


def test_a_grant_that_repaid_the_overdraft_leaves_nothing_to_invoice(tenant: Tenant) -> None:
    pack = CreditPack.objects.create(
        slug="pack-100", name="100 credits", credits=Decimal("100"), price_minor=1_500
    )
    with time_machine.travel(START, tick=False):
        contract_activate(contract=make_contract(tenant))
        spend(tenant, "1080", "m1")  # 80 lent
    with time_machine.travel(at(2, 20), tick=False):
        top_up = topup_create(tenant=tenant, pack=pack, gateway="fake")
        topup_complete(top_up=top_up, gateway_reference="fpi_mid_month")  # repays the 80
    with time_machine.travel(at(3, 1), tick=False):
        assert contract_invoices_due()["overage"] == 0
    assert available(tenant) == Decimal("20")
    assert [i[0] for i in invoices(tenant)] == ["commitment"]


def test_on_payment_terms_credits_come_when_the_invoice_is_paid_once(tenant: Tenant) -> None:
    with time_machine.travel(START, tick=False):
        contract = make_contract(tenant, credits_on=Contract.CreditsOn.PAYMENT, net_terms_days=45)
        contract_activate(contract=contract)
    commitment = ContractInvoice.objects.get(tenant=tenant)
    assert (commitment.status, commitment.due_at) == ("open", datetime(2026, 3, 17, 12, tzinfo=UTC))
    assert contract_grants(tenant) == []
    assert available(tenant) == Decimal("0")

    with time_machine.travel(at(2, 10), tick=False):
        FakeGateway.contract_invoice_pay(reference=commitment.gateway_reference)
        assert contract_invoices_due()["paid"] == 1
        assert contract_invoices_due()["paid"] == 0
    commitment.refresh_from_db()
    assert (commitment.status, commitment.paid_at) == ("paid", at(2, 10))
    assert contract_grants(tenant) == [(f"contract:{contract.pk}:0", Decimal("1000.0000"))]
    assert available(tenant) == Decimal("1000")


def test_a_gateway_error_grants_nothing_and_the_request_is_issued_again(tenant: Tenant) -> None:
    FakeGateway.contract_invoices_fail()
    with time_machine.travel(START, tick=False):
        contract = make_contract(tenant, credits_on=Contract.CreditsOn.PAYMENT)
        contract_activate(contract=contract)
    row = ContractInvoice.objects.get(tenant=tenant)
    assert (row.status, row.gateway_reference, row.number) == ("requested", "", "")
    assert row.error == "The fake gateway was told to fail contract invoices."
    assert contract_grants(tenant) == []
    # Not issued, not listed: nothing to open yet.
    assert ContractInvoice.objects.filter(tenant=tenant, status="open").count() == 0

    FakeGateway.contract_invoices_fail(fail=False)
    with time_machine.travel(at(1, 31, 13), tick=False):
        assert contract_invoices_due()["issued"] == 1
    row.refresh_from_db()
    assert (row.status, row.error) == ("open", "")
    assert contract_grants(tenant) == []  # still on payment terms: not paid yet


def test_contracts_active_before_invoicing_are_invoiced_from_their_next_period(
    tenant: Tenant,
) -> None:
    # A contract in force since January, made before contracts were invoiced.
    with time_machine.travel(START, tick=False):
        contract = make_contract(tenant, grant_schedule=Contract.Schedule.MONTHLY)
        Contract.objects.filter(pk=contract.pk).update(status="active", terms_applied_at=START)
        credit_account_update(tenant=tenant, overdraft_limit=Decimal("500"))
    migration = importlib.import_module("billing.migrations.0011_contract_invoices")
    with time_machine.travel(at(2, 10), tick=False):
        migration.invoice_from_the_next_period(django_apps, None)
    contract.refresh_from_db()
    assert (contract.invoicing_from_period, contract.overage_next_period) == (1, 1)

    # The month in force is not invoiced: its tranche is granted as it always was, and its
    # overdraft is repaid by the next tranche, as before.
    with time_machine.travel(at(2, 20), tick=False):
        assert contract_tranches_due() == 1
        spend(tenant, "400", "before")
    with time_machine.travel(at(2, 28, 13), tick=False):
        assert contract_tranches_due() == 1
        assert contract_invoices_due()["overage"] == 0
    assert available(tenant) == Decimal("266.6666")
    # The next period is invoiced.
    assert invoices(tenant) == [("commitment", 1, Decimal("333.3333"), 267, "open")]


def test_the_invoice_list_refuses_an_unknown_status_and_shows_another_tenant_nothing(
    tenant: Tenant, api_client: APIClient, other_tenant: Tenant, make_client: Any
) -> None:
    with time_machine.travel(START, tick=False):
        contract_activate(contract=make_contract(tenant))
    refused = api_client.get("/api/v1/contract-invoices?status=late")
    assert refused.status_code == 422
    assert refused.json()["error"]["fields"] == {"status": ['"late" is not a valid choice.']}
    assert len(api_client.get("/api/v1/contract-invoices?status=open").json()["results"]) == 1
    other = make_client(other_tenant, scopes=("read", "write", "billing"))
    assert other.get("/api/v1/contract-invoices").json()["results"] == []


def test_the_fake_gateway_s_invoice_page(tenant: Tenant) -> None:
    with time_machine.travel(START, tick=False):
        contract_activate(contract=make_contract(tenant))
    invoice = ContractInvoice.objects.get(tenant=tenant)
    user = User.objects.create_user("owner", password="pw-123456")
    membership_add(tenant=tenant, user=user, role=Membership.Role.OWNER)
    browser = Client()
    browser.force_login(user)
    page = browser.get(f"/billing/contract-invoices/{invoice.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    for text in (invoice.number, "2026-01-31 12:00 UTC", "Open (unpaid)", "8.00", "USD"):
        assert text in html
    assert "Acme Q1: committed credits, tranche 1 of 1 (1000 credits at 8.00 USD per 1,000)" in html


def test_a_run_suspended_at_the_overdraft_limit_is_told_when_the_month_is_invoiced(
    tenant: Tenant,
) -> None:
    with time_machine.travel(START, tick=False):
        contract_activate(
            contract=make_contract(
                tenant, committed_credits=Decimal("10"), overdraft_limit=Decimal("10")
            )
        )
        run, _ = workflow_start(tenant=tenant, external_id="job-1")
        workflow_step(tenant=tenant, run=run, data=UsageInput("s1", "web_research", Decimal(1)))
        workflow_step(tenant=tenant, run=run, data=UsageInput("s2", "web_research", Decimal(1)))
        with pytest.raises(WorkflowSuspended):
            workflow_step(tenant=tenant, run=run, data=UsageInput("s3", "web_research", Decimal(1)))
    run.refresh_from_db()
    assert (run.state, run.resumable_at) == ("suspended", None)
    # The month's overdraft invoiced and cleared gives the overdraft its room back.
    with time_machine.travel(at(2, 28, 13), tick=False):
        assert contract_invoices_due()["overage"] == 1
    run.refresh_from_db()
    assert run.resumable_at == at(2, 28, 13)
