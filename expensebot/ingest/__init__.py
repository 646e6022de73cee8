"""The write path: Meta's webhook bodies become rows, committed (or spooled) before the 200."""
