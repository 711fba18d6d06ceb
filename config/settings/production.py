"""Production: every secret comes from the environment; HTTPS everywhere."""

from config.settings.base import *  # noqa: F403
from config.settings.base import env

DEBUG = False
SECRET_KEY = env.str("DJANGO_SECRET_KEY")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS")

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
X_FRAME_OPTIONS = "DENY"
CREDITLINE_API_DOCS = env.bool("CREDITLINE_API_DOCS", default=False)

# The fake gateway grants credits without a payment: production takes Stripe unless told
# otherwise, and `check --deploy` (billing.checks) refuses "fake" without the explicit opt-in.
BILLING_GATEWAY = env.str("BILLING_GATEWAY", default="stripe")
BILLING_ALLOW_FAKE_GATEWAY = env.bool("BILLING_ALLOW_FAKE_GATEWAY", default=False)

# The password seed_demo used to set is public: no login with it (tenants.logins).
CREDITLINE_REFUSE_DEMO_PASSWORD = True
