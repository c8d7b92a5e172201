from django.urls import path

from . import views

urlpatterns = [
    path("", views.lesson_index, name="lesson-index"),
    path("lessons/<slug:slug>/", views.lesson_detail, name="lesson"),
]
