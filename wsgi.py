"""WSGI entry point: `gunicorn wsgi:app`, `flask --app wsgi …`."""
from qcflow import create_app

app = create_app()
