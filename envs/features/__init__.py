"""Feature-engineering environments (issue 8): building a dataset's features one transformation at a time."""
