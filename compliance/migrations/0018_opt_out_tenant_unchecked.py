"""Opt-out requests keep their tenant without a database-side foreign key check (Django still
refuses to delete a tenant that has them): the check cost about a tenth of an import."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("compliance", "0017_staff_roles"),
    ]

    operations = [
        migrations.AlterField(
            model_name="optoutrequest",
            name="tenant",
            field=models.ForeignKey(
                db_constraint=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="compliance.tenant",
            ),
        ),
    ]
