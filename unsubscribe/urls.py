from django.urls import path

from unsubscribe import views

urlpatterns = [
    path("u/<str:token>", views.unsubscribe_link, name="unsubscribe"),
    path("u/<str:token>/preferences", views.preferences, name="unsubscribe-preferences"),
]
