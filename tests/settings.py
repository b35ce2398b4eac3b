"""Test settings: the product's settings with per-xdist-worker isolation.

Each pytest-xdist worker gets its own data directory, its own Redis databases
(cache and broker) and so its own Celery queue, so workers never steal each
other's tasks or throttle counters.
"""

import os
import tempfile

_worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
_index = int(_worker[2:]) if _worker[2:].isdigit() else 0
os.environ["FILECONVERT_DATA_DIR"] = tempfile.mkdtemp(prefix=f"fileconvert-test-{_worker}-")
os.environ.setdefault("GATEWAY_KEY", "test-gateway-key-0123456789")

_redis = os.environ.get("REDIS_URL", "")
if _redis:
    _base = _redis.rsplit("/", 1)[0] if _redis.count("/") > 2 else _redis
    os.environ["REDIS_URL"] = f"{_base}/{1 + 2 * _index}"
    os.environ["CELERY_BROKER_URL"] = f"{_base}/{2 + 2 * _index}"

from fileconvert.settings import *  # noqa: E402, F403
from fileconvert.settings import REST_FRAMEWORK  # noqa: E402

# Concurrent test runs against one PostgreSQL server (several engineers on one machine)
# keep apart by setting FILECONVERT_TEST_DB_SUFFIX; pytest-django adds the xdist suffix.
_suffix = os.environ.get("FILECONVERT_TEST_DB_SUFFIX", "")
if _suffix and DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3":  # noqa: F405
    DATABASES["default"]["TEST"] = {"NAME": f"test_{DATABASES['default']['NAME']}_{_suffix}"}  # noqa: F405

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    # A file, as the embedded mode runs: WAL and the busy timeout make a worker thread and a
    # request wait for each other. Django's default in-memory test database uses SQLite's
    # shared cache, whose table locks fail at once ("database table is locked"), so the
    # real-worker tests failed now and then under load.
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / "test.sqlite3")}  # noqa: F405

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # speed; hashing is Django's concern
CELERY_TASK_DEFAULT_QUEUE = f"fileconvert-test-{_worker}"
REST_FRAMEWORK = {
    **REST_FRAMEWORK,
    "DEFAULT_THROTTLE_RATES": {"identity": "100000/min", "anon": "100000/min", "credentials": "100000/min"},
}
LOGGING_CONFIG = None
