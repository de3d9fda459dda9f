"""WSGI entry point for other servers: `gunicorn 'cds_service.wsgi:app'`."""

from .api import create_app

app = create_app()
