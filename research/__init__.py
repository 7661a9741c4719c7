"""The experiments that chose the bundled model's recipe (research/README.md). Nothing in the
product imports this package (tests/test_layers.py)."""
