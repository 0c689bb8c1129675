"""Pipeline components: one module per DVC stage plus the light shared modules.

Nothing here imports Airflow or FastAPI; ``serving`` may import only the light modules
(``tiling``, ``imageio``, ``config``).
"""
