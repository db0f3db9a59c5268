from django.db import migrations


def create_operator_role(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Group.objects.get_or_create(name="line operator")


class Migration(migrations.Migration):
    dependencies = [
        ("scrapannot", "0004_policy_setting"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [migrations.RunPython(create_operator_role, migrations.RunPython.noop)]
