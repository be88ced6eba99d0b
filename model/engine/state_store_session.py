"""Saving a `TrackingSession`'s state into a state store and restoring it, exactly.

What is saved is everything the session's results depend on, per object in the session's
order (batching follows it): its prompts (click tensors, mask-prompt tensors), every output
(tensor bytes, packed mask, score, IoU, keyframe flag), the prompted outputs whose memory
is not encoded yet ("pending") and the outputs they stash, the tracked-direction and dirty
marks. Pending outputs are stored as they are rather than committed: committing encodes
their memory early, which would change what the memory selection of the next click reads.

Restoring is lazy: the index, the packed masks and the few stashed outputs are read at once;
an output's tensors are read from the store the first time the session needs them
(`FrameOutput.loader`), then live in RAM and the session's spill file as usual.

After a restore the app re-sends every prompt of the project; a re-sent prompt equal to the
restored one (same tensors) is answered from the restored output instead of recomputed
(`unchanged_prompt`), once per restored prompt, so the resend does not undo the restore.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch

from model.engine.memory_bank import FrameOutput, MemoryBank, ObjectTrack, Tensors
from model.engine.prompts import ObjectResult, Prompt, mask_input, point_inputs, validate_prompt
from model.engine.state_store import (
    FORMAT_NAME,
    Layout,
    StateIdentity,
    StateStoreError,
    check_header,
    checksum,
    header_json,
    read_index,
    remove_unlisted,
    write_file_atomic,
    write_index,
)
from model.engine.state_store_budget import DEFAULT_BUDGET_BYTES, Candidate, choose_evictions
from model.engine.state_store_read import (
    RestoreReport,
    build_tracks,
    parse_objects,
)
from model.sam2.model import Sam2Model


class SessionState(Protocol):
    """What saving and restoring read and set of a `TrackingSession` (which satisfies it)."""

    model: Sam2Model
    device: torch.device
    num_frames: int
    precision: str
    _bank: MemoryBank
    _tracks: dict[int, ObjectTrack]
    _restored_prompts: set[tuple[int, int]]

    @property
    def video_size(self) -> tuple[int, int]: ...

    @property
    def object_ids(self) -> list[int]: ...


@dataclass(frozen=True)
class SaveReport:
    bytes: int  # the store's size after the save
    written: int  # files written by this save (the rest were already stored)
    dropped: int  # outputs left out to stay under the budget
    budget: int


def precision_of(session: SessionState) -> str:
    return str(getattr(session, "precision", "exact"))


def expected_header(session: SessionState, identity: StateIdentity) -> dict:
    return header_json(identity, session.model.image_size, precision_of(session))


# ---- saving -------------------------------------------------------------------------------
class _Writer:
    """Writes one save's files, reusing those the previous index already lists."""

    def __init__(self, folder: Path, old_files: dict[str, dict]) -> None:
        self.folder = folder
        self.old = old_files
        self.written = 0
        self.bytes = 0

    def put(self, prefix: str, token: str | None, data_fn) -> dict:
        """{"file", "crc", "size"} of an entry: the stored file for `token`, else one written now.

        Without a token the file is named by its content, so unchanged prompt masks and
        stashed outputs are not rewritten either.
        """
        data = None
        if token is None:
            data = data_fn()
            token = hashlib.blake2b(data[0], digest_size=8).hexdigest()
        name = f"{prefix}-{token}.bin"
        if name in self.old and (self.folder / name).is_file():
            entry = self.old[name]
            self.bytes += int(entry["size"])
            return {"file": name, "crc": entry["crc"], "size": entry["size"]}
        raw, crc = data if data is not None else data_fn()
        write_file_atomic(self.folder / name, raw)
        self.written += 1
        self.bytes += len(raw)
        return {"file": name, "crc": crc, "size": len(raw)}


