import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fileconvert.settings")

app = Celery("fileconvert")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.task(name="fileconvert.ping")
def ping() -> str:
    """Round trip through broker and worker; used by readiness tests."""
    return "pong"
