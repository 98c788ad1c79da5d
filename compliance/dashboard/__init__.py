"""The compliance dashboard: the first page staff see in the admin. Open opt-outs by deadline,
how fast opt-outs are applied, complaint rates against the 0.1% and 0.3% lines, report and bounce
volumes, data-subject requests due and domain health, each figure linking to the list behind it.

A top layer like compliance.dsr: it reads every other app's data, and nothing imports it. Its
figures come from roll-ups (`DailyRollup`, fbl's `DailyCount`) and from indexes bounded by open
work, so the page costs the same at ten thousand or ten million suppressions."""
