"""The "Instructors" group: staff in it author lessons, preview, arrange and revert."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GROUP = "Instructors"
AUTHORING = ("module", "lesson", "step", "question", "term")
PERMISSIONS = [
    f"{action}_{model}" for model in AUTHORING for action in ("add", "change", "view")
] + ["view_lessonversion"]


def create_group(apps, schema_editor):
    # Permissions are normally created after all migrations have run; create them
    # now so the group can hold them on a fresh database.
    config = apps.get_app_config("lessons")
    config.models_module = True
    create_permissions(config, apps=apps, verbosity=0)
    config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.get_or_create(name=GROUP)
    found = Permission.objects.filter(
        content_type__app_label="lessons", codename__in=PERMISSIONS
    )
    if found.count() != len(PERMISSIONS):
        missing = set(PERMISSIONS) - set(found.values_list("codename", flat=True))
        raise RuntimeError(f"missing permissions: {', '.join(sorted(missing))}")
    group.permissions.add(*found)


def remove_group(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name=GROUP).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("lessons", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_group, remove_group)]
