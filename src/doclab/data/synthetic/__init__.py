"""The built-in synthetic document generator: one module per document layout."""
