"""A minimal Django project using django-eventstream, as its README sets one up behind a GRIP proxy: events are
stored in the app's SQLite database (DjangoModelStorage) and published to the proxy's publish API (GRIP_URL).
The test driver sets EVENTSAPP_DIR (where the database goes) and EVENTSAPP_GRIP_URL."""

import os

SECRET_KEY = "p8-django-eventstream-test-secret-key-not-for-production"
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "django_eventstream"]
MIDDLEWARE = ["django_grip.GripMiddleware"]
ROOT_URLCONF = "eventsapp.urls"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.path.join(os.environ["EVENTSAPP_DIR"], "events.sqlite3"),
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
USE_TZ = True
GRIP_URL = os.environ["EVENTSAPP_GRIP_URL"]
EVENTSTREAM_STORAGE_CLASS = "django_eventstream.storage.DjangoModelStorage"
