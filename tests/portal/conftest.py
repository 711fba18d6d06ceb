from collections.abc import Callable

import pytest
from django.contrib.auth.models import User
from django.test import Client

from tenants.models import Tenant
from tenants.services import membership_add

Login = Callable[..., Client]


@pytest.fixture
def login() -> Login:
    """A signed-in client for a new user holding `role` in each of `tenants`."""
    made = 0

    def sign_in(*tenants: Tenant, role: str = "owner") -> Client:
        nonlocal made
        made += 1
        user = User.objects.create_user(f"{role}{made}", email=f"{role}{made}@acme.test")
        for tenant in tenants:
            membership_add(tenant=tenant, user=user, role=role)
        client = Client()
        client.force_login(user)
        return client

    return sign_in
