"""The services of the local stack, one module per kind."""
