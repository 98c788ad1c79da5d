"""The consent ledger: proof of each consent given or withdrawn (GDPR Art. 7), double opt-in, the
import of existing records, and the send decision built on them.

A layer of its own between the suppression list (below: it reads and writes entries) and the
report and recipient apps (above: they record grants and withdrawals through its service)."""
