"""fileconvert settings, driven by environment variables (documented in README).

With no variables set this is the embedded mode: SQLite, files on local disk, a
file-system Celery broker, everything kept under ``FILECONVERT_DATA_DIR``.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import dj_database_url

from fileconvert.env import ConfigError, env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(env_str("FILECONVERT_DATA_DIR", str(BASE_DIR / "var"))).resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)

PRODUCTION = env_str("FILECONVERT_ENV", "development") == "production"
DEBUG = env_bool("DEBUG", False)


def _secret_key() -> str:
    key = env_str("SECRET_KEY")
    if key:
        return key
    if PRODUCTION:
        raise ConfigError("SECRET_KEY must be set when FILECONVERT_ENV=production")
    # Embedded mode: one random key per data directory, kept across restarts.
    path = DATA_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "fileconvert.apps.FileconvertConfig",
    "accounts",
    "uploads",
    "review",
    "search",
    "conversions",
    "sharing",
    "metadata",
]

MIDDLEWARE = [
    "fileconvert.middleware.RequestIdMiddleware",
    "fileconvert.middleware.MetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "fileconvert.middleware.UnhandledErrorMiddleware",
]

ROOT_URLCONF = "fileconvert.urls"
WSGI_APPLICATION = "fileconvert.wsgi.application"
APPEND_SLASH = False

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{DATA_DIR / 'db.sqlite3'}")
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        # WAL + IMMEDIATE: the web server and the worker write to the same file.
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
# The per-job statements (fileconvert.fastsql) are prepared once per connection on
# PostgreSQL. Off for a PgBouncer in transaction pooling older than 1.22 (or with max_prepared_statements = 0), whose server
# connections change under a client and so lose its prepared statements.
DATABASE_PREPARED_STATEMENTS = env_bool("DATABASE_PREPARED_STATEMENTS", True)
if (
    DATABASES["default"]["ENGINE"] in ("django.db.backends.postgresql", "django.contrib.gis.db.backends.postgis")
    and DATABASE_PREPARED_STATEMENTS
):
    # Django's cursors bind on the client and never prepare; fastsql's explicitly prepare
    # (psycopg needs a threshold set for that, and keeps at most 100 per connection).
    DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = 5
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

# --- Redis, cache, Celery -------------------------------------------------------
REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    # Shared by every process of the embedded mode (throttle counters must be).
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(DATA_DIR / "cache"),
        }
    }

BROKER_DIR = DATA_DIR / "broker"
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL or "filesystem://")
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {}
if CELERY_BROKER_URL.startswith("filesystem://"):
    for sub in ("queue", "processed", "control"):
        (BROKER_DIR / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "control_folder": str(BROKER_DIR / "control"),
        "polling_interval": 0.05,  # the default 1 s caps a worker at about one task a second
        "store_processed": False,
    }
else:
    # Task hard limits (below) stay under this, so a long task is never redelivered
    # while it still runs.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600)}
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_QUEUE", "fileconvert")
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True  # job state lives in our tables
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 1800)
CELERY_TASK_SOFT_TIME_LIMIT = CELERY_TASK_TIME_LIMIT - 60
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE = {
    "purge-expired-anonymous-orgs": {
        "task": "accounts.tasks.purge_expired_anonymous_orgs",
        "schedule": 300.0,
    },
    "search-reconcile": {"task": "search.tasks.reconcile", "schedule": 600.0},
    "sweep-expired-files": {"task": "uploads.tasks.sweep_expired", "schedule": 60.0},
    "requeue-stuck-files": {"task": "uploads.tasks.requeue_stuck_files", "schedule": 300.0},
    "requeue-stuck-conversions": {"task": "conversions.tasks.requeue_stuck_jobs", "schedule": 120.0},
    "review-overdue": {"task": "review.tasks.apply_overdue_policy", "schedule": 900.0},
    "review-purge-rejected": {"task": "review.tasks.purge_rejected", "schedule": 3600.0},
}

# --- Storage ---------------------------------------------------------------------
S3_BUCKET = env_str("S3_BUCKET")
MEDIA_ROOT = DATA_DIR / "media"
MEDIA_ROOT.mkdir(exist_ok=True)
MEDIA_URL = "/media/"
# Collected static files; the container image bakes them in at build time (STATIC_ROOT=/app/static).
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(DATA_DIR / "static"))).resolve()
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STATIC_URL = "/static/"
if S3_BUCKET:
    _default_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": S3_BUCKET,
            "endpoint_url": env_str("S3_ENDPOINT_URL") or None,
            "region_name": env_str("S3_REGION", "us-east-1"),
            "access_key": env_str("S3_ACCESS_KEY_ID") or None,
            "secret_key": env_str("S3_SECRET_ACCESS_KEY") or None,
            "default_acl": None,
            "querystring_auth": True,
            "file_overwrite": False,
            "addressing_style": env_str("S3_ADDRESSING_STYLE", "path"),
            "signature_version": "s3v4",
        },
    }
else:
    _default_storage = {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(MEDIA_ROOT)}}
STORAGES = {
    "default": _default_storage,
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# --- Request limits ----------------------------------------------------------------
DATA_UPLOAD_MAX_NUMBER_FIELDS = env_int("MAX_FORM_FIELDS", 200)
DATA_UPLOAD_MAX_NUMBER_FILES = env_int("MAX_FORM_FILES", 100)
DATA_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
FILE_UPLOAD_TEMP_DIR = str(DATA_DIR / "tmp")
Path(FILE_UPLOAD_TEMP_DIR).mkdir(parents=True, exist_ok=True)

# --- Product settings --------------------------------------------------------------
FILECONVERT = {
    "GATEWAY_KEY": env_str("GATEWAY_KEY"),
    "ANON_SESSION_TTL_SECONDS": env_int("ANON_SESSION_TTL_SECONDS", 2 * 3600, minimum=60),
    "USER_TOKEN_TTL_SECONDS": env_int("USER_TOKEN_TTL_SECONDS", 12 * 3600, minimum=60),
    "DEFAULT_STORAGE_QUOTA_BYTES": env_int("DEFAULT_STORAGE_QUOTA_BYTES", 10 * 1024**3, minimum=0),
    "ANON_STORAGE_QUOTA_BYTES": env_int("ANON_STORAGE_QUOTA_BYTES", 200 * 1024**2, minimum=0),
    "AUDIT_RETENTION_DAYS": env_int("AUDIT_RETENTION_DAYS", 365, minimum=1),
    "DEFAULT_FILE_QUOTA": env_int("DEFAULT_FILE_QUOTA", 100_000, minimum=0),
    "ANON_FILE_QUOTA": env_int("ANON_FILE_QUOTA", 200, minimum=0),
    "MAX_UPLOAD_BYTES": env_int("MAX_UPLOAD_BYTES", 5 * 1024**3, minimum=1),
    # Streamed bodies announced at this size or more are written with O_DIRECT on local disk (0 = never).
    "DIRECT_WRITE_MIN_BYTES": env_int("DIRECT_WRITE_MIN_BYTES", 16 * 1024**2, minimum=0),
    "UPLOAD_PENDING_TTL_SECONDS": env_int("UPLOAD_PENDING_TTL_SECONDS", 300, minimum=30),
    "ANON_FILE_TTL_SECONDS": env_int("ANON_FILE_TTL_SECONDS", 24 * 3600, minimum=60),
    "PRESIGNED_EXPIRES_SECONDS": env_int("PRESIGNED_EXPIRES_SECONDS", 300, minimum=30),
    "MAX_EMAIL_BYTES": env_int("MAX_EMAIL_BYTES", 50 * 1024**2, minimum=1024),
    "MAX_EMAIL_PARTS": env_int("MAX_EMAIL_PARTS", 500, minimum=1),
    "MAX_EMAIL_DEPTH": env_int("MAX_EMAIL_DEPTH", 10, minimum=1),
    "MAX_EMAIL_HEADER_BYTES": env_int("MAX_EMAIL_HEADER_BYTES", 256 * 1024, minimum=1024),
    "MAX_IMAGE_PIXELS": env_int("MAX_IMAGE_PIXELS", 80_000_000, minimum=1),
    # Search indexing (search app): caps on what one file contributes, and the query length.
    "SEARCH_MAX_TEXT_CHARS": env_int("SEARCH_MAX_TEXT_CHARS", 1_000_000, minimum=1000),
    "SEARCH_PDF_MAX_PAGES": env_int("SEARCH_PDF_MAX_PAGES", 200, minimum=1),
    "SEARCH_MAX_UNZIPPED_BYTES": env_int("SEARCH_MAX_UNZIPPED_BYTES", 64 * 1024**2, minimum=1024**2),
    "SEARCH_EXTRACT_TIMEOUT_SECONDS": env_int("SEARCH_EXTRACT_TIMEOUT_SECONDS", 60, minimum=1),
    "SEARCH_MAX_QUERY_CHARS": env_int("SEARCH_MAX_QUERY_CHARS", 256, minimum=16),
    # A query ranks at most this many matches, those of the newest files (decision 0005).
    "SEARCH_RANK_WINDOW": env_int("SEARCH_RANK_WINDOW", 1000, minimum=100),
    "PROCESS_MAX_ATTEMPTS": env_int("PROCESS_MAX_ATTEMPTS", 3, minimum=1),
    # Celery's soft limit of one file's processing (the hard one 60 s later), below the
    # visibility timeout: what ends an inspection that runs in the worker (decision 0013).
    "PROCESS_TIMEOUT_SECONDS": env_int("PROCESS_TIMEOUT_SECONDS", 900, minimum=30),
    # Conversion jobs: wall clock of one conversion (kept below the Celery soft limit), attempts before a
    # job is poison, how long the download link of a result lives.
    "CONVERT_TIMEOUT_SECONDS": env_int("CONVERT_TIMEOUT_SECONDS", 600, minimum=5),
    "CONVERT_MAX_ATTEMPTS": env_int("CONVERT_MAX_ATTEMPTS", 3, minimum=1),
    "CONVERT_DOWNLOAD_TTL_SECONDS": env_int("CONVERT_DOWNLOAD_TTL_SECONDS", 3600, minimum=60),
    # Platform review: staged files are due this long after they were uploaded (seed 001: 7 days).
    "REVIEW_WINDOW_SECONDS": env_int("REVIEW_WINDOW_SECONDS", 7 * 24 * 3600, minimum=60),
    # Download and share (sharing app): ?dl= link lifetimes, share link limits, Range cap.
    "DOWNLOAD_LINK_TTL_SECONDS": env_int("DOWNLOAD_LINK_TTL_SECONDS", 3600, minimum=1),
    "DOWNLOAD_LINK_MAX_TTL_SECONDS": env_int("DOWNLOAD_LINK_MAX_TTL_SECONDS", 7 * 24 * 3600, minimum=1),
    "SHARE_LINK_MAX_TTL_SECONDS": env_int("SHARE_LINK_MAX_TTL_SECONDS", 365 * 24 * 3600, minimum=60),
    "SHARE_MAX_RECIPIENTS": env_int("SHARE_MAX_RECIPIENTS", 50, minimum=1),
    "DOWNLOAD_MAX_RANGES": env_int("DOWNLOAD_MAX_RANGES", 16, minimum=1),
    # What beat does with pending files past their deadline: escalate | reject (decision 0004).
    "REVIEW_OVERDUE_POLICY": env_str("REVIEW_OVERDUE_POLICY", "escalate"),
    "REVIEW_REJECTED_RETENTION_DAYS": env_int("REVIEW_REJECTED_RETENTION_DAYS", 30, minimum=0),
    "REVIEW_PREVIEW_TTL_SECONDS": env_int("REVIEW_PREVIEW_TTL_SECONDS", 3600, minimum=60),
    "METADATA_FFPROBE_TIMEOUT_SECONDS": env_int("METADATA_FFPROBE_TIMEOUT_SECONDS", 10, minimum=1),
    "METADATA_EDIT_TIMEOUT_SECONDS": env_int("METADATA_EDIT_TIMEOUT_SECONDS", 120, minimum=5),
    "METADATA_MAX_EDIT_BYTES": env_int("METADATA_MAX_EDIT_BYTES", 1024**3, minimum=1024),
}

# --- REST framework ----------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "fileconvert.api.auth.GatewayAuthentication",
        "fileconvert.api.auth.ApiKeyAuthentication",
        "fileconvert.api.auth.BearerTokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["fileconvert.api.permissions.IsAuthenticatedIdentity"],
    "DEFAULT_RENDERER_CLASSES": ["fileconvert.api.envelope.EnvelopeRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "rest_framework.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_THROTTLE_CLASSES": [
        "fileconvert.api.throttling.IdentityRateThrottle",
        "fileconvert.api.throttling.AnonymousRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "identity": env_str("THROTTLE_IDENTITY", "1200/min"),
        "anon": env_str("THROTTLE_ANON", "120/min"),
        "credentials": env_str("THROTTLE_CREDENTIALS", "10/min"),
    },
    "NUM_PROXIES": env_int("TRUSTED_PROXY_COUNT", 0, minimum=0),
    "EXCEPTION_HANDLER": "fileconvert.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_METADATA_CLASS": None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "fileconvert API",
    "DESCRIPTION": (
        "Multi-tenant file platform: uploads, review, conversion, metadata, sharing. "
        "Authenticate with `X-API-Key`, `Authorization: Bearer`, or gateway identity headers. "
        "Successful responses are wrapped as `{data, request_id, timestamp}`; errors are "
        '`{status: "error", request_id, error, details: {message}}`.'
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "VisibilityEnum": "uploads.models.Visibility",
        "FileStatusEnum": "uploads.models.FileStatus",
        "JobStatusEnum": "conversions.models.JobStatus",
    },
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "fileconvert.api.schema.envelope_hook"],
}

# --- Internationalisation ---------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Security (production) ----------------------------------------------------------
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
if PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_REDIRECT_EXEMPT = [r"^api/health", r"^metrics$"]
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True

# --- Logging -------------------------------------------------------------------------
LOG_LEVEL = env_str("LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "fileconvert.logging.RequestIdFilter"}},
    "formatters": {
        "json": {"()": "fileconvert.logging.JsonFormatter"},
        "text": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["request_id"],
            "formatter": env_str("LOG_FORMAT", "json"),
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.request": {"level": "CRITICAL"},  # our middleware logs failures with the request id
        "django.server": {"level": "WARNING"},
        "kombu.connection": {"level": "ERROR"},  # the file-system transport warns on every publish
    },
}
