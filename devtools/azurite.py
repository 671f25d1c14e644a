"""Start Azurite (pinned in package.json) for tests and the demo (filled in by the stores work)."""