def save_session_state(
    session: SessionState,
    folder: str | Path,
    identity: StateIdentity,
    *,
    budget_bytes: int = DEFAULT_BUDGET_BYTES,
    recent_frames: Iterable[int] = (),
) -> SaveReport:
    """Write the session's state into `folder`, only what changed since the last save."""
    folder = Path(folder)
    if folder.is_symlink():
        raise StateStoreError(
            f"{folder.name} is a symbolic link; the state is not written through it"
        )
    folder.mkdir(parents=True, exist_ok=True)
    header = expected_header(session, identity)
    bank, tracks = session._bank, session._tracks
    layout = _layout(bank, tracks)
    dropped = _plan_drops(bank, tracks, layout, budget_bytes, recent_frames)
    for obj_id, frame in dropped:
        # Its file may be the only copy, and is about to go: read it into the session first.
        if tracks[obj_id].outputs[frame].loader is not None:
            bank.tensors(obj_id, tracks[obj_id], frame)
    writer = _Writer(folder, _previous_files(folder, header))
    objects = [
        _object_json(bank, o, t, layout, writer, {f for d, f in dropped if d == o})
        for o, t in tracks.items()
    ]
    doc = {
        "format": FORMAT_NAME,
        "header": header,
        "layout": None if layout is None else layout.to_json(),
        "objects": objects,
    }
    write_index(folder, doc)
    keep = {e["file"] for obj in objects for key in ("outputs", "stash", "masks") for e in obj[key]}
    remove_unlisted(folder, keep)
    return SaveReport(writer.bytes, writer.written, len(dropped), budget_bytes)


def _previous_files(folder: Path, header: dict) -> dict[str, dict]:
    """Files of a readable index made for the same video and model; none otherwise."""
    try:
        doc = read_index(folder)
        check_header(doc, header)
        objects = parse_objects(doc, None)
    except StateStoreError:
        return {}
    return {
        e["file"]: e for obj in objects for key in ("outputs", "stash", "masks") for e in obj[key]
    }


def _layout(bank, tracks: dict[int, ObjectTrack]) -> Layout | None:
    """The layout of the outputs with a memory if any, else of pending outputs, else None."""
    fallback = None
    for track in tracks.values():
        for _, tensors, _ in track.stash.values():
            return Layout.of(tensors)  # stashed outputs were committed: they have a memory
        for frame, output in track.outputs.items():
            if frame not in track.pending:
                return Layout.of(bank.peek(output))
            fallback = fallback or Layout.of(bank.peek(output))
    return fallback


def _plan_drops(bank, tracks, layout, budget_bytes, recent_frames) -> set[tuple[int, int]]:
    if layout is None:
        return set()
    candidates, total = [], 0
    for o, t in tracks.items():
        for frame, output in t.outputs.items():
            size = layout.nbytes(with_memory=frame not in t.pending) + output.mask.nbytes
            total += size
            if not output.is_cond and frame not in t.pending:
                candidates.append(Candidate(o, frame, size))
        total += sum(
            layout.nbytes(with_memory=x.memory is not None) for _, x, _ in t.stash.values()
        )
        total += sum(m.numel() * m.element_size() for m in t.masks.values())
    keys = {o: t.keyframes() for o, t in tracks.items()}
    return choose_evictions(candidates, total, budget_bytes, keys, recent_frames)


def _object_json(bank, obj_id: int, track: ObjectTrack, layout, writer: _Writer, drop) -> dict:
    points = [
        {"frame": f, "coords": p.coords[0].cpu().tolist(), "labels": p.labels[0].cpu().tolist()}
        for f, p in track.points.items()
    ]
    masks = [
        {"frame": f, **writer.put("m", None, lambda m=m: _raw_with_crc(m))}
        for f, m in track.masks.items()
    ]
    outputs = []
    for frame, output in track.outputs.items():
        if frame in drop:
            continue
        # A pending output gains its memory in place later: name it by its content.
        token = None if frame in track.pending else output.token
        entry = writer.put("e", token, lambda o=output: _output_bytes(bank, o, layout))
        outputs.append({"frame": frame, **entry, **_output_meta(output)})
    stash = [
        {"frame": f, "is_cond": c, "iou": iou, "has_memory": x.memory is not None}
        | writer.put("s", None, lambda x=x: _with_crc(layout.encode(x)))
        for f, (c, x, iou) in track.stash.items()
    ]
    return {
        "id": obj_id,
        "points": points,
        "masks": masks,
        "outputs": outputs,
        "stash": stash,
        "pending": sorted(track.pending),
        "tracked": sorted([f, r] for f, r in track.tracked.items()),
        "dirty_forward": sorted(track.dirty[False]),
        "dirty_backward": sorted(track.dirty[True]),
        "dropped": sorted([f, track.tracked.get(f, False)] for f in drop),
    }


