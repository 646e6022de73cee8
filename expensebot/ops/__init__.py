"""Operator commands: serve, check, demo, backup, export and the rest."""
