import gc
import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

application = get_wsgi_application()

# What is loaded by now (the apps, the URLconf and its views) lives as long as the process:
# frozen, the cyclic garbage collector no longer walks it on every full collection. A batch of
# 1,000 usage events allocates enough to set off several, which cost it ~15 % of its CPU
# (bench/README.md, issue 9).
get_resolver().url_patterns  # noqa: B018 - imports the URLconf and the views now
gc.freeze()
