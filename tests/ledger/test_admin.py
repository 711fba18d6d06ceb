"""Admin: ledger models are read-only; grant and adjust go through the services."""

from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client

from ledger.models import CreditAccount, CreditBucket, LedgerEntry, LedgerTransaction
from ledger.selectors import available_get, ledger_verify
from ledger.services import ledger_grant
from tenants.models import Tenant

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_user() -> User:
    return User.objects.create_superuser("root", "root@example.com", "pw")


@pytest.fixture
def admin_client(client: Client, admin_user: User) -> Client:
    client.force_login(admin_user)
    return client


@pytest.fixture
def account(tenant: Tenant) -> CreditAccount:
    ledger_grant(
        tenant=tenant, credits=10, policy="permanent", source="topup", external_reference="pack"
    )
    return CreditAccount.objects.get(tenant=tenant)


def test_ledger_models_are_read_only(admin_client: Client, account: CreditAccount) -> None:
    bucket = CreditBucket.objects.get()
    entry = LedgerEntry.objects.get()
    for url in ("creditbucket", "ledgerentry", "ledgertransaction", "credithold", "creditaccount"):
        assert admin_client.get(f"/admin/ledger/{url}/").status_code == 200
        assert admin_client.get(f"/admin/ledger/{url}/add/").status_code == 403
    assert admin_client.get(f"/admin/ledger/creditbucket/{bucket.pk}/change/").status_code == 200
    changed = admin_client.post(
        f"/admin/ledger/creditbucket/{bucket.pk}/change/", {"remaining": "999"}
    )
    assert changed.status_code == 403
    deleted = admin_client.post(f"/admin/ledger/ledgerentry/{entry.pk}/delete/", {"post": "yes"})
    assert deleted.status_code == 403
    assert CreditBucket.objects.get().remaining == Decimal("10")


def test_grant_action_shows_a_form_then_grants_once(
    admin_client: Client, admin_user: User, account: CreditAccount, tenant: Tenant
) -> None:
    url = "/admin/ledger/creditaccount/"
    form = admin_client.post(url, {"action": "grant_credits", "_selected_action": [account.pk]})
    assert form.status_code == 200
    token = form.context["form"].initial["token"]
    assert b'name="credits"' in form.content

    post = {
        "action": "grant_credits",
        "_selected_action": [account.pk],
        "apply": "1",
        "credits": "25",
        "policy": "rolling_12m",
        "reason": "goodwill",
        "token": token,
    }
    assert admin_client.post(url, post).status_code == 302
    assert admin_client.post(url, post).status_code == 302  # a double submit grants once
    tx = LedgerTransaction.objects.get(kind="grant", actor=admin_user)
    assert (tx.memo, tx.source_type, tx.amount) == ("goodwill", "admin", Decimal("25"))
    assert available_get(tenant=tenant) == Decimal("35")

    missing = {**post, "reason": "", "token": "t2"}
    again = admin_client.post(url, missing)
    assert again.status_code == 200
    assert again.context["form"].errors == {"reason": ["This field is required."]}


def test_adjust_action_calls_the_service_with_the_admin_as_actor(
    admin_client: Client, admin_user: User, account: CreditAccount, tenant: Tenant
) -> None:
    url = "/admin/ledger/creditaccount/"
    post = {
        "action": "adjust_credits",
        "_selected_action": [account.pk],
        "apply": "1",
        "credits": "-4",
        "reason": "double-charged import",
        "token": "tok-1",
    }
    response = admin_client.post(url, post, follow=True)
    assert [str(m) for m in response.context["messages"]] == ["acme: adjusted by -4 credits."]
    tx = LedgerTransaction.objects.get(kind="adjustment")
    assert (tx.actor_id, tx.memo, tx.amount) == (
        admin_user.pk,
        "double-charged import",
        Decimal("-4"),
    )
    too_much = admin_client.post(url, {**post, "credits": "-100", "token": "tok-2"}, follow=True)
    assert [str(m) for m in too_much.context["messages"]] == [
        "acme: The available balance cannot cover this charge."
    ]
    assert available_get(tenant=tenant) == Decimal("6")
    assert ledger_verify() == []


def test_staff_without_the_permission_cannot_grant_or_adjust(
    client: Client, account: CreditAccount, tenant: Tenant
) -> None:
    """Staff who may view accounts but hold neither ledger.grant_credits nor
    ledger.adjust_credits are offered neither action, and posting one moves nothing."""
    user = User.objects.create_user("viewer", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_creditaccount"))
    client.force_login(user)
    url = "/admin/ledger/creditaccount/"

    listing = client.get(url)
    posted = client.post(
        url,
        {
            "action": "grant_credits",
            "_selected_action": [account.pk],
            "apply": "1",
            "credits": "25",
            "policy": "permanent",
            "reason": "goodwill",
            "token": "t",
        },
    )

    assert listing.status_code == 200
    assert b'value="grant_credits"' not in listing.content
    assert b'value="adjust_credits"' not in listing.content
    assert posted.status_code == 200  # the changelist again, the action ignored
    assert available_get(tenant=tenant) == Decimal("10")