def _output_meta(output: FrameOutput) -> dict:
    return {
        "is_cond": output.is_cond,
        "score": output.score,
        "iou": output.iou,
        "mask_shape": list(output.mask.shape),
        "mask_bytes": output.mask.nbytes,
        "mask_crc": checksum(output.mask.data),
    }


def _output_bytes(bank, output: FrameOutput, layout: Layout) -> tuple[bytes, int]:
    tensor_bytes = layout.encode(bank.peek(output))
    return tensor_bytes + output.mask.data, checksum(tensor_bytes)


def _with_crc(data: bytes) -> tuple[bytes, int]:
    return data, checksum(data)


def _raw_with_crc(tensor: torch.Tensor) -> tuple[bytes, int]:
    return _with_crc(
        tensor.detach().contiguous().cpu().reshape(-1).view(torch.uint8).numpy().tobytes()
    )


# ---- restoring ----------------------------------------------------------------------------
def restore_session_state(
    session: SessionState,
    folder: str | Path,
    identity: StateIdentity,
    *,
    expected_prompts: set[tuple[int, int]] | None = None,
) -> RestoreReport:
    """Load a store into a session that has no objects yet; StateStoreError leaves it empty.

    `expected_prompts`: the (obj_id, frame) prompt sets the caller's project holds; a store
    whose prompts differ is refused as stale (it was saved before the last prompt edits).
    """
    if session.object_ids:
        raise ValueError("engine state can only be restored into a session without objects")
    folder = Path(folder)
    doc = read_index(folder)
    check_header(doc, expected_header(session, identity))
    layout = Layout.from_json(doc["layout"]) if doc.get("layout") is not None else None
    tracks, report = build_tracks(
        folder,
        doc,
        layout,
        num_frames=session.num_frames,
        video_size=session.video_size,
        image_size=session.model.image_size,
        device=session.device,
    )
    prompts = {(o, f) for o, t in tracks.items() for f in t.keyframes()}
    if expected_prompts is not None and prompts != set(expected_prompts):
        raise StateStoreError("the saved engine state is stale: the project's prompts changed")
    session._tracks.update(tracks)
    session._restored_prompts = set(prompts)
    return report


def unchanged_prompt(
    session: SessionState, frame: int, obj_id: int, prompt: Prompt
) -> ObjectResult | None:
    """The restored result if `prompt` re-sends a restored prompt unchanged, else None.

    Each restored prompt is matched at most once: any later prompt is the user's and runs.
    """
    key = (obj_id, frame)
    if key not in session._restored_prompts:
        return None
    session._restored_prompts.discard(key)
    validate_prompt(prompt, session.video_size)
    track = session._tracks.get(obj_id)
    output = None if track is None else track.outputs.get(frame)
    if track is None or output is None:
        return None
    image_size, device = session.model.image_size, session.device
    if prompt.mask is not None:
        old_mask = track.masks.get(frame)
        new_mask = mask_input(prompt.mask, image_size, device)
        same = old_mask is not None and torch.equal(old_mask, new_mask)
    else:
        old = track.points.get(frame)
        new = point_inputs(prompt, session.video_size, image_size, device)
        same = old is not None and torch.equal(old.coords, new.coords)
        same = same and torch.equal(old.labels, new.labels)
    if not same:
        return None
    return ObjectResult(
        obj_id=obj_id, mask=output.mask.unpack(), score=output.score, iou=output.iou
    )


def stored_tensors(data: bytes, layout: Layout | None, device, *, with_memory: bool) -> Tensors:
    if layout is None:
        raise StateStoreError("the index lists outputs but no tensor layout")
    return layout.decode(data, device, with_memory=with_memory)
