"""``brighthouse``: validate data, enhance photos, serve and promote models."""
from __future__ import annotations

from pathlib import Path

import typer

from components.config import load_params

app = typer.Typer(help="brighthouse: learn a retoucher's edit and serve it.", no_args_is_help=True)
data_app = typer.Typer(help="Paired datasets.", no_args_is_help=True)
app.add_typer(data_app, name="data")
PARAMS = typer.Option(Path("params.yaml"), "--params", help="params.yaml to read settings from")
SERVING_CONFIG = typer.Option(None, "--config", "--params", help="settings file: a params.yaml or just its serve/"
                              "registry sections (default ./params.yaml if present); BRIGHTHOUSE_SERVE_* and "
                              "BRIGHTHOUSE_REGISTRY_* variables override it")


@data_app.command("validate")
def data_validate(folder: Path, params: Path = PARAMS,
                  report: Path | None = typer.Option(None, help="write the JSON report here (and HTML beside it)"),
                  ) -> None:
    """Check every pair in FOLDER: files, pixel formats, orientation, sizes, alignment, duplicates."""
    from components.data.pair_suite import format_failures, validate_folder, write_reports
    from components.errors import StageFailed

    try:
        result = validate_folder(folder, load_params(params).validate_, confined=True)  # as `data add` reads it
    except StageFailed as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from exc
    if report:
        typer.echo(f"report: {write_reports(result, report)}")
    if result.failed:
        typer.echo(format_failures(result.failures), err=True)
        typer.echo(f"{result.failed} of {result.pairs} pairs failed", err=True)
        raise typer.Exit(1)
    typer.echo(f"all {result.pairs} pairs passed")


@data_app.command("add")
def data_add(
    inbox: Path,
    data: Path = typer.Option(Path("data"), help="the DVC-tracked dataset folder (relative to the repo)"),
    replace: bool = typer.Option(False, help="overwrite pairs that exist with different content"),
    version: bool = typer.Option(True, help="run dvc add (and dvc push) afterwards"),
    move: bool = typer.Option(False, help="afterwards, delete inbox files of pairs now in the dataset"),
    params: Path = PARAMS,
) -> None:
    """Copy the good pairs of a delivery into the dataset and make a new data version."""
    from components.data.data_version import PushFailed, version_data, version_owed
    from components.data.ingest import IngestError, ingest, remove_ingested
    from components.data.pair_suite import format_failures
    from components.errors import StageFailed
    from components.records import PairFailure
    from components.registry.tracking import state_dir

    state, say = state_dir(), (lambda msg: typer.echo(msg, err=True))
    owed_before = version_owed(state)
    try:
        summary = ingest(inbox, data, load_params(params).validate_, state, replace=replace, say=say)
    except (IngestError, StageFailed) as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from exc
    if summary["rejected"]:
        typer.echo(f"rejected {len(summary['rejected'])} pairs (left in the inbox, copies kept with the report):",
                   err=True)
        typer.echo(format_failures([PairFailure.model_validate(f) for f in summary["rejected"]]), err=True)
    typer.echo(f"added {len(summary['added'])}, replaced {len(summary['replaced'])}, "
               f"unchanged {len(summary['unchanged'])} pairs; report: {summary['report']}")
    if version and version_owed(state):
        if owed_before:
            say("an earlier `data add` was interrupted before its data version was made and pushed: finishing it")
        try:
            typer.echo(f"new data version {version_data(data, Path.cwd(), state)}: run `dvc repro` to train on it")
        except PushFailed as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(1) from exc
    if move:
        typer.echo(f"removed {len(remove_ingested(inbox, data, summary))} ingested files from {inbox}")


@data_app.command("deliver")
def data_deliver(
    folder: Path,
    inbox: Path = typer.Option(Path("inbox"), help="the inbox the retrain DAG watches"),
    name: str | None = typer.Option(None, help="delivery name (default: the folder's name)"),
) -> None:
    """Drop FOLDER into the inbox as one complete delivery: Airflow's retrain DAG takes it from there."""
    from components.data.deliveries import deliver

    try:
        target = deliver(folder, inbox, name)
    except (FileExistsError, FileNotFoundError, ValueError) as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"delivered to {target}; the retrain DAG starts within seconds if Airflow runs "
               "(make airflow, or make stack)")


@data_app.command("make-sample")
def data_make_sample(out: Path) -> None:
    """Rebuild the bundled sample pairs (already tracked in data.dvc) into OUT."""
    from components.data.sample_data import build_sample

    typer.echo(f"wrote {len(build_sample(out))} pairs to {out}")


