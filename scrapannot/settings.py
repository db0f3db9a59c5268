"""One settings module, driven by the environment.

With nothing set, scrapannot runs on its embedded default: SQLite in ./var, media in ./var/media,
Celery tasks executed in-process. Production sets DATABASE_URL (PostgreSQL), CELERY_BROKER_URL
(Redis), SECRET_KEY, DEBUG=0 and ALLOWED_HOSTS.
"""

import json
import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})


def env_bool(name: str, default: bool) -> bool:
    """A yes/no variable. Anything but the usual spellings is refused: DEBUG=flase must not
    quietly turn into "off" (or "on") in production."""
    value = os.environ.get(name)
    if value is None:
        return default
    word = value.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ImproperlyConfigured(
        f"{name}={value!r} is not a yes/no value: use 1/0, true/false, yes/no or on/off"
    )


def env_float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


VAR_DIR = Path(os.environ.get("SCRAPANNOT_VAR_DIR", BASE_DIR / "var"))

DEBUG = env_bool("DEBUG", True)
# The embedded default is for a first run on a laptop; production must set its own key.
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise RuntimeError("SECRET_KEY must be set when DEBUG is off")
    SECRET_KEY = "insecure-first-run-key-set-SECRET_KEY-in-production"  # noqa: S105
elif not DEBUG and (len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5):
    # Django's own deploy check (security.W009) only warns; a guessable key signs sessions and
    # password-reset links, so production refuses to start with one.
    raise ImproperlyConfigured(
        "SECRET_KEY is too weak for DEBUG=0: use at least 50 characters, e.g. "
        "python -c 'import secrets; print(secrets.token_urlsafe(50))'"
    )
ALLOWED_HOSTS = os.environ.get("ALLOWED_HOSTS", "127.0.0.1,localhost").split(",")
CSRF_TRUSTED_ORIGINS = [o for o in os.environ.get("CSRF_TRUSTED_ORIGINS", "").split(",") if o]

# Served over HTTPS behind a proxy that terminates TLS and sets X-Forwarded-Proto (the README's
# production recipe): HTTPS=1 turns all of these on; each can also be set on its own. Off by
# default, because on plain HTTP secure cookies are never sent back and logins silently fail.
HTTPS = env_bool("HTTPS", False)
if env_bool("SECURE_PROXY_SSL_HEADER", HTTPS):
    # Only behind a proxy that overwrites this header: a client could otherwise claim HTTPS.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", HTTPS)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # load balancers probe over plain HTTP
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", HTTPS)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", HTTPS)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000 if HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", HTTPS)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
# HSTS preloading submits the domain to the browsers' built-in list: a decision for a public
# domain's owner, not a default for a plant's intranet host.
SILENCED_SYSTEM_CHECKS = ["security.W021"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and ReDoc served from here, not from a CDN
    "guardian",
    "django_celery_beat",
    "scrapannot",
    "labeling",
    "adjudication",
    "mlloop",
    "operations",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "scrapannot.middleware.LazyMessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "scrapannot.urls"
WSGI_APPLICATION = "scrapannot.wsgi.application"

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
                "scrapannot.roles.roles_context",
            ],
        },
    },
]

if not os.environ.get("DATABASE_URL"):
    VAR_DIR.mkdir(parents=True, exist_ok=True)
DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{VAR_DIR / 'scrapannot.sqlite3'}",
        conn_max_age=env_int("DB_CONN_MAX_AGE", 60),
        # A persistent connection that PostgreSQL dropped (a restart) is replaced before a
        # request uses it, instead of failing that request.
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # The same backend, with a health check that sends no query while the connection is quiet.
    DATABASES["default"]["ENGINE"] = "scrapannot.postgres"
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the demo's page views read while an ingest writes.
    DATABASES["default"].setdefault("OPTIONS", {})["init_command"] = "PRAGMA journal_mode=WAL;"
    DATABASES["default"]["OPTIONS"]["transaction_mode"] = "IMMEDIATE"
    DATABASES["default"]["CONN_MAX_AGE"] = 0

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", VAR_DIR / "static"))
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", VAR_DIR / "media"))
# Frames are never served from MEDIA_URL: every image goes through a view that checks who asks.
MEDIA_URL = "/media-not-served/"

# Frame storage goes through Django's storage API; a plant swaps the local disk for
# S3-compatible object storage with, e.g.,
#   STORAGE_BACKEND=storages.backends.s3.S3Storage
#   STORAGE_OPTIONS='{"bucket_name": "frames", "endpoint_url": "https://minio.plant:9000"}'
STORAGES = {
    "default": {
        "BACKEND": os.environ.get("STORAGE_BACKEND", "django.core.files.storage.FileSystemStorage"),
        "OPTIONS": json.loads(os.environ.get("STORAGE_OPTIONS", "{}")),
    },
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
if DEBUG:
    STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}

