"""The reply side: what each reply says, and getting it to Messenger in order."""
