"""The HTTP edge: routes, the report pages, the privacy page, waitress."""
