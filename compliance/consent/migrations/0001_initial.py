

import django.db.models.deletion
import django.db.models.functions.comparison
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('compliance', '0010_tenant_jurisdiction'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='ConsentText',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('sha256', models.CharField(editable=False, max_length=64)),
                ('body', models.TextField()),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('tenant_key', models.GeneratedField(db_persist=True, expression=django.db.models.functions.comparison.Coalesce('tenant', 0), output_field=models.BigIntegerField())),
                ('tenant', models.ForeignKey(null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='compliance.tenant')),
            ],
            options={
                'verbose_name': 'consent text',
                'ordering': ['-created_at'],
            },
        ),
        migrations.CreateModel(
            name='ConsentRecord',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('actor_label', models.CharField(help_text='Who, as a person would read it.', max_length=200)),
                ('via', models.CharField(help_text='admin, api, command, import or system', max_length=20)),
                ('address', models.CharField(help_text='Empty once erased.', max_length=320, null=True)),
                ('address_hash', models.BinaryField(max_length=32)),
                ('action', models.CharField(choices=[('granted', 'Granted'), ('withdrawn', 'Withdrawn')], max_length=10)),
                ('basis', models.CharField(choices=[('consent', 'Consent (GDPR Art. 6(1)(a))'), ('soft_opt_in', 'Soft opt-in (ePrivacy Art. 13(2))'), ('contract', 'Contract (Art. 6(1)(b))'), ('legitimate_interest', 'Legitimate interest (Art. 6(1)(f))')], max_length=20)),
                ('method', models.CharField(choices=[('web_form', 'Web form'), ('double_opt_in', 'Double opt-in'), ('import', 'Import'), ('api', 'API'), ('preference_centre', 'Preference centre'), ('staff', 'Staff'), ('unsubscribe', 'Unsubscribe'), ('complaint', 'Complaint')], max_length=20)),
                ('jurisdiction', models.CharField(blank=True, max_length=8)),
                ('occurred_at', models.DateTimeField(help_text='When it was given or withdrawn.')),
                ('recorded_at', models.DateTimeField(auto_now_add=True)),
                ('ip', models.GenericIPAddressField(null=True)),
                ('user_agent', models.CharField(blank=True, max_length=500)),
                ('page_url', models.CharField(blank=True, max_length=2000)),
                ('form_id', models.CharField(blank=True, max_length=200)),
                ('privacy_notice_version', models.CharField(blank=True, max_length=100)),
                ('confirmed_at', models.DateTimeField(help_text='Double opt-in: when confirmed.', null=True)),
                ('confirmed_ip', models.GenericIPAddressField(null=True)),
                ('cause', models.CharField(blank=True, max_length=100)),
                ('import_key', models.CharField(editable=False, max_length=64, null=True)),
                ('actor_api_key', models.ForeignKey(db_constraint=False, db_index=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='compliance.apikey')),
                ('actor_user', models.ForeignKey(db_constraint=False, db_index=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('stream', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='compliance.stream')),
                ('tenant', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='compliance.tenant')),
                ('topic', models.ForeignKey(null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='compliance.topic')),
                ('text', models.ForeignKey(null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='consent.consenttext')),
            ],
            options={
                'verbose_name': 'consent record',
                'ordering': ['-occurred_at', '-id'],
            },
        ),
        migrations.CreateModel(
            name='PendingConfirmation',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('token_hash', models.CharField(editable=False, max_length=64, unique=True)),
                ('address', models.CharField(max_length=320, null=True)),
                ('address_hash', models.BinaryField(max_length=32)),
                ('basis', models.CharField(choices=[('consent', 'Consent (GDPR Art. 6(1)(a))'), ('soft_opt_in', 'Soft opt-in (ePrivacy Art. 13(2))'), ('contract', 'Contract (Art. 6(1)(b))'), ('legitimate_interest', 'Legitimate interest (Art. 6(1)(f))')], max_length=20)),
                ('jurisdiction', models.CharField(blank=True, max_length=8)),
                ('evidence', models.JSONField(default=dict, help_text="The sign-up's evidence, as posted.")),
                ('language', models.CharField(blank=True, max_length=10)),
                ('requested_at', models.DateTimeField()),
                ('expires_at', models.DateTimeField()),
                ('status', models.CharField(choices=[('pending', 'Waiting for the click'), ('confirmed', 'Confirmed'), ('expired', 'Expired')], default='pending', max_length=10)),
                ('record', models.ForeignKey(null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='consent.consentrecord')),
                ('stream', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='compliance.stream')),
                ('tenant', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='compliance.tenant')),
                ('text', models.ForeignKey(null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='consent.consenttext')),
                ('topic', models.ForeignKey(null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='compliance.topic')),
            ],
            options={
                'ordering': ['-requested_at'],
            },
        ),
        migrations.CreateModel(
            name='ConsentState',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('address_hash', models.BinaryField(max_length=32)),
                ('action', models.CharField(choices=[('granted', 'Granted'), ('withdrawn', 'Withdrawn')], max_length=10)),
                ('basis', models.CharField(choices=[('consent', 'Consent (GDPR Art. 6(1)(a))'), ('soft_opt_in', 'Soft opt-in (ePrivacy Art. 13(2))'), ('contract', 'Contract (Art. 6(1)(b))'), ('legitimate_interest', 'Legitimate interest (Art. 6(1)(f))')], max_length=20)),
                ('since', models.DateTimeField()),
                ('topic_key', models.GeneratedField(db_persist=True, expression=django.db.models.functions.comparison.Coalesce('topic', 0), output_field=models.BigIntegerField())),
                ('record', models.ForeignKey(on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='consent.consentrecord')),
                ('stream', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='compliance.stream')),
                ('tenant', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='compliance.tenant')),
                ('topic', models.ForeignKey(null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='compliance.topic')),
            ],
            options={
                'verbose_name': 'consent state',
                'constraints': [models.UniqueConstraint(fields=('address_hash', 'tenant', 'stream', 'topic_key'), name='consent_state_once')],
            },
        ),
        migrations.AddConstraint(
            model_name='consenttext',
            constraint=models.UniqueConstraint(fields=('sha256', 'tenant_key'), name='consent_text_once'),
        ),
        migrations.AddIndex(
            model_name='consentrecord',
            index=models.Index(fields=['address_hash', 'tenant'], name='consent_con_address_5e505c_idx'),
        ),
        migrations.AddConstraint(
            model_name='consentrecord',
            constraint=models.UniqueConstraint(fields=('import_key',), name='consent_import_once'),
        ),
        migrations.AddIndex(
            model_name='pendingconfirmation',
            index=models.Index(fields=['address_hash', 'requested_at'], name='consent_pen_address_f9c9b1_idx'),
        ),
    ]
