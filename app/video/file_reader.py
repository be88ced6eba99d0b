"""Frames of a video file, decoded with PyAV (FFmpeg)."""

from __future__ import annotations

import os
import threading
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.container import InputContainer
from av.stream import Discard, Disposition
from av.video.reformatter import VideoReformatter
from av.video.stream import VideoStream

from app.safety.limits import check_frame_size
from app.video.cache import DEFAULT_CACHE_BYTES
from app.video.decoder import DecoderStats, StreamDecoder
from app.video.errors import VideoError
from app.video.index import FrameIndex, scan_packets
from app.video.reader import VideoReader
from model.kernels.threads import decoder_threads

# FFmpeg opens text files as a "video" of rendered characters; to us they are not videos.
_TEXT_CODECS = frozenset({"ansi", "bintext", "xbin", "idf"})
FALLBACK_FPS = 30.0
# The container's stated frame rate is reported when it agrees this closely with the frame
# timestamps, which are rounded to the time base (e.g. whole milliseconds in Matroska).
_RATE_TOLERANCE = 0.005


class VideoFileReader(VideoReader):
    """A video file read frame-accurately by number (see `VideoReader`).

    Opening demuxes every packet once to index the frames (no decoding), then decodes the
    first frame, and when the file looks cut short, its last GOP, so that `len` counts only
    frames that decode. Reading seeks only when decoding forward would cost more.
    """

    def __init__(self, path: str | os.PathLike[str], *, cache_bytes: int = DEFAULT_CACHE_BYTES):
        path = Path(path)
        super().__init__(path=path, cache_bytes=cache_bytes)
        if not path.exists():
            raise VideoError(f"no such file: {path}")
        if path.is_dir():
            raise VideoError(f"not a file: {path}")
        if not path.is_file():
            # A FIFO would block the decoder's open forever, a device be read without end.
            raise VideoError(f"video {path} is not a regular file (a pipe, device or socket)")
        container, stream = self._open_stream()
        try:
            index = scan_packets(container, stream)
            stated_rate = stream.average_rate or stream.guessed_rate
            # What the header promises, if it says: 0 means the container does not tell.
            self._declared_frames = int(stream.frames or 0) or None
        except VideoError as e:
            raise VideoError(f"{path}: {e}") from None
        finally:
            container.close()
        if len(index) == 0 and index.unstamped == 0:
            raise VideoError(f"no video frames in {path}")
        self._decoder = StreamDecoder(path=path, index=index, open_stream=self._open_stream)
        try:
            first = self._settle_index(index)
        except BaseException:
            self._decoder.close()
            raise
        # The first frame's display matrix and size stand for the whole stream.
        self._quarter_turns = round(first.rotation / 90) % 4
        self._coded_size = (first.height, first.width)
        # PyAV's reformat briefly rewrites the colour tags of the frame it converts, so two
        # threads must not convert one cached frame at once: conversions take turns. The one
        # reformatter is kept since setting up swscale costs more than a 1080p conversion.
        self._convert_lock = threading.Lock()
        self._reformatter = VideoReformatter()
        self._describe_frames(stated_rate)
        self._cache.put(0, first, _frame_bytes(first))
        declared = self._declared_frames
        # A damaged end, unless the header's own count shows nothing is missing.
        self._truncated = index.suspect_tail and not (declared and declared <= len(self))

    @property
    def declared_frames(self) -> int | None:
        """The frame count the file's header states; None when it states none."""
        return self._declared_frames

    @property
    def truncated(self) -> bool:
        """The file ends early (cut short, damaged end): `len` counts only what decodes."""
        return self._truncated

    def _describe_frames(self, stated_rate: Fraction | None) -> None:
        index = self._decoder.index
        fps = _average_fps(index, stated_rate)
        if index.counted:
            seconds = np.arange(len(index), dtype=np.float64) / fps
        else:
            seconds = (index.pts - index.pts[0]).astype(np.float64) * float(index.time_base)
        shown = self._coded_size[::-1] if self._quarter_turns % 2 else self._coded_size
        self._set_frames(timestamps=seconds, fps=fps, size=shown)

    @property
    def stats(self) -> DecoderStats:
        """How frames were reached so far: seeks, restarts, packets decoded."""
        return self._decoder.stats

    def _open_stream(self) -> tuple[InputContainer, VideoStream]:
        path = self._path
        try:
            container = av.open(str(path), metadata_errors="replace")
        except av.error.InvalidDataError as e:
            raise VideoError(f"not a video file, or a damaged one: {path}") from e
        except av.error.EOFError as e:
            raise VideoError(f"no video frames in {path}") from e
        except (av.FFmpegError, OSError) as e:
            reason = getattr(e, "strerror", None) or str(e)
            raise VideoError(f"cannot open {path}: {reason}") from e
        try:
            return container, _pick_stream(container, path)
        except BaseException:
            container.close()
            raise

    def _settle_index(self, index: FrameIndex) -> av.VideoFrame:
        """Make the index agree with what decodes; returns the first frame."""
        decoder = self._decoder
        if index.unstamped:
            # Without timestamps the only reliable numbering is counting from the start.
            index = FrameIndex.by_count(decoder.count_frames(), index.time_base)
            decoder.set_index(index)
        if index.suspect_tail:
            index = self._verify_tail(index)
        # Last, so that the decoder is left at the start, ready for reading on from frame 0.
        found = decoder.first_frame()
        if found is None or len(index) == 0:
            raise VideoError(f"no decodable video frames in {self._path}")
        j, frame = found
        if j > 0:
            # The decoder never shows those from the start, so they are no frames of ours.
            decoder.set_index(index.keep(np.arange(len(index)) >= j))
        decoder.stats = DecoderStats()
        return frame

    def _verify_tail(self, index: FrameIndex) -> FrameIndex:
        """Drop the frames of the last GOP that do not decode (a file cut mid-packet)."""
        last_key = int(index.seek_pos.max()) if len(index.seek_pos) else 0
        tail = np.flatnonzero(index.decode_pos >= last_key)
        if len(tail) == 0:
            return index
        first = int(tail.min())
        keep = np.arange(len(index)) < first
        keep[sorted(self._decoder.decodable_from(first))] = True
        index = index.keep(keep)
        self._decoder.set_index(index)
        return index

    def _load(self, index: int) -> tuple[av.VideoFrame, int]:
        frame = self._decoder.read(index)
        return frame, _frame_bytes(frame)

    def _to_rgb(self, item: object) -> np.ndarray:
        assert isinstance(item, av.VideoFrame)
        h, w = self._coded_size
        # A stream that changes resolution midway keeps the first frame's size.
        size = {} if (item.height, item.width) == (h, w) else {"width": w, "height": h}
        with self._convert_lock:
            converted = self._reformatter.reformat(item, format="rgb24", **size)
        rgb = converted.to_ndarray()  # (h, w, 3), may be a padded view
        if self._quarter_turns:
            rgb = np.rot90(rgb, self._quarter_turns)
        if converted is item:
            # Nothing was converted: `rgb` views the cached frame, which must stay as it is.
            return np.array(rgb, order="C")
        return np.ascontiguousarray(rgb)

    def _close(self) -> None:
        self._decoder.close()


