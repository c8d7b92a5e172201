import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "scalelab.settings")

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    """Every test starts with no request counted against its address (127.0.0.1)."""
    from django.core.cache import cache

    cache.clear()
    yield
