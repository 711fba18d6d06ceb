"""What each membership role may do in the portal (issue 12's rules).

A page asks for one `Capability` per HTTP method; templates read the same answers from
`access`, so the UI never offers what the role cannot do.
"""

from dataclasses import dataclass
from enum import StrEnum

from tenants.models import Membership

Role = Membership.Role


class Capability(StrEnum):
    READ = "read"  # every member
    BUY = "buy"  # top-ups, cards, auto top-up, plan and seats
    MANAGE = "manage"  # API keys, webhook endpoints, team (not owners), alerts
    OWN = "own"  # owners: make or remove owners


_GRANTED: dict[str, frozenset[Capability]] = {
    Role.OWNER: frozenset(Capability),
    Role.ADMIN: frozenset({Capability.READ, Capability.BUY, Capability.MANAGE}),
    Role.BILLING: frozenset({Capability.READ, Capability.BUY}),
    Role.MEMBER: frozenset({Capability.READ}),
}


@dataclass(frozen=True)
class Access:
    """A member's answers, for views (`allows`) and templates (`access.buy`)."""

    role: str

    def allows(self, capability: Capability) -> bool:
        return capability in _GRANTED.get(self.role, frozenset())

    @property
    def buy(self) -> bool:
        return self.allows(Capability.BUY)

    @property
    def manage(self) -> bool:
        return self.allows(Capability.MANAGE)

    @property
    def own(self) -> bool:
        return self.allows(Capability.OWN)
