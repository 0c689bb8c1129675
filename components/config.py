"""Typed, frozen configuration, one class per params.yaml section. Every class rejects unknown
keys, so a typo in params.yaml fails loudly instead of being silently ignored."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

Share = Annotated[float, Field(ge=0, le=1)]


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ValidateConfig(_Section):
    min_side: int = Field(64, gt=0)
    max_megapixels: float = Field(60, gt=0)
    max_aspect_ratio: float = Field(4.0, ge=1)
    min_alignment: float = Field(0.5, ge=-1, le=1)
    max_hash_distance: int = Field(4, ge=0, le=64)
    modes: Literal["convert", "reject"] = "convert"
    on_failure: Literal["quarantine", "fail"] = "quarantine"
    workers: int = Field(0, ge=0)  # decoding processes; 0 = all cores


class LmdbConfig(_Section):
    val_fraction: float = Field(0.25, gt=0, lt=1)
    min_train_share: float = Field(0.7, gt=0, lt=1)
    png_compression: int = Field(1, ge=0, le=9)
    whole_photo_side: int = Field(768, gt=0)  # train photos also stored whole, this long side (global_view)
    cross_validate_below: int = Field(60, ge=0)  # fewer pairs: k-fold cross-validation, no val split (0 = never)
    folds: int = Field(3, ge=2)                 # k, when cross-validating
    workers: int = Field(0, ge=0)


class ArchConfig(_Section):
    width: int = 16
    enc_blk_nums: tuple[int, ...] = (1, 1, 1, 1)
    middle_blk_num: int = 1
    dec_blk_nums: tuple[int, ...] = (1, 1, 1, 1)


class TilingConfig(_Section):
    tile: int = Field(256, gt=0)
    overlap: int = Field(32, ge=0)
    batch: int = Field(4, gt=0)


class TransferConfig(_Section):
    """How ``global_view`` carries the working-size edit to full resolution (components/inference/transfer.py)."""
    radius: int = Field(8, ge=0)         # local fit window radius, in working-size pixels
    eps: float = Field(1e-3, gt=0)       # ridge: larger keeps the edit closer to the photo's global colour change
    strip_rows: int = Field(256, gt=0)   # full-resolution rows per step: bounds memory, not the result


Mode = Literal["tiled", "global_view"]


class InferenceSpec(_Section):
    """How a model turns a full-resolution photo into its edit: params.yaml's ``inference``
    section, handed whole to train (its in-training validation), export (its check of the served
    composite) and evaluate (the gate), recorded with every version, and the only input serving
    takes (components/inference/modes.py). The mode has no default: a spec names it."""
    mode: Mode
    tiling: TilingConfig = TilingConfig()
    working_size: int = Field(384, gt=0)  # global_view: long side of the copy the network sees
    transfer: TransferConfig = TransferConfig()

    @property
    def largest_input(self) -> int:
        """The longest side the network is ever given: what a TensorRT profile must cover."""
        return self.working_size if self.mode == "global_view" else self.tiling.tile


class RegistryConfig(_Section):  # the registered model and its aliases: one home, handed to its users
    model_name: str = "brighthouse"
    champion_alias: str = "champion"      # moved by people to promote; serving follows it; the gate compares with it
    challenger_alias: str = "challenger"  # given to every newly registered version


class WarmStartConfig(_Section):  # training from a registered version (train.start_from; components/warm_start.py)
    iterations_share: float = Field(0.25, gt=0, le=1)  # of the profile's iterations, on a cosine schedule of its own
    lr_share: float = Field(0.5, gt=0, le=1)           # of the profile's learning rate
    for_deliveries: bool = False   # the retrain DAG fine-tunes the champion (false: every delivery from scratch)
    full_every: int = Field(4, ge=1)  # the DAG: every this-many-th training in a line is from scratch (1: always)


class TrainConfig(_Section):
    arch: ArchConfig = ArchConfig()
    inference: InferenceSpec                         # params.yaml's one spec (the mode this model learns)
    registry: RegistryConfig = RegistryConfig()      # where ``start_from`` is looked up
    for_mode: Mode | None = None                     # a profile's recipe suits this inference mode only
    tone_prior: bool = False                         # NAFNet on top of tone curves fitted on the train pairs
    out_of_sample_prior: bool = False                # global_view: each pair over the preset fitted without it
    min_crop: float = Field(0.7, gt=0, le=1)         # global_view: smallest crop side (fraction) of a photo
    exposure_stops: float = Field(0.0, ge=0)         # global_view: input exposure jitter, +- stops
    white_balance: float = Field(0.0, ge=0)          # global_view: input per-channel gain jitter, exp(+-this)
    seed: int = 0
    iterations: int = Field(200, gt=0)
    fold_iterations: int = Field(0, ge=0)            # each cross-validation fold model's (small sets); 0 = iterations
    ships: Literal["full", "ensemble"] = "full"     # small sets: a model on every pair | the fold models averaged
    residual_scales: tuple[Share, ...] = (0.0, 1.0)  # small sets: network shares tried on the folds; best ships
    batch_size: int = Field(4, gt=0)
    patch_size: int = Field(64, gt=0)
    crops_per_photo: int = Field(1, gt=0)            # tiled: patches cut from each decoded photo (divides batch_size)
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = 0.0
    eta_min: float = 1e-6
    num_workers: int = Field(0, ge=0)
    log_every: int = Field(25, gt=0)
    ema_decay: float = Field(0.0, ge=0, lt=1)        # 0 = off; e.g. 0.999 keeps an EMA copy to export
    grad_clip: float = Field(0.0, ge=0)              # max gradient norm; 0 = off
    colour_weight: float = Field(0.0, ge=0)          # ChromaLoss weight (components/model/losses.py)
    look_weight: float = Field(0.0, ge=0)            # LookLoss weight: luminance/chroma distributions
    perceptual_weight: float = Field(0.0, ge=0)      # VGG19 perceptual loss; needs its weights cached
    precision: Literal["auto", "fp32", "bf16"] = "auto"  # auto: bf16 autocast on CUDA and BF16 CPUs, else fp32
    channels_last: bool = True                       # NHWC: tensor cores on CUDA; 1.3x on CPU with LayerNorm2d
    device: Literal["auto", "cpu", "cuda"] = "auto"
    nproc_per_node: int = Field(1, gt=0)             # DDP processes (GPUs) via torchrun; see dvc.yaml
    pretrained: str = ""                             # checkpoint to start from, e.g. NAFNet-SIDD-width32.pth
    start_from: str = ""                             # a registered version to fine-tune; "" = from scratch
    warm_start: WarmStartConfig = WarmStartConfig()
    checkpoint_every: int = Field(0, ge=0)           # iterations between resumable states; 0 = none
    val_every: int = Field(0, ge=0)                  # iterations between validation + sample triptychs
    val_images: int = Field(2, gt=0)                 # val images scored at full resolution, as served
    experiment: str = "brighthouse"
    # Named sets of values under the section's own keys, which win (`dvc exp run -S train.profile=h100`)
    profile: str | None = None
    profiles: dict[str, dict] = {}

    @model_validator(mode="before")
    @classmethod
    def _apply_profile(cls, data: object) -> object:
        if not isinstance(data, dict) or not data.get("profile"):
            return data
        profiles = data.get("profiles") or {}
        if data["profile"] not in profiles:
            raise ValueError(f"train.profile '{data['profile']}' is not one of train.profiles: {sorted(profiles)}")
        return {**profiles[data["profile"]], **data}

    @model_validator(mode="after")
    def _recipe_suits_the_mode(self) -> TrainConfig:
        if self.for_mode and self.for_mode != self.inference.mode:
            raise ValueError(f"train.profile '{self.profile}' is a {self.for_mode} recipe but inference.mode is "
                             f"{self.inference.mode}: set inference.mode: {self.for_mode}, or choose a profile "
                             f"for {self.inference.mode}")
        return self

    @model_validator(mode="after")
    def _whole_photos_per_batch(self) -> TrainConfig:
        if self.batch_size % self.crops_per_photo:
            raise ValueError(f"train.batch_size {self.batch_size} is not a multiple of train.crops_per_photo "
                             f"{self.crops_per_photo} (each photo drawn gives that many patches of a batch)")
        return self


class GateConfig(_Section):
    min_psnr: float = 18.0
    min_ssim: float = 0.6
    min_psnr_gain_over_identity: float = 2.0
    min_psnr_gain_over_baseline: float = 0.0
    max_ciede2000_mean: float = Field(8.0, gt=0)
    max_regression_vs_champion_db: float = Field(0.1, ge=0)
    max_fp16_loss_db: float = Field(0.05, ge=0)  # the FP16 variant ships only if it loses less
    max_contrast_over_identity: float = Field(0.0, ge=0)  # L* of contrast error beyond the untouched inputs'
    max_blown_highlights: float = Field(0.001, ge=0, le=1)  # share of pixels clipped where the targets are not
    max_cast_over_baseline: float = Field(0.5, ge=0)  # CIELAB units of cast on near-white surfaces beyond the preset's


class ReviewConfig(_Section):  # the challenger-vs-champion review page (components/evaluation/review.py)
    photos: int = Field(12, ge=0)          # val photos shown in full, those the new model changed most
    preview_side: int = Field(1024, ge=64)  # px, long side of the page's images
    crop_side: int = Field(512, ge=32)      # px, full-resolution crop where the two versions differ most


class EvaluateConfig(_Section):
    registry: RegistryConfig = RegistryConfig()  # whose champion a new model must not regress against
    inference: InferenceSpec                     # what the gate scores: the model as served
    compare_pooling: bool = True     # also score the other pooling (TLC vs global) to measure TLC
    variant_pairs: int = Field(8, ge=0)  # val pairs the FP16 ONNX and the other pooling are scored on; 0 = all
    review: ReviewConfig = ReviewConfig()
    gate: GateConfig = GateConfig()


class ExportConfig(_Section):
    inference: InferenceSpec               # the served composite export checks against PyTorch
    opset: int = 18
    tlc: bool = False                      # local pooling in channel attention (TLC), baked into the ONNX
    tlc_scale: float = Field(1.5, gt=0)    # TLC window = this x the training patch size
    fp16: bool = True                      # also write model_fp16.onnx (GPU serving); evaluate measures it
    check_size: int = Field(128, gt=0)
    atol: float = Field(1e-3, gt=0)


class RegisterConfig(_Section):
    registry: RegistryConfig = RegistryConfig()
    first_is_champion: bool = True
    tensorrt: Literal["auto", "off"] = "auto"  # auto: build and ship an engine where TensorRT and a GPU are


class ServeConfig(_Section):
    registry: RegistryConfig = RegistryConfig()  # serves the version its champion alias points at
    host: str = "127.0.0.1"
    port: int = 8000
    poll_seconds: float = Field(30, gt=0)
    max_upload_mb: float = Field(50, gt=0)
    max_megapixels: float = Field(40, gt=0)
    runtime: Literal["auto", "tensorrt", "onnxruntime-cuda", "onnxruntime-cpu"] = "auto"
    tile_batch: int = Field(0, ge=0)          # tiles per model call; 0 = the batch the gate used
    batch_window_ms: float = Field(5, ge=0)   # how long a tile waits for others to fill a batch
    max_inflight_megapixels: float = Field(120, gt=0)  # photos being enhanced at once, by size (admission.py)
    max_waiting: int = Field(32, ge=0)        # requests waiting for megapixels to free up; more get 503
    max_wait_s: float = Field(30, gt=0)       # a request still waiting after this gets 503 + Retry-After
    max_receiving_mb: float = Field(512, gt=0)  # upload bytes being received at once, all clients
    upload_timeout_s: float = Field(60, gt=0)   # a body not fully arrived by then: 408, connection closed


# section -> the sections it is handed to
SHARED_SECTIONS = {"registry": ("train", "evaluate", "register", "serve"), "inference": ("train", "export", "evaluate")}


class Params(_Section):
    registry: RegistryConfig
    inference: InferenceSpec
    validate_: ValidateConfig = Field(alias="validate")
    lmdb: LmdbConfig
    train: TrainConfig
    evaluate: EvaluateConfig
    export: ExportConfig
    register_: RegisterConfig = Field(alias="register")
    serve: ServeConfig

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _share_sections(cls, data: object) -> object:
        """Give each user of a shared section (``registry``, ``inference``) that one section, and refuse a
        copy of it set inside a user's own section: it would be a second home."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for shared, users in SHARED_SECTIONS.items():
            for user in users:
                section = data.get(user)
                if isinstance(section, dict) and shared in section:
                    raise ValueError(f"{user}.{shared} is not set here: edit the top-level '{shared}' section")
                if isinstance(section, dict) and shared in data:
                    data[user] = {**section, shared: data[shared]}
        return data


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read params.yaml into the typed tree; raises ValueError naming the bad key."""
    return Params.model_validate(yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {})
