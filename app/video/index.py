"""Where each frame of a video stream is, from one pass over its packets without decoding.

Frames are numbered in presentation order, i.e. by sorted pts, never by packet order or by
time * fps: B-frames, open GOPs and variable frame rates all number correctly that way.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np
from av.container import InputContainer
from av.video.stream import VideoStream

from app.safety.limits import MAX_FRAMES
from app.video.errors import VideoError

_EMPTY = np.zeros(0, dtype=np.int64)


@dataclass(frozen=True)
class FrameIndex:
    """Frame timestamps in presentation order and the keyframes decoding can start from.

    "Decode position" is a packet's place in file order among the stream's non-empty packets,
    the order in which a decoder sees them after a restart.
    """

    pts: np.ndarray  # (N,) int64, strictly increasing, in `time_base` units
    decode_pos: np.ndarray  # (N,) int64, decode position of frame i's packet
    seek_pts: np.ndarray  # (K,) int64, increasing: pts of the keyframe packets
    seek_pos: np.ndarray  # (K,) int64, their decode positions
    seek_dts: np.ndarray  # (K,) int64, their dts (pts where dts is unknown)
    time_base: Fraction
    # Decode positions from here on are never sent to a decoder (a cut-off last packet).
    end_pos: int = 2**62
    # Packets whose pts is unknown: numbering by pts would then miss frames.
    unstamped: int = 0
    # The scan saw a truncated or damaged end: the last frames need a decode to be trusted.
    suspect_tail: bool = False
    # Numbered by counting decoder output from the start; pts are then just 0..N-1.
    counted: bool = False

    def __len__(self) -> int:
        return len(self.pts)

    @classmethod
    def by_count(cls, n: int, time_base: Fraction) -> FrameIndex:
        """An index for a stream without timestamps: frame i is the i-th frame decoded."""
        frames = np.arange(n, dtype=np.int64)
        return cls(frames, frames, _EMPTY, _EMPTY, _EMPTY, time_base, counted=True)

    def frame_of(self, pts: int | None) -> int:
        """Frame number with this pts, or -1."""
        if pts is None:
            return -1
        i = int(np.searchsorted(self.pts, pts))
        return i if i < len(self.pts) and self.pts[i] == pts else -1

    def seek_point_of(self, pts: int | None) -> int:
        """Number of the keyframe packet with this pts, or -1."""
        if pts is None:
            return -1
        k = int(np.searchsorted(self.seek_pts, pts))
        return k if k < len(self.seek_pts) and self.seek_pts[k] == pts else -1

    def seek_point_before(self, frame: int) -> int:
        """The last keyframe packet whose pts is <= frame `frame`'s pts, or -1 if none."""
        return int(np.searchsorted(self.seek_pts, self.pts[frame], side="right")) - 1

    def first_frame_from(self, seek_point: int) -> int:
        """Number of the first frame shown at or after keyframe packet `seek_point`."""
        return int(np.searchsorted(self.pts, self.seek_pts[seek_point]))

    def keep(self, mask: np.ndarray) -> FrameIndex:
        """This index with only the frames where `mask` (N,) is true; renumbers frames."""
        return FrameIndex(
            self.pts[mask],
            self.decode_pos[mask],
            self.seek_pts,
            self.seek_pos,
            self.seek_dts,
            self.time_base,
            end_pos=self.end_pos,
            unstamped=self.unstamped,
            suspect_tail=self.suspect_tail,
            counted=self.counted,
        )


def scan_packets(container: InputContainer, stream: VideoStream) -> FrameIndex:
    """Index `stream` by demuxing every packet of it once; nothing is decoded.

    Packets that yield no frame of their own are left out: empty ones, ones the container
    marks as discarded (edit lists), and a last packet cut short by the end of the file.
    """
    pts: list[int] = []
    pos: list[int] = []
    keys: list[tuple[int, int, int]] = []  # (pts, decode position, dts)
    unstamped: list[int] = []  # decode positions of frames without pts
    suspect = False
    n = 0  # decode position of the next packet
    last_corrupt = False
    try:
        for packet in container.demux(stream):
            if packet.size == 0:
                continue
            n += 1
            if n > MAX_FRAMES:
                # Each packet costs index memory: a hostile stream of empty frames must not
                # be able to grow it without bound.
                raise VideoError(f"more than {MAX_FRAMES:,} frames")
            last_corrupt = packet.is_corrupt
            p = packet.pts
            if p is None:
                if not packet.is_discard:
                    unstamped.append(n - 1)
                continue
            if packet.is_keyframe:
                keys.append((p, n - 1, p if packet.dts is None else packet.dts))
            if not packet.is_discard:
                pts.append(p)
                pos.append(n - 1)
    except av.FFmpegError:
        suspect = True
    end_pos = n
    if last_corrupt:
        # A file cut mid-packet: a decoder fed the partial packet may fail, and with frame
        # threading lose the frames it still holds, so it never gets that packet.
        end_pos = n - 1
        if pos and pos[-1] == end_pos:
            pts.pop()
            pos.pop()
        if unstamped and unstamped[-1] == end_pos:
            unstamped.pop()
        if keys and keys[-1][1] == end_pos:
            keys.pop()
    # A header that promises more frames than the file holds means the file was cut short.
    suspect = suspect or last_corrupt or 0 < stream.frames != n
    return _build(
        pts, pos, keys, stream, end_pos=end_pos, unstamped=len(unstamped), suspect=suspect
    )


def _build(
    pts: list[int],
    pos: list[int],
    keys: list[tuple[int, int, int]],
    stream: VideoStream,
    *,
    end_pos: int,
    unstamped: int,
    suspect: bool,
) -> FrameIndex:
    frame_pts = np.asarray(pts, dtype=np.int64)
    frame_pos = np.asarray(pos, dtype=np.int64)
    if keys:
        # Packets before the first keyframe cannot be decoded, so a decoder shows none of them.
        decodable = frame_pos >= keys[0][1]
        frame_pts, frame_pos = frame_pts[decodable], frame_pos[decodable]
    order = np.lexsort((frame_pos, frame_pts))
    frame_pts, frame_pos = frame_pts[order], frame_pos[order]
    # Duplicate pts cannot be told apart by pts; keep the first in decode order.
    first = np.ones(len(frame_pts), dtype=bool)
    first[1:] = frame_pts[1:] != frame_pts[:-1]
    keys = sorted({k[0]: k for k in reversed(keys)}.values())
    return FrameIndex(
        frame_pts[first],
        frame_pos[first],
        np.asarray([k[0] for k in keys], dtype=np.int64),
        np.asarray([k[1] for k in keys], dtype=np.int64),
        np.asarray([k[2] for k in keys], dtype=np.int64),
        stream.time_base or Fraction(1, 1),
        end_pos=end_pos,
        unstamped=unstamped,
        suspect_tail=suspect,
    )
