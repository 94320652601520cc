"""One module per CLI command; each exposes ``register(app)``. Shared output helpers in ``_out``."""
