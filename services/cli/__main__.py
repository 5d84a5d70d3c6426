"""``python -m services.cli``: the ``wbl`` command."""

from services.cli import app

if __name__ == "__main__":  # not when a child process started with ``spawn`` imports it
    app()
