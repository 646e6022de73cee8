"""expensebot: a Messenger bot that logs expenses to SQLite and never loses one."""

__version__ = "0.2.0"
