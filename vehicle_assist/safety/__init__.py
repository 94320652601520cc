"""The safety lane: the alert table, the alert manager and the spoken alert phrases."""
