"""Opt-outs recorded before 0014 get their due times, and are marked propagated when they were
applied (nothing was downstream then). `manage.py backfill_deadlines` does the same again."""

from django.db import migrations


def backfill(apps, schema_editor):
    from compliance.deadline_backfill import backfill

    backfill(apps.get_model("compliance", "OptOutRequest"), apps.get_model("compliance", "Tenant"))


class Migration(migrations.Migration):
    dependencies = [
        ("compliance", "0014_opt_out_deadlines"),
    ]

    operations = [
        migrations.RunPython(backfill, migrations.RunPython.noop, elidable=True),
    ]
