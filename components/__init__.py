"""Pipeline components: one module per DVC stage at this level, the library in rooms below.

Stages (a thin ``main()`` over ``run_<stage>(config, paths)``; stage = params.yaml section =
DAG task id): ``validate``, ``lmdb``, ``train``, ``export``, ``evaluate``, ``register``, and
``champion_check`` (the weekly DAG's step); with ``stage`` (the shared ``main``) and
``pipeline`` (dvc, run from the DAGs).

Rooms, each importing only from those listed before it (``tests/components/test_import_direction.py``):
- the base: ``config`` (params.yaml, typed), ``errors`` (``StageFailed``, the library's
  verdict), ``records`` (what one step writes for another);
- ``data/``: finding pairs (``pairs``, ``confine`` for untrusted deliveries), decoding to
  upright sRGB (``imageio``, ``colour``), validation (``pair_table``, ``pair_checks``,
  ``pair_suite``, ``data_report``), ``ingest``, ``deliveries``, ``data_version``,
  ``sample_data``, and reading the stage's LMDBs (``lmdb_read``; training samples:
  ``photo_crops`` for tiled models, ``whole_photo_data`` for global-view ones);
- ``inference/``: what evaluation and serving share: ``modes`` (tiled or global view),
  ``tiling``, ``transfer``, ``onnx_session``, ``tensorrt_engine``; no torch;
- ``model/``: NAFNet (``nafnet_arch``, ``curves_nafnet`` with the fitted preset from
  ``presets`` and ``baseline``), ``losses``, ``basicsr_adapter`` (the only module that imports
  BasicSR), ``model_io``, ``train_state``, ``distributed``;
- ``registry/``: ``tracking`` (the MLflow store), ``model_store`` (fetching a version),
  ``versions`` (list, promote, compare), ``git_branch``;
- ``evaluation/``: ``metrics``, ``perceptual``, the streaming ``scoring`` pass,
  ``eval_report``, ``train_monitor`` (validation during training), and the
  challenger-vs-champion ``review`` and ``review_page``.

Nothing here imports Airflow or FastAPI. ``serving`` uses ``config``, ``data``,
``inference`` and ``registry.model_store``, which need no torch, BasicSR, DVC or
great-expectations (``tests/components/test_module_weight.py``).
"""
