"""Command-line programs of keras-regnet: thin wrappers, no logic of their own."""
