"""Frame-accurate reading: every frame by random access equals the plain sequential decode."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image
from video_fixtures import (
    OPEN_GOP,
    H,
    N,
    W,
    frame_code,
    pattern_frame,
    plain_decode,
    remux,
    truncate,
    write_image_folder,
    write_video,
)

from app.video import (
    ImageFolderReader,
    VideoError,
    VideoFileReader,
    VideoReader,
    open_video,
)
from app.video.decoder import StreamDecoder
from app.video.images import natural_key

VFR_MS = [0, 17, 27, 60, 93, 94, 150, 160, 193, 260, 300, 301, 333, 400, 417, 450, 500, 533]
VFR_MS += [v + 600 for v in VFR_MS]


def _h264_mkv(d: Path) -> Path:
    return write_video(d / "h264-open-gop.mkv", options=OPEN_GOP)


def _faststart_mp4(d: Path) -> Path:
    return write_video(
        d / "faststart.mp4", options=OPEN_GOP, container_options={"movflags": "faststart"}
    )


# name -> (builder, shown (height, width), whether it holds all N frames)
CASES: dict[str, tuple[Callable[[Path], Path], tuple[int, int], bool]] = {
    "h264-bframes-open-gop.mp4": (
        lambda d: write_video(d / "h264.mp4", options=OPEN_GOP),
        (H, W),
        True,
    ),
    "h264-open-gop.mkv": (_h264_mkv, (H, W), True),
    "h264.ts": (lambda d: remux(_h264_mkv(d), d / "h264.ts", "mpegts"), (H, W), True),
    "hevc-10bit.mp4": (
        lambda d: write_video(
            d / "hevc.mp4",
            codec="libx265",
            pix_fmt="yuv420p10le",
            options={"x265-params": "log-level=error:keyint=12:open-gop=1"},
        ),
        (H, W),
        True,
    ),
    "vp9.webm": (
        lambda d: write_video(
            d / "vp9.webm",
            codec="libvpx-vp9",
            options={"g": "12", "deadline": "realtime", "cpu-used": "8"},
        ),
        (H, W),
        True,
    ),
    "mjpeg.avi": (
        lambda d: write_video(d / "mjpeg.avi", codec="mjpeg", pix_fmt="yuvj420p"),
        (H, W),
        True,
    ),
    "vfr.mp4": (
        lambda d: write_video(
            d / "vfr.mp4", frames=N, pts_ms=VFR_MS, options={"bf": "2", "g": "10"}
        ),
        (H, W),
        True,
    ),
    "rotated90.mp4": (
        lambda d: write_video(d / "rot90.mp4", width=H, height=W, rotation=90),
        (W, H),
        True,
    ),
    "rotated270.mp4": (
        lambda d: write_video(d / "rot270.mp4", width=H, height=W, rotation=-90),
        (W, H),
        True,
    ),
    "rotated180.mp4": (
        lambda d: write_video(d / "rot180.mp4", rotation=180, options={"g": "6"}),
        (H, W),
        True,
    ),
    "odd-853x481.mp4": (
        lambda d: write_video(
            d / "odd.mp4", width=853, height=481, pix_fmt="yuv444p", options=OPEN_GOP
        ),
        (481, 853),
        True,
    ),
    "cut-short.mkv": (
        lambda d: truncate(_h264_mkv(d), d / "cut-short.mkv", 0.6),
        (H, W),
        False,
    ),
    "cut-short-faststart.mp4": (
        lambda d: truncate(_faststart_mp4(d), d / "cut-short.mp4", 0.6),
        (H, W),
        False,
    ),
    "raw-no-timestamps.h264": (
        lambda d: remux(_h264_mkv(d), d / "raw.h264", "h264"),
        (H, W),
        True,
    ),
    "png-folder": (lambda d: write_image_folder(d / "png", ".png", N, W, H), (H, W), True),
    "jpeg-folder": (lambda d: write_image_folder(d / "jpg", ".jpg", N, W, H), (H, W), True),
}


class Case:
    def __init__(self, name: str, path: Path, shown: tuple[int, int], complete: bool) -> None:
        self.name, self.path, self.shown, self.complete = name, path, shown, complete
        self.expected = _folder_frames(path) if path.is_dir() else plain_decode(path)


def _folder_frames(folder: Path) -> list[np.ndarray]:
    # Decoded by Pillow, not by the code under test, in the order the files were written.
    images = (p for p in folder.iterdir() if p.suffix != ".txt")
    names = sorted(images, key=lambda p: (len(p.name), p.name))
    return [np.asarray(Image.open(p).convert("RGB")) for p in names]


@pytest.fixture(scope="session", params=list(CASES))
def case(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Case:
    build, shown, complete = CASES[request.param]
    path = build(tmp_path_factory.mktemp(request.param.replace(".", "-")))
    return Case(request.param, path, shown, complete)


def _assert_same(got: np.ndarray, want: np.ndarray, what: str) -> None:
    assert got.dtype == np.uint8 and got.flags.c_contiguous, what
    assert got.shape == want.shape, what
    assert np.array_equal(got, want), f"{what}: max diff {np.abs(got - want.astype(int)).max()}"


# ---- every case --------------------------------------------------------------------------


def test_length_size_and_frame_order(case: Case) -> None:
    with open_video(case.path) as reader:
        assert len(reader) == len(case.expected)
        if case.complete:
            assert len(reader) == N
        else:
            assert 0 < len(reader) < N
        assert reader.size == case.shown
        codes = [frame_code(reader[i]) for i in range(len(reader))]
    if case.complete:
        assert codes == list(range(N))
    else:
        # A cut in decode order can take B-frames shown before the last kept frame.
        assert codes == sorted(set(codes)) == [frame_code(f) for f in case.expected]


def test_random_access_equals_plain_decode(case: Case) -> None:
    order = list(range(len(case.expected)))
    random.Random(7).shuffle(order)
    with open_video(case.path, cache_bytes=0) as reader:
        for i in order:
            _assert_same(reader[i], case.expected[i], f"{case.name} frame {i}")


def test_sequential_read_equals_plain_decode_without_seeking(case: Case) -> None:
    with open_video(case.path, cache_bytes=0) as reader:
        frames = list(reader)
        assert len(frames) == len(case.expected)
        for i, (got, want) in enumerate(zip(frames, case.expected, strict=True)):
            _assert_same(got, want, f"{case.name} frame {i}")
        if isinstance(reader, VideoFileReader):
            assert reader.stats.seeks == 0
            assert reader.stats.restarts == 0


# ---- particular properties ---------------------------------------------------------------


@pytest.mark.parametrize("codec", ["libx264", "libx265", "libvpx-vp9", "mjpeg"])
def test_encoders_the_fixtures_need_are_available(codec: str) -> None:
    # A PyAV build without one of these must fail here, by name, rather than skip cases.
    assert codec in av.codecs_available, f"PyAV's FFmpeg has no {codec} encoder"
    assert av.Codec(codec, "w").is_encoder


def test_open_gop_fixture_has_leading_frames(gop12_mp4: Path) -> None:
    # The B-frame cases only test open GOPs if some frames follow a keyframe in decode
    # order yet are shown before it.
    with av.open(str(gop12_mp4)) as container:
        stream = container.streams.video[0]
        packets = [(p.pts, p.is_keyframe) for p in container.demux(stream) if p.size]
    leading = 0
    key_pts = None
    for pts, key in packets:
        if key:
            key_pts = pts
        elif key_pts is not None and key_pts > 0 and pts < key_pts:
            leading += 1
    assert leading > 0


def test_constant_rate_timing(gop12_mp4: Path) -> None:
    with open_video(gop12_mp4) as reader:
        assert reader.fps == 30.0
        assert reader.duration == pytest.approx(N / 30)
        np.testing.assert_allclose(reader.timestamps, np.arange(N) / 30, atol=1e-9)


def test_variable_rate_timestamps_come_from_pts(video_dir: Path) -> None:
    path = write_video(video_dir / "vfr.mkv", frames=N, pts_ms=VFR_MS, options={"bf": "2"})
    with open_video(path) as reader:
        np.testing.assert_allclose(reader.timestamps, np.array(VFR_MS) / 1000, atol=1e-9)
        assert reader.fps == pytest.approx((N - 1) / (VFR_MS[-1] / 1000))
        assert frame_code(reader[20]) == 20


@pytest.mark.parametrize("rotation", [90, -90, 180])
def test_rotation_metadata_gives_upright_frames(video_dir: Path, rotation: int) -> None:
    path = write_video(video_dir / f"turn{rotation}.mp4", width=H, height=W, rotation=rotation)
    with av.open(str(path)) as container:
        stored = container.streams.video[0]
        assert (stored.width, stored.height) == ((H, W) if rotation == 180 else (W, H))
    with open_video(path) as reader:
        assert reader.size == (W, H)
        for i in (0, 17, N - 1):
            upright = pattern_frame(i, H, W)
            diff = np.abs(reader[i].astype(int) - upright).mean()
            assert diff < 6, f"frame {i} differs from upright by {diff:.1f} on average"


def test_ten_bit_source_gives_8_bit_rgb(video_dir: Path) -> None:
    # 4:4:4 so that chroma subsampling of the texture does not swamp the comparison.
    path = write_video(
        video_dir / "ten.mkv",
        codec="libx265",
        pix_fmt="yuv444p10le",
        options={"x265-params": "log-level=error:crf=12"},
    )
    with av.open(str(path)) as container:
        assert container.streams.video[0].format.name == "yuv444p10le"
    with open_video(path) as reader:
        frame = reader[5]
    assert frame.dtype == np.uint8 and frame.shape == (H, W, 3)
    assert frame_code(frame) == 5
    assert np.abs(frame.astype(int) - pattern_frame(5, W, H)).mean() < 2


def test_random_access_decodes_from_the_nearest_keyframe(gop12_mp4: Path) -> None:
    with VideoFileReader(gop12_mp4, cache_bytes=0) as reader:
        for i in (30, 5, 20, 34, 13):
            before = reader.stats.packets
            reader[i]
            # The GOP is 12 frames: decoding from the start would need up to 36 packets.
            assert reader.stats.packets - before <= 12 + 3 + 4, f"frame {i}"
        assert reader.stats.restarts == 0
        assert reader.stats.misses == 0


def test_a_seek_that_lands_too_late_falls_back_to_an_earlier_keyframe(
    gop12_mp4: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = plain_decode(gop12_mp4)
    seek_to = StreamDecoder._seek_to
    tries: list[int] = []

    def overshooting(self: StreamDecoder, ts: int, k: int) -> bool:
        # The first two tries (by pts, then by dts) aim far past the end: the container
        # lands on its last keyframe, after the one wanted.
        tries.append(k)
        return seek_to(self, ts + 10**7 if len(tries) <= 2 else ts, k)

    monkeypatch.setattr(StreamDecoder, "_seek_to", overshooting)
    with VideoFileReader(gop12_mp4, cache_bytes=0) as reader:
        frame = reader[17]
        assert reader.stats.misses == 1
    assert tries == [1, 1, 0]  # keyframe 1 (frame 12) twice, then keyframe 0 (frame 0)
    assert np.array_equal(frame, expected[17])


def test_negative_and_out_of_range_indices(gop12_mp4: Path) -> None:
    with open_video(gop12_mp4) as reader:
        assert np.array_equal(reader[-1], reader[N - 1])
        assert np.array_equal(reader[-N], reader[0])
        for bad in (N, -N - 1, 10**9):
            with pytest.raises(IndexError, match="out of range"):
                reader[bad]
        with pytest.raises(TypeError):
            reader[1.5]  # type: ignore[index]
        assert np.array_equal(reader[np.int64(3)], reader[3])


def test_frames_are_private_writable_copies(gop12_mp4: Path) -> None:
    with open_video(gop12_mp4) as reader:
        first = reader[4]
        assert first.flags.writeable
        first[:] = 0
        again = reader[4]
        assert again.any()
        assert frame_code(again) == 4


def test_close_and_context_manager(gop12_mp4: Path) -> None:
    with open_video(gop12_mp4) as reader:
        assert isinstance(reader, VideoReader) and not reader.closed
        reader[3]
    assert reader.closed
    with pytest.raises(VideoError, match="closed"):
        reader[3]
    reader.close()  # closing twice is fine


def test_open_video_picks_the_reader(gop12_mp4: Path, video_dir: Path) -> None:
    folder = write_image_folder(video_dir / "pick", ".png", 3, W, H)
    with open_video(folder, folder_fps=12.5) as reader:
        assert isinstance(reader, ImageFolderReader)
        assert reader.fps == 12.5
        np.testing.assert_allclose(reader.timestamps, np.arange(3) / 12.5)
    with open_video(str(gop12_mp4)) as reader:
        assert isinstance(reader, VideoFileReader)


def test_image_folder_natural_order(video_dir: Path) -> None:
    folder = write_image_folder(video_dir / "natural", ".png", 12, W, H)
    with ImageFolderReader(folder) as reader:
        assert [p.name for p in reader.files] == [f"frame{i}.png" for i in range(1, 13)]
    names = ["f10.jpg", "f2.jpg", "F1.jpg", "f02b.jpg", "a.jpg", "f", "f1", "f1x2", "f1x10"]
    assert sorted(names, key=natural_key) == [
        *("a.jpg", "f", "f1", "F1.jpg", "f1x2", "f1x10", "f2.jpg", "f02b.jpg", "f10.jpg")
    ]
