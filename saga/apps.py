from django.apps import AppConfig


class SagaConfig(AppConfig):
    default_auto_field = 'django.db.models.BigAutoField'
    name = 'saga'
