"""The WSGI entry point for gunicorn and `flask --app wsgi`."""

from stspolicy.app import create_app

app = create_app()
