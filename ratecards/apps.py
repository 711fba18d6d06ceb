from django.apps import AppConfig


class RatecardsConfig(AppConfig):
    name = "ratecards"
    verbose_name = "Rate cards"
