"""The team topology on one machine: ``make stack`` starts PostgreSQL, Redis, an S3 object store,
the MLflow server and Airflow on Celery as plain processes under ``.brighthouse/stack/``.

An operations room beside the product: it imports nothing from ``components`` or ``serving``,
and nothing there imports it. The product reaches the stack only through endpoints and
credentials in the environment (the env file), exactly as it reaches managed services.
"""
