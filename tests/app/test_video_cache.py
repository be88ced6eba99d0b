"""The decoded-frame cache, and reading from two threads at once."""

from __future__ import annotations

import random
import threading
from pathlib import Path

import numpy as np
import pytest
from video_fixtures import H, N, W, frame_code, plain_decode, write_image_folder

from app.video import FrameCache, ImageFolderReader, VideoFileReader, open_video


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
