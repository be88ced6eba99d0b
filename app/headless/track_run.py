"""One video tracked headless and exported: the code path `masklet track` and `masklet batch` share.

`run_track(job, get_model)` checks everything that needs no model (the video's kind, the
outputs against the inputs, the prompts or annotations against the video, the export plan),
then calls `get_model()` and tracks. `masklet track` passes a loader, so a bad prompts file
costs no model load; a batch worker passes the model it loaded once. Both therefore give the
same masks for the same video and prompts.

Prompts come from a prompts file (`app.headless.prompts_file`, clicks and boxes) or from annotations
(`app.imports`: COCO, YouTube-VIS or a DAVIS PNG folder), whose masks on the frames they
cover become mask prompts; and/or from phrases SAM 3's finder finds (`app.headless.finding`,
`app.headless.tracking`). The finder loads before the tracker: a bad `sam3.pt` costs no
tracker load, and nothing is tracked or written.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from app.export import ExportOptions, ExportResult, ObjectMeta, StoreSource, export
from app.export.source import Progress
from app.headless.finding import FindSpec
from app.headless.prompts_file import PromptsError, PromptsFile
from app.project.files import MAX_ID
from model.engine.session import Prompt
from model.sam2.model import Sam2Model

__all__ = [
    "RANDOM_PREFIX",
    "TrackJob",
    "check_model_args",
    "load_model",
    "run_track",
]

RANDOM_PREFIX = "random:"
DIRECTIONS = ("forward", "backward", "both")


@dataclass(frozen=True)
class TrackJob:
    """One video to track: at most one of `prompts` (a prompts file) or `annotations`, and
    phrases to `find`; at least one of the three."""

    video: Path
    fmt: str
    out: Path
    prompts: Path | None = None
    annotations: Path | None = None
    direction: str = "forward"
    device: str = "cpu"
    precision: str = "auto"  # auto | exact | fast (model.engine.precision)
    options: ExportOptions = field(default_factory=ExportOptions)
    extra_inputs: tuple[Path, ...] = ()  # e.g. the checkpoint: outputs must not replace it
    find: FindSpec | None = None

    @property
    def inputs(self) -> list[Path]:
        finder = None if self.find is None else self.find.checkpoint
        given = [self.video, self.prompts, self.annotations, finder, *self.extra_inputs]
        return [p for p in given if p is not None]


@dataclass(frozen=True)
class _PromptPlan:
    """The objects to track and their prompts, checked against the video."""

    objects: list[ObjectMeta]
    prompts: Callable[[], Iterator[tuple[int, int, Prompt]]]  # (frame, obj_id, prompt)


def check_model_args(checkpoint: str, image_size: int | None, device: str) -> list[Path]:
    """Refuse a checkpoint or device that cannot work, without building anything;
    returns the checkpoint file, an input the outputs must not replace (none for random:)."""
    import torch

    from model.sam2.checkpoint import check_checkpoint_file
    from model.sam2.config import get_config

    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA device is available")
    if device == "mps" and not torch.backends.mps.is_available():
        raise ValueError("--device mps: no MPS device is available")
    if checkpoint.startswith(RANDOM_PREFIX):
        get_config(checkpoint[len(RANDOM_PREFIX) :], image_size=image_size)
        return []
    check_checkpoint_file(checkpoint)
    return [Path(checkpoint)]


def precision_warning(requested: str, device: str) -> str | None:
    """Why `--precision fast` will not be faster on `device` (no native bf16, or bf16 that
    measured slower than float32 here); else None."""
    from model.engine.precision import native_bf16, resolve_precision

    if requested != "fast" or native_bf16(device):
        return None
    return resolve_precision(requested, device)[1]


def load_model(checkpoint: str, image_size: int | None, device: str) -> Sam2Model:
    """The model of a checkpoint file, or an untrained one (seeded) for `random:VARIANT`."""
    import torch

    from model.sam2.checkpoint import load_model as load_checkpoint

    if not checkpoint.startswith(RANDOM_PREFIX):
        try:
            return load_checkpoint(checkpoint, image_size=image_size, device=device)
        except (KeyError, IndexError, TypeError, AttributeError, UnicodeDecodeError) as exc:
            # torch's unpickler fails on some garbage files with bare lookup errors.
            raise ValueError(
                f"{Path(checkpoint).name}: not a PyTorch checkpoint ({type(exc).__name__})"
            ) from None
    from model.sam2.build import build_model
    from model.sam2.config import get_config

    torch.manual_seed(0)
    cfg = get_config(checkpoint[len(RANDOM_PREFIX) :], image_size=image_size)
    return build_model(cfg).to(device)


def run_track(
    job: TrackJob,
    get_model: Callable[[], Sam2Model],
    *,
    get_finder: Callable[[], object] | None = None,
    track_progress: Progress | None = None,
    export_progress: Progress | None = None,
    note: Callable[[str], None] | None = None,
) -> ExportResult:
    """Check, track and export one video; every refusal is a ValueError or OSError.
    `get_finder` gives SAM 3's finder for `job.find` (default: loaded from its checkpoint);
    `note` hears what the finder found, one line each."""
    from app.export.output_guard import check_outputs, export_outputs
    from app.headless.finding import check_finder_file, load_finder
    from app.headless.preflight import check_export_plan, check_video_path
    from app.headless.prompts_file import load_prompts
    from app.video import open_video

    if job.direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {', '.join(DIRECTIONS)}, not {job.direction!r}")
    check_video_path(job.video)
    images = bool(job.options.images)
    check_outputs(export_outputs(job.fmt, job.out, images=images), job.inputs)
    if job.prompts is not None and job.annotations is not None:
        raise ValueError("give either a prompts file or an annotations file, not both")
    if job.prompts is None and job.annotations is None and job.find is None:
        raise ValueError("give a prompts file, an annotations file or phrases to find")
    if job.find is not None:
        check_finder_file(job.find.checkpoint)
        if get_finder is None:
            spec = job.find
            get_finder = lambda: load_finder(spec.checkpoint, job.device)  # noqa: E731
    # The prompts file is read before the video is opened: it is the cheaper check.
    prompts = None if job.prompts is None else load_prompts(job.prompts)
    with open_video(job.video) as reader:
        plan = _prompt_plan(job, prompts, len(reader), tuple(reader.size))
        check_export_plan(job.fmt, len(reader), plan.objects, job.options)
        finder = None if get_finder is None or job.find is None else get_finder()
        tracked = _track(get_model(), reader, plan, job, track_progress, finder, note)
        phrases = () if job.find is None else job.find.phrases
        source = StoreSource(
            name=job.video.stem,
            reader=reader,
            store=tracked.store,
            objects=tracked.objects,
            labels=phrases,
        )
        return export(source, job.fmt, job.out, job.options, progress=export_progress)


def _prompt_plan(
    job: TrackJob, prompts: PromptsFile | None, num_frames: int, size: tuple[int, int]
) -> _PromptPlan:
    if prompts is None and job.annotations is None:
        return _PromptPlan([], lambda: iter(()))
    if prompts is not None:
        return _plan_from_prompts(prompts, job.prompts, num_frames, size)
    return _plan_from_annotations(job.annotations, job.video, num_frames, size)


def _plan_from_prompts(
    prompts: PromptsFile, path: Path, num_frames: int, size: tuple[int, int]
) -> _PromptPlan:
    try:
        prompts.check_video(num_frames, size)
    except PromptsError as exc:
        raise PromptsError(f"prompts file {path}: {exc}") from None

    def each() -> Iterator[tuple[int, int, Prompt]]:
        for obj in prompts.objects:
            for p in obj.prompts:
                yield p.frame, obj.obj_id, Prompt(points=p.points, labels=p.labels, box=p.box)

    return _PromptPlan([ObjectMeta(o.obj_id, o.name, o.category) for o in prompts.objects], each)


def _plan_from_annotations(
    path: Path, video: Path, num_frames: int, size: tuple[int, int]
) -> _PromptPlan:
    """Masks of an annotation file as mask prompts. Their ids are kept when all fit the
    project range (1-MAX_ID), so outputs name the same tracks; otherwise they are numbered."""
    from app.imports import AnnotationImportError, import_annotations

    kwargs = {"video_size": size, "num_frames": num_frames}
    try:
        annotations = import_annotations(path, **kwargs)
    except AnnotationImportError as exc:
        if not str(exc).endswith("choose one"):
            raise
        # A file of several videos: the one named like this video, as the app's import does.
        annotations = import_annotations(path, video=video.stem, **kwargs)
    ids = [o.obj_id for o in annotations.objects]
    if not all(0 < i <= MAX_ID for i in ids):
        ids = list(range(1, len(ids) + 1))
    new_id = {o.obj_id: i for o, i in zip(annotations.objects, ids, strict=True)}
    objects = [
        ObjectMeta(new_id[o.obj_id], o.name.strip() or f"object {new_id[o.obj_id]}", o.category)
        for o in annotations.objects
    ]
    if not objects:
        raise AnnotationImportError(f"{path.name}: holds no objects to track")

    def each() -> Iterator[tuple[int, int, Prompt]]:
        for frame in annotations.frames:
            for obj_id, mask in annotations.iter_masks(frame):
                if obj_id in new_id and mask.any():
                    yield frame, new_id[obj_id], Prompt(mask=mask)

    return _PromptPlan(objects, each)


def _track(model, reader, plan: _PromptPlan, job: TrackJob, progress, finder, note):
    """Prompt every object, find, propagate within the frame range (app.headless.tracking)."""
    from app.headless.tracking import Window, track

    stop = len(reader) if job.options.stop is None else min(job.options.stop, len(reader))
    try:
        return track(
            model,
            reader,
            list(plan.prompts()),
            plan.objects,
            Window(job.options.start, stop, job.direction),
            device=job.device,
            precision=job.precision,
            fmt=job.fmt,
            progress=progress,
            finder=finder,
            find=job.find,
            note=note,
        )
    except ValueError as exc:
        if str(exc).startswith("every mask is empty"):
            raise ValueError(f"{job.annotations or job.prompts}: {exc}") from None
        raise
