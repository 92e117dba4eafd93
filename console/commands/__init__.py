"""The faces of the CLI: one module per command group, imported only when it runs."""
