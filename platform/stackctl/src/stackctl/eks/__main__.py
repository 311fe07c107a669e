"""`python -m stackctl.eks`: the entry point the `deploy-eks` and `push-images` nox sessions run."""

from stackctl.eks.cli import app

app()
