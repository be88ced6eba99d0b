"""Decoding one video stream by frame number: forward when that is cheaper, else seek.

Decoded frames are matched to frame numbers by their pts, never by counting from a seek,
since after a seek a decoder may drop or garble the leading frames of an open GOP.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from av.container import InputContainer
from av.video.stream import VideoStream

from app.video.errors import VideoError
from app.video.index import FrameIndex

# A frame leaves the decoder within this many packets after its own: reordering (at most 16
# reference frames in H.264/HEVC) plus frame-threading delay, with room to spare.
OUTPUT_DELAY_PACKETS = 64
# Keyframes to try, going back, before decoding from the very start of the file.
SEEK_ATTEMPTS = 3

OpenStream = Callable[[], tuple[InputContainer, VideoStream]]


@dataclass
class DecoderStats:
    """Counters for tests and benchmarks: how a decoder reached the frames asked of it."""

    seeks: int = 0
    restarts: int = 0
    packets: int = 0  # packets sent to the decoder
    misses: int = 0  # positionings that did not yield the frame wanted


class StreamDecoder:
    """Keeps one decoder positioned in a stream and brings it to any frame.

    Not thread-safe: the owning reader serialises calls.
    """

    def __init__(self, *, path: Path, index: FrameIndex, open_stream: OpenStream) -> None:
        self._path = path
        self._index = index
        self._open_stream = open_stream
        self.stats = DecoderStats()
        self._container: InputContainer | None = None
        self._stream: VideoStream | None = None
        self._packets = iter(())
        self._pending: deque[av.VideoFrame] = deque()
        self._fed = 0  # decode position of the next packet to send
        self._last = -1  # frames after this one come out next
        self._eof = False
        self._from_start = True
        self._counted = 0  # frames output since the last restart
        self._seek_by_dts = False
        self.restart()
        self.stats.restarts = 0

    @property
    def index(self) -> FrameIndex:
        return self._index

    def set_index(self, index: FrameIndex) -> None:
        """Use `index`, a subset of the current one, keeping the decoder's position."""
        old = self._index
        if 0 <= self._last < len(old):
            self._last = int(np.searchsorted(index.pts, old.pts[self._last], side="right")) - 1
        elif self._last >= len(old):
            self._last = len(index)
        self._index = index

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None
        self._pending.clear()

    def read(self, i: int) -> av.VideoFrame:
        """Frame `i`, decoded from a keyframe at or before it. Raises VideoError if impossible."""
        if self._can_continue(i):
            frame = self._decode_until(i)
            if frame is not None:
                return frame
        for start in self._starts(i):
            if start < 0:
                self.restart()
            elif not self._seek(start):
                continue
            frame = self._decode_until(i)
            if frame is not None:
                return frame
        raise VideoError(f"frame {i} of {self._path} cannot be decoded")

    def first_frame(self) -> tuple[int, av.VideoFrame] | None:
        """The first frame a decoder shows from the start, with its number, or None.

        The frame stays queued, so reading on from the start decodes nothing twice.
        """
        self._ensure_at_start()
        while (frame := self._next_frame(math.inf)) is not None:
            j = self._number(frame)
            if j >= 0:
                self._pending.appendleft(frame)
                if self._index.counted:
                    self._counted -= 1
                self._last = j - 1
                return j, frame
        return None

    def decodable_from(self, i: int) -> set[int]:
        """Numbers of the frames >= i that decode cleanly, found by decoding to the end."""
        if not self._position_for(i):
            return set()
        found: set[int] = set()
        while (frame := self._next_frame(math.inf)) is not None:
            j = self._number(frame)
            if j >= i and (self._from_start or not frame.is_corrupt):
                found.add(j)
        self._last = len(self._index)
        return found

    def count_frames(self) -> int:
        """Frames a decoder shows from start to end; for streams without timestamps."""
        self._ensure_at_start()
        n = 0
        while self._next_frame(math.inf) is not None:
            n += 1
        self._last = len(self._index)
        return n

    def restart(self) -> None:
        """Reopen the file: the decoder then sees packets exactly as a plain decode loop does."""
        self.close()
        self.stats.restarts += 1
        self._container, self._stream = self._open_stream()
        self._packets = self._container.demux(self._stream)
        self._fed = 0
        self._last = -1
        self._eof = False
        self._from_start = True
        self._counted = 0

    def _ensure_at_start(self) -> None:
        if not (self._from_start and self._fed == 0 and not self._pending):
            self.restart()

    def _can_continue(self, i: int) -> bool:
        # Decoding on from here costs no more than seeking to the keyframe before frame i.
        if self._last >= i:
            return False
        k = self._index.seek_point_before(i)
        return k < 0 or self._last + 1 >= self._index.first_frame_from(k)

    def _starts(self, i: int) -> list[int]:
        """Keyframe packets to decode frame i from, best first; -1 is the file's start."""
        k = self._index.seek_point_before(i)
        return [*range(k, max(k - SEEK_ATTEMPTS, -1), -1), -1]

    def _position_for(self, i: int) -> bool:
        for start in self._starts(i):
            if start < 0:
                self.restart()
                return True
            if self._seek(start):
                return True
        return False

    def _seek(self, k: int) -> bool:
        """Position the decoder at keyframe packet k or an earlier one; False if that failed."""
        index = self._index
        self.stats.seeks += 1
        # Containers differ in what seek timestamps mean: MP4 and Matroska seek by pts,
        # MPEG-TS by dts. Try the one that worked last first.
        stamps = [int(index.seek_pts[k]), int(index.seek_dts[k])]
        if stamps[1] >= stamps[0]:
            stamps.pop()
        elif self._seek_by_dts:
            stamps.reverse()
        for ts in stamps:
            if self._seek_to(ts, k):
                self._seek_by_dts = ts != index.seek_pts[k]
                return True
        self.stats.misses += 1
        self._last = len(index)
        return False

    def _seek_to(self, ts: int, k: int) -> bool:
        index, container, stream = self._index, self._container, self._stream
        assert container is not None and stream is not None
        try:
            container.seek(ts, stream=stream, backward=True, any_frame=False)
        except av.FFmpegError:
            return False
        self._packets = container.demux(stream)
        self._pending.clear()
        self._eof = False
        self._from_start = False
        # Check where the seek really landed, and never start decoding on anything but a
        # known keyframe: landing after keyframe k would miss frames or garble them.
        while (packet := self._next_packet()) is not None:
            landed = index.seek_point_of(packet.pts) if packet.is_keyframe else -1
            if landed < 0:
                continue
            if index.seek_pos[landed] > index.seek_pos[k]:
                return False
            self._fed = int(index.seek_pos[landed]) + 1
            self._pending.extend(self._decode(packet))
            self._last = index.first_frame_from(landed) - 1
            return True
        return False

    def _decode_until(self, i: int) -> av.VideoFrame | None:
        index = self._index
        limit = math.inf if index.counted else int(index.decode_pos[i]) + OUTPUT_DELAY_PACKETS
        while (frame := self._next_frame(limit)) is not None:
            j = self._number(frame)
            if j < 0:
                continue
            self._last = j
            if j == i:
                # A corrupt frame is only what a plain decode would show when decoding from
                # the start; after a seek it means a bad starting point.
                if frame.is_corrupt and not self._from_start:
                    break
                return frame
        self.stats.misses += 1
        return None

    def _number(self, frame: av.VideoFrame) -> int:
        if self._index.counted:
            self._counted += 1
            return self._counted - 1 if self._counted <= len(self._index) else -1
        return self._index.frame_of(frame.pts)

    def _next_frame(self, limit: float) -> av.VideoFrame | None:
        """The decoder's next output frame; None at the end or past decode position `limit`."""
        while not self._pending:
            if self._eof or self._fed > limit:
                return None
            packet = self._next_packet() if self._fed < self._index.end_pos else None
            if packet is None:
                self._eof = True
                self._pending.extend(self._decode(None))
            else:
                self._fed += 1
                self._pending.extend(self._decode(packet))
        return self._pending.popleft()

    def _next_packet(self) -> av.Packet | None:
        while True:
            try:
                packet = next(self._packets)
            except StopIteration:
                return None
            except av.FFmpegError:
                # A damaged or truncated file: what was read so far still decodes.
                return None
            if packet.size:
                return packet

    def _decode(self, packet: av.Packet | None) -> list[av.VideoFrame]:
        assert self._stream is not None
        try:
            frames = self._stream.decode(packet)
        except av.error.DecoderNotFoundError as e:
            raise VideoError(f"unsupported video codec in {self._path}") from e
        except av.FFmpegError:
            # A damaged packet: skip it; the frames depending on it will be missed by pts.
            return []
        self.stats.packets += packet is not None
        return frames
