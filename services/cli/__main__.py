"""``python -m services.cli``: the ``wbl`` command."""

from services.cli import app

app()
