"""expensebot: a Messenger bot that logs expenses to SQLite and never loses one."""
