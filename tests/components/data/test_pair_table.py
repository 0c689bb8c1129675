"""Validation inside a daemonic process (a Celery prefork worker's task, as on the stack):
it may not start a process pool, so it measures in-process and gives the same table."""
import multiprocessing

from components.data.pair_suite import validate_folder


def _validate_into(queue, folder, cfg) -> None:
    try:
        queue.put(validate_folder(folder, cfg).pairs)
    except Exception as exc:  # the parent asserts on what came back
        queue.put(repr(exc))


def test_a_daemonic_worker_validates_like_any_process(pair_folder, params):
    cfg = params.validate_.model_copy(update={"workers": 2})
    queue = multiprocessing.get_context("fork").Queue()
    worker = multiprocessing.get_context("fork").Process(target=_validate_into, args=(queue, pair_folder, cfg),
                                                         daemon=True)
    worker.start()
    in_daemon = queue.get(timeout=120)
    worker.join(30)
    assert in_daemon == validate_folder(pair_folder, cfg).pairs
