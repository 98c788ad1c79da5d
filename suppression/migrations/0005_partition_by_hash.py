import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

from suppression import partitioning


def partition(apps, schema_editor):
    # SQLite, the embedded default, keeps one plain table.
    connection = schema_editor.connection
    if connection.vendor != "postgresql" or partitioning.partition_count(connection) is not None:
        return
    partitioning.rebuild(connection, partitions=settings.SUPPRESSION_PARTITIONS)


def unpartition(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "postgresql" or partitioning.partition_count(connection) is None:
        return
    partitioning.rebuild(connection, partitions=None)


class Migration(migrations.Migration):
    # Not one transaction: dropping the history's foreign key takes the list's ACCESS EXCLUSIVE
    # lock, which must not stay held while the rows are copied (checks read on meanwhile);
    # `partitioning.rebuild` is one transaction of its own.
    atomic = False

    dependencies = [
        ("suppression", "0004_history_erasure"),
    ]

    operations = [
        migrations.AlterField(
            model_name="suppressionevent",
            name="suppression",
            field=models.ForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="events",
                to="suppression.suppression",
            ),
        ),
        migrations.RunPython(partition, unpartition),
    ]