# Uploads: one unloading is a few dozen 1080p JPEGs. Large files spool to disk, not RAM.
FILE_UPLOAD_MAX_MEMORY_SIZE = env_int("FILE_UPLOAD_MAX_MEMORY_SIZE", 4 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 4 * 1024 * 1024)
DATA_UPLOAD_MAX_NUMBER_FILES = env_int("DATA_UPLOAD_MAX_NUMBER_FILES", 1000)

# An API token's user and roles, read once, are reused by the same process for this many
# seconds (scrapannot.api_auth): a removed role or a deactivated user stops working within it.
# 0 reads them on every call.
API_TOKEN_CACHE_SECONDS = env_float("API_TOKEN_CACHE_SECONDS", 2.0)
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "scrapannot.api_auth.RoleTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "scrapannot.api_negotiation.JsonFirstNegotiation",
    "EXCEPTION_HANDLER": "scrapannot.api.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "scrapannot API",
    "DESCRIPTION": "Unloadings in; labels and models out.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The plant network may have no internet: the docs' scripts come with the app.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Every operation's error answers (401, 403, 404, 400, 409, 503), which the views share.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "scrapannot.api_schema.document_error_answers",
    ],
}

# Celery: without a broker the first run executes tasks in-process.
# "memory://" only names a broker for the eager mode; nothing is ever sent to it.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "") or "memory://"
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", CELERY_BROKER_URL == "memory://")
CELERY_TASK_EAGER_PROPAGATES = True

# The audit trail (scrapannot.audit): requests insert events unsealed, and the sequencer, run by
# Celery beat every second, seals them. Without a broker there is no beat, and SQLite has one
# writer at a time anyway: there `record` seals inline, in the caller's transaction (the first-run
# demo needs nothing else). An event unsealed for longer than the bound is an alarm (the audit
# page, `manage.py audit_verify`).
AUDIT_SEAL_INLINE = env_bool(
    "AUDIT_SEAL_INLINE",
    CELERY_BROKER_URL == "memory://"
    or DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3",
)
AUDIT_SEAL_MAX_DELAY_SECONDS = env_int("AUDIT_SEAL_MAX_DELAY_SECONDS", 10)
# On PostgreSQL, the annotator loop's two hot calls (the next lease, a rating) run as one
# PL/pgSQL function each (labeling.sql_path) instead of the ORM's six to ten queries; off, they
# take the ORM path that SQLite always takes. The rules are the same either way (the pool tests
# run against both).
LABELING_SQL_PATH = env_bool("LABELING_SQL_PATH", True)
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND") or None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 600)
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 540)
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Unacknowledged messages (a worker died mid-task) go back to the queue after this long; it must
# exceed the longest task time limit, or a slow task would be delivered twice while it runs.
# Workers sweep for such messages every interval x throttle seconds (kombu's defaults: 10 x 10).
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600),
    "unacked_restore_interval": env_int("CELERY_UNACKED_RESTORE_INTERVAL", 10),
    "unacked_restore_throttle": env_int("CELERY_UNACKED_RESTORE_THROTTLE", 10),
}
# Quality checks and SAM embeddings on their own queues: a slow model never blocks the checks.
CELERY_TASK_DEFAULT_QUEUE = "celery"
CELERY_TASK_ROUTES = {
    "labeling.check_railcar_quality": {"queue": "quality"},
    "labeling.rejudge_quality": {"queue": "quality"},
    "labeling.refresh_camera_baselines": {"queue": "quality"},
    "labeling.embed_keyframes": {"queue": "embeddings"},
    # Training and scoring hold a model and many CPU cores for minutes: a queue of their own.
    "mlloop.train_model": {"queue": "training"},
    "mlloop.score_railcars": {"queue": "training"},
    # Grad-CAM runs the backbone with gradients (seconds a layer on a CPU): its own queue, so that
    # explanations never hold up live scoring. Webhook POSTs wait on the network: their own too.
    "operations.compute_explanation": {"queue": "explanations"},
    "operations.deliver_webhook": {"queue": "webhooks"},
    "operations.resend_stalled_webhooks": {"queue": "webhooks"},
    # A layer's live estimate must not wait behind training or a batch of checks (seed 000's
    # budget is about a second a layer): a queue of its own.
    "operations.record_live_estimate": {"queue": "live"},
}
CELERY_TIMEZONE = TIME_ZONE

