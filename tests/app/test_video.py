"""Frame-accurate reading: every frame by random access equals the plain sequential decode."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from PIL import Image
from video_fixtures import (
    frame_code,
    pattern_frame,
    plain_decode,
    remux,
    truncate,
    write_image_folder,
    write_video,
)

from app.video import (
    FrameCache,
    ImageFolderReader,
    VideoError,
    VideoFileReader,
    VideoReader,
    open_video,
)
from app.video.images import natural_key

N = 36  # frames per generated clip
W, H = 160, 120
OPEN_GOP = {"bf": "3", "g": "12", "x264-params": "open_gop=1"}
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


@pytest.fixture(scope="session")
def videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("videos")


@pytest.fixture(scope="session")
def h264_mp4(videos: Path) -> Path:
    return write_video(videos / "gop12.mp4", options=OPEN_GOP)


def test_open_gop_fixture_has_leading_frames(h264_mp4: Path) -> None:
    # The B-frame cases only test open GOPs if some frames follow a keyframe in decode
    # order yet are shown before it.
    with av.open(str(h264_mp4)) as container:
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


def test_constant_rate_timing(h264_mp4: Path) -> None:
    with open_video(h264_mp4) as reader:
        assert reader.fps == 30.0
        assert reader.duration == pytest.approx(N / 30)
        np.testing.assert_allclose(reader.timestamps, np.arange(N) / 30, atol=1e-9)


def test_variable_rate_timestamps_come_from_pts(videos: Path) -> None:
    path = write_video(videos / "vfr.mkv", frames=N, pts_ms=VFR_MS, options={"bf": "2"})
    with open_video(path) as reader:
        np.testing.assert_allclose(reader.timestamps, np.array(VFR_MS) / 1000, atol=1e-9)
        assert reader.fps == pytest.approx((N - 1) / (VFR_MS[-1] / 1000))
        assert frame_code(reader[20]) == 20


@pytest.mark.parametrize("rotation", [90, -90, 180])
def test_rotation_metadata_gives_upright_frames(videos: Path, rotation: int) -> None:
    path = write_video(videos / f"turn{rotation}.mp4", width=H, height=W, rotation=rotation)
    with av.open(str(path)) as container:
        stored = container.streams.video[0]
        assert (stored.width, stored.height) == ((H, W) if rotation == 180 else (W, H))
    with open_video(path) as reader:
        assert reader.size == (W, H)
        for i in (0, 17, N - 1):
            upright = pattern_frame(i, H, W)
            diff = np.abs(reader[i].astype(int) - upright).mean()
            assert diff < 6, f"frame {i} differs from upright by {diff:.1f} on average"


def test_ten_bit_source_gives_8_bit_rgb(videos: Path) -> None:
    # 4:4:4 so that chroma subsampling of the texture does not swamp the comparison.
    path = write_video(
        videos / "ten.mkv",
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


def test_random_access_decodes_from_the_nearest_keyframe(h264_mp4: Path) -> None:
    with VideoFileReader(h264_mp4, cache_bytes=0) as reader:
        for i in (30, 5, 20, 34, 13):
            before = reader.stats.packets
            reader[i]
            # The GOP is 12 frames: decoding from the start would need up to 36 packets.
            assert reader.stats.packets - before <= 12 + 3 + 4, f"frame {i}"
        assert reader.stats.restarts == 0
        assert reader.stats.misses == 0


def test_negative_and_out_of_range_indices(h264_mp4: Path) -> None:
    with open_video(h264_mp4) as reader:
        assert np.array_equal(reader[-1], reader[N - 1])
        assert np.array_equal(reader[-N], reader[0])
        for bad in (N, -N - 1, 10**9):
            with pytest.raises(IndexError, match="out of range"):
                reader[bad]
        with pytest.raises(TypeError):
            reader[1.5]  # type: ignore[index]
        assert np.array_equal(reader[np.int64(3)], reader[3])


def test_frames_are_private_writable_copies(h264_mp4: Path) -> None:
    with open_video(h264_mp4) as reader:
        first = reader[4]
        assert first.flags.writeable
        first[:] = 0
        again = reader[4]
        assert again.any()
        assert frame_code(again) == 4


def test_close_and_context_manager(h264_mp4: Path) -> None:
    with open_video(h264_mp4) as reader:
        assert isinstance(reader, VideoReader) and not reader.closed
        reader[3]
    assert reader.closed
    with pytest.raises(VideoError, match="closed"):
        reader[3]
    reader.close()  # closing twice is fine


def test_open_video_picks_the_reader(h264_mp4: Path, videos: Path) -> None:
    folder = write_image_folder(videos / "pick", ".png", 3, W, H)
    with open_video(folder, folder_fps=12.5) as reader:
        assert isinstance(reader, ImageFolderReader)
        assert reader.fps == 12.5
        np.testing.assert_allclose(reader.timestamps, np.arange(3) / 12.5)
    with open_video(str(h264_mp4)) as reader:
        assert isinstance(reader, VideoFileReader)


def test_image_folder_natural_order(videos: Path) -> None:
    folder = write_image_folder(videos / "natural", ".png", 12, W, H)
    with ImageFolderReader(folder) as reader:
        assert [p.name for p in reader.files] == [f"frame{i}.png" for i in range(1, 13)]
    names = ["f10.jpg", "f2.jpg", "F1.jpg", "f02b.jpg", "a.jpg"]
    assert sorted(names, key=natural_key) == ["a.jpg", "F1.jpg", "f2.jpg", "f02b.jpg", "f10.jpg"]


# ---- cache and threads -------------------------------------------------------------------


def test_cache_evicts_least_recently_used_within_its_byte_budget() -> None:
    frame_bytes = H * W * 3
    cache = FrameCache(3 * frame_bytes + 10)
    for i in range(3):
        cache.put(i, np.zeros((H, W, 3), np.uint8))
    assert cache.get(0) is not None  # 0 is now the most recently used
    cache.put(3, np.zeros((H, W, 3), np.uint8))
    assert 1 not in cache and {0, 2, 3} <= {k for k in range(4) if k in cache}
    assert cache.nbytes == 3 * frame_bytes <= cache.max_bytes
    cache.put(9, np.zeros((H, 2 * W, 3 * 2), np.uint8))  # larger than the whole budget
    assert 9 not in cache and len(cache) == 3
    stored = cache.get(0)
    assert stored is not None and not stored.flags.writeable
    with pytest.raises(ValueError, match=">= 0"):
        FrameCache(-1)


def test_reader_cache_stays_within_budget(h264_mp4: Path) -> None:
    budget = 5 * H * W * 3
    with VideoFileReader(h264_mp4, cache_bytes=budget) as reader:
        for i in range(N):
            reader[i]
        assert reader._cache.nbytes <= budget
        assert len(reader._cache) == 5
        decoded = reader.stats.packets
        reader[N - 2]  # still cached: no decoding
        assert reader.stats.packets == decoded


def test_two_threads_reading_at_once_get_the_right_frames(h264_mp4: Path) -> None:
    expected = plain_decode(h264_mp4)
    errors: list[str] = []
    with open_video(h264_mp4, cache_bytes=4 * H * W * 3) as reader:

        def read(seed: int) -> None:
            order = list(range(N)) * 3
            random.Random(seed).shuffle(order)
            for i in order:
                if not np.array_equal(reader[i], expected[i]):
                    errors.append(f"thread {seed} frame {i}")

        threads = [threading.Thread(target=read, args=(seed,)) for seed in (1, 2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not any(thread.is_alive() for thread in threads)
    assert errors == []


# ---- bad input ---------------------------------------------------------------------------


def _text(path: Path) -> Path:
    path.write_text("hello, this is not a video\n" * 20)
    return path


def _audio_only(path: Path) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=8000, layout="mono")
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), "s16", "mono")
        frame.sample_rate = 8000
        for packet in [*stream.encode(frame), *stream.encode()]:
            container.mux(packet)
    return path


def _no_frames(path: Path) -> Path:
    source = write_video(path.with_suffix(".full.mkv"), frames=3)
    with av.open(str(source)) as container:
        first = next(p for p in container.demux(video=0) if p.size)
    path.write_bytes(source.read_bytes()[: first.pos])  # headers only
    return path


def _unknown_codec(path: Path) -> Path:
    source = write_video(path.with_suffix(".src.avi"), codec="mjpeg", pix_fmt="yuvj420p")
    path.write_bytes(source.read_bytes().replace(b"MJPG", b"QQQQ"))
    return path


def _cut_mp4(path: Path) -> Path:
    # Without faststart the index (moov) is at the end: cut it off and nothing is readable.
    return truncate(write_video(path.with_suffix(".full.mp4")), path, 0.5)


def _empty_folder(path: Path) -> Path:
    path.mkdir()
    (path / "readme.txt").write_text("no images here")
    return path


def _broken_image(path: Path) -> Path:
    path.mkdir()
    (path / "0.png").write_bytes(b"\x89PNG broken")
    return path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d / "missing.mp4", "no such file: "),
        (lambda d: _text(d / "notes.txt"), "not a video file: "),
        (lambda d: _text(d / "fake.mp4"), "not a video file, or a damaged one: "),
        (lambda d: _audio_only(d / "sound.wav"), "no video stream in "),
        (lambda d: _no_frames(d / "empty.mkv"), "no video frames in "),
        (lambda d: _unknown_codec(d / "odd.avi"), "unsupported video codec in "),
        (lambda d: _cut_mp4(d / "cut.mp4"), "not a video file, or a damaged one: "),
        (lambda d: _empty_folder(d / "nothing"), "no JPEG or PNG images in folder "),
        (lambda d: _broken_image(d / "broken"), "cannot decode image "),
    ],
    ids=[
        "missing",
        "text",
        "text-as-mp4",
        "audio-only",
        "zero-frames",
        "unknown-codec",
        "cut-mp4",
        "empty-folder",
        "broken-image",
    ],
)
def test_bad_input_raises_one_line_video_error(
    tmp_path: Path, make: Callable[[Path], Path], message: str
) -> None:
    path = make(tmp_path)
    with pytest.raises(VideoError) as caught:
        open_video(path)
    text = str(caught.value)
    assert text.startswith(message) and "\n" not in text
    assert path.name in text
    assert isinstance(caught.value, ValueError)


def test_folder_image_of_another_size_fails_when_read(videos: Path) -> None:
    folder = write_image_folder(videos / "mixed", ".png", 3, W, H)
    odd = pattern_frame(2, W // 2, H)
    assert cv2.imwrite(str(folder / "frame3.png"), odd)
    with open_video(folder) as reader:
        assert frame_code(reader[1]) == 1
        with pytest.raises(VideoError, match=r"frame3.png is 80x120, unlike the first image"):
            reader[2]
