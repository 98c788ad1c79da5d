from django.apps import AppConfig
from django.db.models.signals import post_save


class UnsubscribeConfig(AppConfig):
    name = "unsubscribe"
    verbose_name = "Unsubscribe"

    def ready(self) -> None:
        from suppression.models import SuppressionEvent
        from unsubscribe import checks  # noqa: F401  (registers the settings checks)
        from unsubscribe.receivers import retire_repeats_on_lift
        from unsubscribe.services import erasure  # noqa: F401  (registers its erasure steps)

        post_save.connect(
            retire_repeats_on_lift, sender=SuppressionEvent, dispatch_uid="unsubscribe-lift"
        )
        register_with_reports()


def register_with_reports() -> None:
    """Report handling (fbl) recognises our tokens and our mailto unsubscribes through what we
    register here: it imports nothing of this app (fbl/plugins.py)."""
    from fbl import plugins
    from unsubscribe import links, mail

    def read(token: str):
        claims = links.read_claims(token)
        if claims is None:
            return None
        return plugins.TokenClaims(
            recipient=claims.recipient,
            campaign=claims.campaign,
            resolve=lambda: links.recipient_for(claims),
        )

    plugins.register_token_reader(read)
    plugins.register_mail_handler(
        plugins.MailHandler(
            kind="unsubscribe",
            matches=mail.is_unsubscribe_mail,
            handle=mail.unsubscribe_by_mail,
            done=frozenset({"unsubscribed"}),
            ignored=frozenset({"auto-reply"}),
        )
    )
