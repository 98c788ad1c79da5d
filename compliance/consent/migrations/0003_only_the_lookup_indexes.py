

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('compliance', '0011_consent_moves_to_the_ledger'),
        ('consent', '0002_ledger_append_only_and_earlier_consents'),
    ]

    operations = [
        migrations.AlterField(
            model_name='consentrecord',
            name='stream',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='compliance.stream'),
        ),
        migrations.AlterField(
            model_name='consentrecord',
            name='tenant',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='compliance.tenant'),
        ),
        migrations.AlterField(
            model_name='consentrecord',
            name='topic',
            field=models.ForeignKey(db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='compliance.topic'),
        ),
        migrations.AlterField(
            model_name='consentstate',
            name='record',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='consent.consentrecord'),
        ),
        migrations.AlterField(
            model_name='consentstate',
            name='stream',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='compliance.stream'),
        ),
        migrations.AlterField(
            model_name='consentstate',
            name='tenant',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='compliance.tenant'),
        ),
        migrations.AlterField(
            model_name='consentstate',
            name='topic',
            field=models.ForeignKey(db_index=False, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='compliance.topic'),
        ),
    ]