# Domain policy defaults. Admin-editable policies live in the database (later issues); these
# are the defaults and the limits of what an input may be.
SCRAPANNOT = {
    # Ingest limits: a plant camera frame is a few MB; anything far larger is refused.
    "MAX_FRAME_BYTES": env_int("SCRAPANNOT_MAX_FRAME_BYTES", 25 * 1024 * 1024),
    # 8K is 33 Mpx; beyond 50 Mpx a frame is treated as a decompression bomb.
    "MAX_FRAME_PIXELS": env_int("SCRAPANNOT_MAX_FRAME_PIXELS", 50_000_000),
    "MAX_FRAMES_PER_UNLOADING": env_int("SCRAPANNOT_MAX_FRAMES_PER_UNLOADING", 600),
    # Layer segmentation (seed 000, 6.2): IoU(magnet, railcar) threshold and tolerated dip.
    "LAYER_IOU_THRESHOLD": env_float("SCRAPANNOT_LAYER_IOU_THRESHOLD", 0.05),
    "LAYER_MAX_GAP": env_int("SCRAPANNOT_LAYER_MAX_GAP", 1),
    # A railcar waiting this long in `ingested`, `checking` or `rated` has lost its task (a broker
    # restart, a dead worker, an enqueue refused after commit): the reconciler enqueues it again.
    # Longer than the quality check's time limit (600 s), so a live check is never doubled.
    "RECONCILE_AFTER_S": env_int("SCRAPANNOT_RECONCILE_AFTER", 660),
    # An open (live) unloading that has received no frames this long is closed by the reconciler.
    "LIVE_IDLE_CLOSE_S": env_int("SCRAPANNOT_LIVE_IDLE_CLOSE", 7200),
    # A running training run beats its heart every 30 s (mlloop.runs); one silent this long
    # belongs to a worker that died, and the reconciler sends its task again.
    "TRAINING_STALE_S": env_int("SCRAPANNOT_TRAINING_STALE", 600),
}

# Segment-anything: a local checkpoint (weights are never downloaded). Empty: the OpenCV engine.
SAM_CHECKPOINT = os.environ.get("SAM_CHECKPOINT", "")
SAM_MODEL_TYPE = os.environ.get("SAM_MODEL_TYPE", "vit_b")
SAM_DEVICE = os.environ.get("SAM_DEVICE", "cpu")
TORCH_NUM_THREADS = env_int("TORCH_NUM_THREADS", 0)  # 0: torch's default

# The learning loop (mlloop.config reads these; seed 000, sections 3 and 5). Pretrained backbone
# weights come from a local file or not at all: nothing is downloaded.
MLLOOP = {
    "BACKBONE": os.environ.get("MLLOOP_BACKBONE", "efficientnet_lite0"),
    # "auto": the weights an installed package ships (mlloop.config.ModelConfig).
    "PRETRAINED_WEIGHTS": os.environ.get("MLLOOP_PRETRAINED_WEIGHTS", "auto"),
    "IMAGE_SIZE": env_int("MLLOOP_IMAGE_SIZE", 224),
    "BAG_SIZE": env_int("MLLOOP_BAG_SIZE", 4),
    "LAMBDA": env_float("MLLOOP_LAMBDA", 0.5),
    "EPOCHS": env_int("MLLOOP_EPOCHS", 30),
    "DEVICE": os.environ.get("MLLOOP_DEVICE", "cpu"),
    # Torch threads in each process of a `live` worker (operations.tasks). It runs --concurrency N
    # processes, each scoring one keyframe at a time; more threads than cores per process spin
    # against each other (bench_live: 92 ms a layer with 1 thread, 250 ms to 1.8 s with 2, on a
    # loaded 2-core machine). 0 leaves torch's default (one per core).
    "LIVE_TORCH_THREADS": env_int("MLLOOP_LIVE_TORCH_THREADS", 1),
}

# The operator application's reports and webhooks (operations.report_csv, operations.webhooks).
OPERATIONS_REPORTS = {
    # Local start times of the shifts, in order; the last runs to the next day's first. Day D of
    # the CSV is its shifts: from D at the first start to D+1 at the first start.
    "SHIFT_STARTS": os.environ.get("OPERATIONS_SHIFT_STARTS", "06:00,14:00,22:00").split(","),
    "SHIFT_TIME_ZONE": os.environ.get("OPERATIONS_SHIFT_TIME_ZONE", TIME_ZONE),
    # Webhook receivers on private addresses (10/8, 172.16/12, 192.168/16, fc00::/7, loopback):
    # allowed by default, because the plant's downstream systems sit on its private network.
    # Link-local and cloud metadata addresses (169.254/16, fe80::/10) are refused whatever this
    # says, and so are multicast, reserved and unspecified ones.
    "WEBHOOK_ALLOW_PRIVATE": env_bool("WEBHOOK_ALLOW_PRIVATE", True),
    "WEBHOOK_TIMEOUT_S": env_float("WEBHOOK_TIMEOUT_S", 10.0),
    # Attempts in all (the first and its retries), spaced BACKOFF_S * 2**(n-1) seconds apart.
    "WEBHOOK_MAX_ATTEMPTS": env_int("WEBHOOK_MAX_ATTEMPTS", 6),
    "WEBHOOK_BACKOFF_S": env_float("WEBHOOK_BACKOFF_S", 30.0),
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "refusals": {"()": "scrapannot.log_filters.RefusalsWithoutTraceback"},
        "broker_hostname": {"()": "scrapannot.log_filters.InProcessBrokerHostname"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        # Filters on a logger apply to its own records: django.request logs the 4xx/5xx.
        "django.request": {"filters": ["refusals"]},
        "kombu.connection": {"filters": ["broker_hostname"]},
    },
}
