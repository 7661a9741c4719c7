"""``facelabel watch``: label complete new files as they arrive under some folders. A front,
like the CLI: it makes jobs (worker/) from what the filesystem reports."""
