

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('compliance', '0011_consent_moves_to_the_ledger'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='DataSubjectRequest',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('kind', models.CharField(choices=[('access', 'Access (Art. 15)'), ('erasure', 'Erasure (Art. 17)'), ('objection', 'Objection to direct marketing (Art. 21)'), ('rectification', 'Rectification (Art. 16)'), ('restriction', 'Restriction of processing (Art. 18)')], max_length=20)),
                ('address', models.CharField(blank=True, max_length=320, null=True)),
                ('address_hash', models.BinaryField(max_length=32)),
                ('received_at', models.DateTimeField()),
                ('due', models.DateField(help_text='One month after receipt, by the calendar (Art. 12(3)).')),
                ('extended_by_months', models.PositiveSmallIntegerField(default=0)),
                ('extension_reason', models.TextField(blank=True)),
                ('status', models.CharField(choices=[('awaiting_verification', 'Awaiting verification'), ('verified', 'Verified'), ('in_progress', 'In progress'), ('fulfilled', 'Fulfilled'), ('refused', 'Refused'), ('expired', 'Expired unverified')], default='awaiting_verification', max_length=30)),
                ('status_reason', models.TextField(blank=True, help_text='Why it was refused, or a note.')),
                ('verification_token_hash', models.CharField(editable=False, max_length=64, unique=True)),
                ('verification_expires_at', models.DateTimeField()),
                ('verified_at', models.DateTimeField(blank=True, null=True)),
                ('fulfilled_at', models.DateTimeField(blank=True, null=True)),
                ('export_token_hash', models.CharField(blank=True, editable=False, max_length=64, null=True)),
                ('export_expires_at', models.DateTimeField(blank=True, null=True)),
                ('progress', models.JSONField(blank=True, default=dict, editable=False)),
                ('handled_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('tenant', models.ForeignKey(blank=True, help_text='Empty: every tenant of the operator.', null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='compliance.tenant')),
            ],
            options={
                'verbose_name': 'data-subject request',
                'ordering': ['due', 'received_at'],
            },
        ),
        migrations.CreateModel(
            name='RequestStep',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('actor_label', models.CharField(help_text='Who, as a person would read it.', max_length=200)),
                ('via', models.CharField(help_text='admin, api, command, import or system', max_length=20)),
                ('step', models.CharField(choices=[('received', 'Received'), ('verification_sent', 'Verification mail sent'), ('verified', 'Verified'), ('extended', 'Deadline extended'), ('started', 'Work started'), ('fulfilled', 'Fulfilled'), ('refused', 'Refused'), ('expired', 'Expired unverified'), ('exported', 'Export downloaded'), ('note', 'Note')], max_length=20)),
                ('note', models.TextField(blank=True)),
                ('occurred_at', models.DateTimeField(auto_now_add=True)),
                ('actor_api_key', models.ForeignKey(db_constraint=False, db_index=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='compliance.apikey')),
                ('actor_user', models.ForeignKey(db_constraint=False, db_index=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('request', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='steps', to='dsr.datasubjectrequest')),
            ],
            options={
                'ordering': ['occurred_at', 'id'],
            },
        ),
        migrations.AddIndex(
            model_name='datasubjectrequest',
            index=models.Index(fields=['status', 'due'], name='dsr_datasub_status_af3220_idx'),
        ),
        migrations.AddIndex(
            model_name='datasubjectrequest',
            index=models.Index(fields=['address_hash'], name='dsr_datasub_address_7b547b_idx'),
        ),
    ]
