"""Pipeline components: one module per DVC stage at this level, the library in rooms below.

Stages (a thin ``main()`` over ``run_<stage>(config, paths)``; stage = params.yaml section =
DAG task id): ``validate``, ``lmdb``, ``train``, ``export``, ``evaluate``, ``register``; with
``config`` (params.yaml, typed), ``stage`` (the shared ``main``) and ``pipeline`` (dvc, run
from the DAGs).

Rooms:
- ``data/``: finding pairs (``pairs``, ``confine`` for untrusted deliveries), decoding to
  upright sRGB (``imageio``, ``colour``), validation (``pair_table``, ``pair_checks``,
  ``pair_suite``, ``data_report``), ``ingest``, ``deliveries``, ``data_version``,
  ``sample_data``, and reading the stage's LMDBs (``lmdb_read``; training samples:
  ``photo_crops`` for tiled models, ``whole_photo_data`` for global-view ones);
- ``model/``: NAFNet (``nafnet_arch``, ``curves_nafnet`` with the tone-curve prior from
  ``baseline``), ``losses``, ``basicsr_adapter`` (the only module that imports BasicSR),
  ``model_io``, ``train_state``, ``train_monitor``, ``distributed``;
- ``inference/``: what evaluation and serving share: ``modes`` (tiled or global view),
  ``tiling``, ``transfer``, ``onnx_session``, ``tensorrt_engine``; no torch;
- ``evaluation/``: ``metrics``, ``perceptual``, the streaming ``scoring`` pass,
  ``eval_report``, and the challenger-vs-champion ``review`` and ``review_page``;
- ``registry/``: ``tracking`` (the MLflow store), ``model_store`` (fetching a version),
  ``versions`` (list, promote, compare), ``monitor`` (the weekly champion check),
  ``git_branch``.

Nothing here imports Airflow or FastAPI. ``serving`` uses ``config``, ``data``,
``inference`` and ``registry.model_store``, which need no torch, BasicSR, DVC or
great-expectations (``tests/components/test_module_weight.py``).
"""
