"""Seed the bench database (run with DJANGO_SETTINGS_MODULE=bench.ingest_settings): see
`bench.seed.seed_ingest`. Prints the API key."""

import django

django.setup()

from bench.seed import seed_ingest  # noqa: E402

print(seed_ingest())
