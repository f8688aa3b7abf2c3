"""Sub-commands of the ``crface`` CLI: one module each, discovered by ``crface.cli``."""