@app.command()
def enhance(path: Path, out: Path = typer.Option(..., "--out", help="folder for results"),
            config: Path | None = SERVING_CONFIG) -> None:
    """Enhance a photo or a folder of photos with the serving model (champion)."""
    from components.registry.model_store import ModelUnusable, NoModelError, RegistryUnavailable
    from serving.local import enhance_paths
    from serving.settings import serve_settings

    try:
        summary = enhance_paths(path, out, serve_settings(config), echo=typer.echo)
    except (ValueError, FileNotFoundError) as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc
    except (NoModelError, ModelUnusable, RegistryUnavailable) as exc:
        typer.echo(f"no model to enhance with: {exc}", err=True)
        raise typer.Exit(3) from exc
    typer.echo(f"{len(summary.written)} written to {out}, {len(summary.skipped)} already there, "
               f"{len(summary.failed)} failed")
    if summary.failed:
        typer.echo("failed:\n" + "\n".join(f"  {reason}" for _, reason in summary.failed), err=True)
        raise typer.Exit(1)


@app.command()
def serve(config: Path | None = SERVING_CONFIG, host: str | None = None, port: int | None = None) -> None:
    """Start the HTTP service (FastAPI under uvicorn) on the champion model."""
    import logging

    import uvicorn

    from serving.app import create_app
    from serving.settings import serve_settings

    try:
        cfg = serve_settings(config)
    except (ValueError, FileNotFoundError) as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s:     %(name)s: %(message)s")
    for ours in ("serving", "components"):  # our state changes at INFO; libraries only when they warn
        logging.getLogger(ours).setLevel(logging.INFO)
    uvicorn.run(create_app(cfg), host=host or cfg.host, port=port or cfg.port)


@app.command()
def promote(version: str, params: Path = PARAMS) -> None:
    """Make VERSION the champion (refused if it did not pass the gate)."""
    from components.registry.tracking import RegistryUnavailable
    from components.registry.versions import promote as do_promote

    registry = load_params(params).registry
    name = registry.model_name
    try:
        previous = do_promote(registry, version)
    except (ValueError, RegistryUnavailable) as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"{name}: champion is now version {version} (was {previous or 'unset'})")


@app.command()
def review(version: str,
           against: str | None = typer.Option(None, help="the version to compare with (default: champion)"),
           lmdb: Path = typer.Option(Path("artifacts/lmdb"), help="the LMDB whose val split is compared"),
           out: Path | None = typer.Option(None, help="the page to write (default: review-vVERSION-vs-vAGAINST.html)"),
           params: Path = PARAMS) -> None:
    """Write the challenger-vs-champion review page for VERSION against another version."""
    from components.evaluation.review import compare_versions
    from components.evaluation.review_page import write_review_page
    from components.registry.model_store import ModelUnusable, NoModelError, RegistryUnavailable, alias_version
    from components.registry.versions import version_info

    cfg = load_params(params)
    name = cfg.registry.model_name
    try:
        against = against or alias_version(name, cfg.registry.champion_alias)
        if str(against) == str(version):
            raise ValueError(f"version {version} would be compared with itself: pass --against")
        if not (lmdb / "val" / "lq.lmdb").is_dir():
            raise ValueError(f"{lmdb}: no val split here (run `dvc repro lmdb`, or pass --lmdb)")
        data = compare_versions(name, version, against, lmdb, cfg.evaluate.review)
        page = write_review_page(data, version_info(name, version), version_info(name, against), name,
                                 out or Path(f"review-v{version}-vs-v{against}.html"))
    except (ValueError, NoModelError, ModelUnusable, RegistryUnavailable) as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"wrote {page}")


@app.command()
def models(params: Path = PARAMS) -> None:
    """List registered versions with their aliases and validation metrics."""
    from mlflow.exceptions import MlflowException

    from components.registry.versions import list_versions

    name = load_params(params).registry.model_name
    try:
        rows = list_versions(name)
    except MlflowException as exc:
        typer.echo(f"no registered model '{name}' yet: run `dvc repro` first", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"{'version':>7}  {'aliases':<22} {'gate':<7} {'PSNR':>8} {'SSIM':>7}  {'data':<12}  started from")
    for r in rows:
        typer.echo(f"{r['version']:>7}  {','.join(r['aliases']) or '-':<22} {r['gate']:<7} "
                   f"{r['val_psnr']:>8} {r['val_ssim']:>7}  {r['data_version'][:12]:<12}  {r['started_from']}")
