"""A network to ONNX with dynamic batch, height and width, each architecture traced once.

torch.onnx's dynamo exporter traces and decomposes the graph: about 25 s a model on 2 CPU cores,
paid by every export stage and every pipeline run. The traced graph depends only on the
network's code and structure, not on its weights: every initializer of the unoptimised graph is
named after its state_dict entry, so a later model of the same architecture gets the traced graph
with its own weights (``ONNXProgram.apply_weights``), then the exporter's optimiser.

Traces are kept in memory for one process (a cross-validated set's fold models and the model that
ships), and on disk across processes where ``BRIGHTHOUSE_ONNX_TRACES`` names a folder. A trace's
key covers what it depends on: the model's ``repr`` (layer sizes, TLC windows, the preset's kind),
its weights' names, shapes and dtypes, the opset, the source of every module class in the model
and of this file, and the versions of torch, onnx, onnxscript and onnx_ir. A fresh trace and a
stored one go through the same serialised graph, so both give the same bytes; and the export
stage still holds every file to its own PyTorch model (``components.export.compare``).
"""
from __future__ import annotations

import hashlib
import inspect
import logging
import os
import sys
from importlib import metadata
from pathlib import Path

import onnx
import onnx_ir as ir
import torch
from google.protobuf.message import DecodeError

from components.errors import StageFailed
from components.model.ensemble import Ensemble

PROJECT = Path(__file__).resolve().parents[2]
TRACES_ENV = "BRIGHTHOUSE_ONNX_TRACES"
_STACK_TRACE = "pkg.torch.onnx.stack_trace"

log = logging.getLogger(__name__)


def traces_folder() -> Path | None:
    """Where traces persist across processes: ``$BRIGHTHOUSE_ONNX_TRACES``, or nowhere."""
    folder = os.environ.get(TRACES_ENV, "")
    return Path(folder) if folder else None


class OnnxExporter:
    def __init__(self, opset: int, traces: Path | None = None) -> None:
        self.opset = opset
        self.traces = traces
        self._traced: dict[str, torch.onnx.ONNXProgram] = {}
        self.fresh_traces = 0  # traced in this process, not found in memory or on disk

    @property
    def traced_architectures(self) -> int:
        return len(self._traced)

    def export(self, model: torch.nn.Module, path: Path) -> None:
        state = model.state_dict()
        key = trace_key(model, self.opset)
        if key not in self._traced:
            self._traced[key] = torch.onnx.ONNXProgram(ir.serde.deserialize_model(self._graph(model, key)), None)
        traced = self._traced[key]
        traced.apply_weights({k: v for k, v in state.items() if k in traced.model.graph.initializers})
        program = torch.onnx.ONNXProgram(ir.serde.deserialize_model(traced.model_proto), None)
        # the exporter's own optimiser gives the members' clamp bounds one name and drops all
        # but one (an invalid graph, onnxscript 0.7); onnxruntime optimises the graph on load anyway
        if not isinstance(model, Ensemble):
            program.optimize()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.onnx")
        program.save(str(tmp), external_data=False)
        portable_stack_traces(tmp)
        tmp.replace(path)

    def _graph(self, model: torch.nn.Module, key: str) -> onnx.ModelProto:
        """The unoptimised graph, from disk where it was stored, else traced (and stored)."""
        stored = self.traces / f"{key}.onnx" if self.traces else None
        if stored is not None and stored.is_file():
            try:
                proto = read_trace(stored, model)
                log.info("ONNX graph of %s read from %s, not traced again", type(model).__name__, stored)
                return proto
            except (OSError, DecodeError, ValueError) as err:  # truncated or foreign: trace again, replace it
                log.warning("ONNX trace %s is unreadable (%s): tracing again", stored, err)
        proto = self._trace(model).model_proto
        make_portable(proto)
        self.fresh_traces += 1
        if stored is not None:
            stored.parent.mkdir(parents=True, exist_ok=True)
            tmp = stored.with_name(f"{stored.name}.{os.getpid()}.tmp")
            onnx.save(proto, str(tmp))
            tmp.replace(stored)  # atomic: a concurrent export reads the whole file or none
        return proto

    def _trace(self, model: torch.nn.Module) -> torch.onnx.ONNXProgram:
        example = torch.rand(2, 3, 64, 96)
        batch, height, width = (torch.export.Dim(n, min=1, max=16384) for n in ("batch", "height", "width"))
        program = torch.onnx.export(
            model, (example,), input_names=["input"], output_names=["output"], opset_version=self.opset,
            dynamo=True, dynamic_shapes=({0: batch, 2: height, 3: width},), optimize=False)
        if program is None:
            raise StageFailed(f"torch.onnx.export returned no program for {type(model).__name__}")
        return program


def read_trace(path: Path, model: torch.nn.Module) -> onnx.ModelProto:
    """A stored graph, if it is one of this model's: nodes, and weights named after its own."""
    proto = onnx.load(str(path))
    weights = {i.name for i in proto.graph.initializer}
    if not proto.graph.node or not weights or not weights <= model.state_dict().keys():
        raise ValueError("not a traced graph of this model")
    return proto


def trace_key(model: torch.nn.Module, opset: int) -> str:
    """What a traced graph depends on, hashed: its structure, its code and the exporter's."""
    digest = hashlib.sha256()
    shapes = [(k, tuple(v.shape), str(v.dtype)) for k, v in model.state_dict().items()]
    digest.update(repr((repr(model), shapes, opset)).encode())
    for package in ("torch", "onnx", "onnxscript", "onnx_ir"):
        digest.update(f"{package}={metadata.version(package)}".encode())
    sources = {inspect.getsourcefile(type(m)) for m in model.modules()} | {__file__}
    for source in sorted(s for s in sources if s):
        digest.update(Path(source).read_bytes())
    return digest.hexdigest()[:32]


def export_onnx(model: torch.nn.Module, path: Path, opset: int) -> None:
    """One model to ONNX (with dynamic batch, height and width)."""
    OnnxExporter(opset, traces_folder()).export(model, path)


def make_portable(model: onnx.ModelProto) -> None:
    """The exporter records each node's Python stack with absolute file paths, so the same
    weights exported in another clone gave other bytes and a changed dvc.lock. Paths are made
    relative to the Python environment and to the project."""
    prefixes = ((str(Path(sys.prefix)) + os.sep, "<python>" + os.sep), (str(PROJECT) + os.sep, ""))
    for node in model.graph.node:
        for prop in node.metadata_props:
            if prop.key == _STACK_TRACE:
                for old, new in prefixes:
                    prop.value = prop.value.replace(old, new)


def portable_stack_traces(path: Path) -> None:
    model = onnx.load(str(path))
    make_portable(model)
    onnx.save(model, str(path))
