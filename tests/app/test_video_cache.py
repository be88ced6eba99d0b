"""The decoded-frame cache, and reading from two threads at once."""

from __future__ import annotations

import random
import threading
from pathlib import Path

import numpy as np
import pytest
from video_fixtures import H, N, W, frame_code, plain_decode, write_image_folder, write_video

from app.video import FrameCache, ImageFolderReader, VideoFileReader, open_video
from app.video.cache import DEFAULT_CACHE_FRAMES


def test_cache_evicts_least_recently_used_within_its_byte_budget() -> None:
    cache: FrameCache[str] = FrameCache(300)
    for i in range(3):
        cache.put(i, f"frame {i}", 100)
    assert cache.get(0) == "frame 0"  # 0 is now the most recently used
    cache.put(3, "frame 3", 100)
    assert [k in cache for k in range(4)] == [True, False, True, True]
    assert cache.nbytes == 300 == cache.max_bytes
    cache.put(4, "frame 4", 250)  # makes room by evicting the two least recently used
    assert [k in cache for k in (0, 2, 3, 4)] == [False, False, False, True]
    assert cache.nbytes == 250
    cache.put(5, "too big", 301)
    assert 5 not in cache and cache.get(5) is None
    cache.put(4, "frame 4 again", 50)  # replacing an item frees its bytes
    assert cache.nbytes == 50 and cache.get(4) == "frame 4 again"
    cache.clear()
    assert len(cache) == 0 and cache.nbytes == 0
    with pytest.raises(ValueError, match=">= 0"):
        FrameCache(-1)


def test_cache_keeps_a_window_of_frames_within_its_byte_budget() -> None:
    cache: FrameCache[str] = FrameCache(1000, max_frames=3)
    for i in range(5):
        cache.put(i, f"frame {i}", 10)
    assert [k in cache for k in range(5)] == [False, False, True, True, True]
    assert cache.get(2) == "frame 2"  # 2 is now the most recently used
    cache.put(5, "frame 5", 10)
    assert [k in cache for k in (2, 3, 4, 5)] == [True, False, True, True]
    assert len(cache) == 3 and cache.nbytes == 30
    cache.put(4, "frame 4 again", 10)  # replacing an item does not evict another
    assert len(cache) == 3 and 2 in cache and cache.get(4) == "frame 4 again"
    none: FrameCache[str] = FrameCache(1000, max_frames=0)
    none.put(0, "frame 0", 10)
    assert len(none) == 0 and none.get(0) is None
    with pytest.raises(ValueError, match="frames"):
        FrameCache(1000, max_frames=-1)


def test_one_pass_read_keeps_only_the_default_window(video_dir: Path) -> None:
    """Tracking and export read each frame once: the default reader must not keep them all."""
    frames = DEFAULT_CACHE_FRAMES + 40
    path = write_video(video_dir / "long.mp4", frames=frames, width=96, height=64)
    with open_video(path) as reader:
        for i in range(frames):
            reader[i]
        cache = reader._cache
        assert len(cache) == DEFAULT_CACHE_FRAMES
        assert cache.nbytes <= DEFAULT_CACHE_FRAMES * 96 * 64 * 2 < cache.max_bytes
        # The window is the most recent frames: stepping back is still a cache hit.
        assert all(i in cache for i in range(frames - DEFAULT_CACHE_FRAMES, frames))
        decoded = reader.stats.packets
        reader[frames - 2]
        assert reader.stats.packets == decoded


def test_reader_cache_stays_within_budget(gop12_mp4: Path) -> None:
    budget = 200_000  # a few 160x120 frames
    with VideoFileReader(gop12_mp4, cache_bytes=budget) as reader:
        for i in range(N):
            reader[i]
        assert 0 < reader._cache.nbytes <= budget
        assert 2 < len(reader._cache) < N
        decoded = reader.stats.packets
        last = reader[N - 1]  # still cached: no decoding
        assert reader.stats.packets == decoded
        assert frame_code(last) == N - 1
        reader[0]  # evicted long ago: decoded again
        assert reader.stats.packets > decoded


def test_image_folder_cache_returns_copies(video_dir: Path) -> None:
    folder = write_image_folder(video_dir / "copies", ".png", 3, W, H)
    with ImageFolderReader(folder) as reader:
        frame = reader[1]
        frame[:] = 0
        assert frame_code(reader[1]) == 1 and reader[1].any()


@pytest.mark.parametrize("cached_frames", [0, 4, N], ids=["no-cache", "small-cache", "all"])
def test_two_threads_reading_at_once_get_the_right_frames(
    gop12_mp4: Path, cached_frames: int
) -> None:
    expected = plain_decode(gop12_mp4)
    errors: list[str] = []
    # YUV 4:2:0 frames as cached take half the bytes of RGB ones, with some padding.
    with open_video(gop12_mp4, cache_bytes=cached_frames * H * W * 2) as reader:

        def read(seed: int) -> None:
            # Plenty of repeats, so that both threads often want the same frame.
            order = list(range(N)) * 4
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
