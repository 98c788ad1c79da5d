"""One-click unsubscribe tokens, List-Unsubscribe headers, the landing page, the preference centre
and mailto unsubscribes."""
