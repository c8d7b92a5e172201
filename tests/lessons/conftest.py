from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User


@pytest.fixture
def instructor(client):
    """Return an instructor (staff, in the Instructors group), signed in on client."""
    user = User.objects.create_user("ines", password="pw-for-tests-only", is_staff=True)
    user.groups.add(Group.objects.get(name="Instructors"))
    client.force_login(user)
    return user
