from django.urls import include, path

import django_eventstream

urlpatterns = [
    path("events/", include(django_eventstream.urls), {"channels": ["test"]}),
]
