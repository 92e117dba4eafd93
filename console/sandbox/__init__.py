"""A real local environment for demos, drills and integration tests.

MLflow (sqlite), one model server per version, HAProxy in front, Prometheus
scraping everything every second and evaluating alert rules generated from the
catalogue, an Alertmanager, and a traffic generator, all on 127.0.0.1 under one
state directory. Failure scenarios switch at run time.
"""
