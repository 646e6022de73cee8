"""Work after the commit, on threads of its own: AI enrichment, the WAL's upkeep."""
