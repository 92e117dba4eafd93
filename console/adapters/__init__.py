"""Real systems behind small protocols: registry (MLflow), router (HAProxy), metrics (Prometheus).

Only this package talks to the outside world. Client libraries are imported
inside the adapter that needs them, lazily where they are heavy (mlflow).
"""