def _pick_stream(container: InputContainer, path: Path) -> VideoStream:
    """The first real video stream (cover art is no video), set up for decoding."""
    streams = [s for s in container.streams.video if not s.disposition & Disposition.attached_pic]
    if not streams:
        raise VideoError(f"no video stream in {path}")
    stream = streams[0]
    context = stream.codec_context
    if context is None:
        raise VideoError(f"unsupported video codec in {path}")
    if context.name in _TEXT_CODECS:
        raise VideoError(f"not a video file: {path}")
    if context.width and context.height:
        # Declared before anything is decoded: a frame of this size is what each decode and
        # each cached frame would allocate.
        try:
            check_frame_size(context.height, context.width, f"{path}: frames")
        except ValueError as e:
            raise VideoError(str(e)) from None
    try:
        av.Codec(context.name, "r")
    except av.codec.codec.UnknownCodecError as e:
        raise VideoError(f"unsupported video codec '{context.name}' in {path}") from e
    for other in container.streams:
        if other.index != stream.index:
            other.discard = Discard.all
    stream.thread_type = "AUTO"
    # FFmpeg's default is a thread per machine core, competing with the model's threads.
    stream.thread_count = decoder_threads()
    return stream


def _frame_bytes(frame: av.VideoFrame) -> int:
    return sum(plane.buffer_size for plane in frame.planes)


def _average_fps(index: FrameIndex, stated: Fraction | None) -> float:
    n = len(index)
    measured = None
    if not index.counted and n > 1:
        span = float(int(index.pts[-1] - index.pts[0]) * index.time_base)
        measured = (n - 1) / span if span > 0 else None
    if stated and stated > 0:
        rate = float(stated)
        if measured is None or abs(rate - measured) <= _RATE_TOLERANCE * measured:
            return rate
    return measured if measured is not None else FALLBACK_FPS
