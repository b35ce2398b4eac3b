"""The product's settings for a bench's web process, with the uploads processing it
publishes (the source of ``POST /api/convert``: sniff, summary, thumbnail, then search
indexing) routed to the queue no bench worker consumes, as ``_conversions_app`` does for
the outputs: the workers then run the jobs alone, as the in-process baseline does."""

import os

from fileconvert.settings import *  # noqa: F403

CELERY_TASK_ROUTES = {"uploads.tasks.process_file": {"queue": os.environ.get("CELERY_QUEUE", "bench") + "-uploads-parked"}}
