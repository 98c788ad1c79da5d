from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('compliance', '0011_consent_moves_to_the_ledger'),
        ('unsubscribe', '0005_link_breadth'),
    ]

    operations = [
        migrations.AddIndex(
            model_name='unsubscriberequest',
            index=models.Index(
                condition=models.Q(("applied_at__isnull", False)),
                fields=["address_hash"],
                name="unsubscribe_address_hash",
            ),
        ),
    ]
