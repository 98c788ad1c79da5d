from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("compliance", "0009_api_key_permissions"),
    ]

    operations = [
        migrations.AddField(
            model_name="tenant",
            name="jurisdiction",
            field=models.CharField(
                choices=[
                    ("AT", "AT"),
                    ("BE", "BE"),
                    ("BG", "BG"),
                    ("CA", "CA"),
                    ("CY", "CY"),
                    ("CZ", "CZ"),
                    ("DE", "DE"),
                    ("DK", "DK"),
                    ("EE", "EE"),
                    ("EEA", "EEA"),
                    ("EL", "EL"),
                    ("ES", "ES"),
                    ("EU", "EU"),
                    ("FI", "FI"),
                    ("FR", "FR"),
                    ("GB", "GB"),
                    ("GR", "GR"),
                    ("HR", "HR"),
                    ("HU", "HU"),
                    ("IE", "IE"),
                    ("IS", "IS"),
                    ("IT", "IT"),
                    ("LI", "LI"),
                    ("LT", "LT"),
                    ("LU", "LU"),
                    ("LV", "LV"),
                    ("MT", "MT"),
                    ("NL", "NL"),
                    ("NO", "NO"),
                    ("PL", "PL"),
                    ("PT", "PT"),
                    ("RO", "RO"),
                    ("SE", "SE"),
                    ("SI", "SI"),
                    ("SK", "SK"),
                    ("UK", "UK"),
                    ("US", "US"),
                ],
                default="EU",
                help_text="Whose law governs its marketing mail unless a send decision names another: EU/EEA and UK need consent (or soft opt-in), CA express or recent implied consent, US an opt-out.",
                max_length=8,
            ),
        ),
    ]
