"""SAM 3's finder checkpoint (`sam3.pt`): where it comes from and how the user's Hugging Face
token is found and used to download it.

Meta gates `facebook/sam3` on Hugging Face: the file downloads only for an account that has
accepted the licence on the model page, with that account's token. Masklet never asks for,
stores or logs a token: it uses the one the user already has, the `HF_TOKEN` variable or
the file that `hf auth login` (formerly `huggingface-cli login`) saves, read at the moment
of the download and sent only as the request's `Authorization` header to huggingface.co
(never to the host it redirects to). huggingface_hub is not needed: the file is one HTTPS
GET of the model's `resolve/main/sam3.pt` URL, through `app.models.model_store`'s resumable,
atomic downloader.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from app.models.model_store import (
    CheckpointEntry,
    DownloadError,
    checkpoint_dir,
    download_checkpoint,
)

__all__ = [
    "FINDER",
    "MODEL_PAGE",
    "HfToken",
    "download_finder",
    "find_token",
    "hf_token_path",
]

REPO = "facebook/sam3"
MODEL_PAGE = f"https://huggingface.co/{REPO}"
# Tokens are ~40 characters; a bigger "token file" is something else and is not read whole.
_MAX_TOKEN_BYTES = 4096
# 848 M float32 parameters (detector and tracker): about 3.4 GB, as the model page lists.
FINDER = CheckpointEntry(
    variant="sam3",
    label="SAM 3 (finder)",
    filename="sam3.pt",
    url=f"{MODEL_PAGE}/resolve/main/sam3.pt",
    approx_size=3_450_000_000,
)


@dataclass(frozen=True)
class HfToken:
    """A Hugging Face access token and where it was found; `value` never appears in a repr."""

    source: str  # "the HF_TOKEN variable" or the token file's path
    value: str = field(repr=False)


def hf_token_path() -> Path:
    """The file `hf auth login` writes: `$HF_TOKEN_PATH`, else `$HF_HOME/token`, with
    HF_HOME defaulting to `$XDG_CACHE_HOME/huggingface` or `~/.cache/huggingface` (as
    huggingface_hub resolves it)."""
    explicit = os.environ.get("HF_TOKEN_PATH")
    if explicit:
        return Path(explicit).expanduser()
    home = os.environ.get("HF_HOME")
    if not home:
        cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        home = os.path.join(cache, "huggingface")
    return Path(home).expanduser() / "token"


def find_token() -> HfToken | None:
    """The user's Hugging Face token, or None: `HF_TOKEN` first, then the saved token file.

    The file must be a regular file of at most 4 KiB, and a token one line of printable
    ASCII; anything else counts as no token."""
    value = (os.environ.get("HF_TOKEN") or "").strip()
    if _usable(value):
        return HfToken("the HF_TOKEN variable", value)
    path = hf_token_path()
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode) or info.st_size > _MAX_TOKEN_BYTES:
            return None
        with path.open("rb") as f:
            value = f.read(_MAX_TOKEN_BYTES).decode("utf-8", errors="replace").strip()
    except OSError:
        return None
    return HfToken(str(path), value) if _usable(value) else None


def _usable(value: str) -> bool:
    """A header value must be one printable ASCII line; anything else is not a token (and
    would make the HTTP library fail with the value in its message)."""
    return bool(value) and value.isprintable() and value.isascii()


def no_token_message() -> str:
    return (
        f"no Hugging Face token found: sam3.pt is gated by Meta; request access at {MODEL_PAGE} "
        "(accept the licence), then run `hf auth login` or set HF_TOKEN, or choose a local file"
    )


def _refused_message(status: int, token: HfToken) -> str:
    if status == 401:
        return (
            f"Hugging Face refused the token from {token.source} (HTTP 401): it is invalid or "
            f"has no access to {REPO}; request access at {MODEL_PAGE}, then `hf auth login`"
        )
    return (
        f"your token has no access to {REPO} (HTTP 403): request access at {MODEL_PAGE} "
        "(accept the licence; approval can take a while), then try again"
    )


def download_finder(
    dest_dir: str | os.PathLike[str] | None = None,
    *,
    progress: Callable[[int, int], None],
    should_stop: Callable[[], bool],
    token: HfToken | None = None,
    base_url: str | None = None,
    timeout: float = 30.0,
) -> Path:
    """Download `sam3.pt` into `dest_dir` (default the checkpoint cache) with `token` (default:
    `find_token()`), resuming a `.part`; returns its path. One-line DownloadError otherwise."""
    token = token if token is not None else find_token()
    if token is None:
        raise DownloadError(no_token_message())
    dest = Path(dest_dir) if dest_dir is not None else checkpoint_dir()
    try:
        return download_checkpoint(
            FINDER,
            dest,
            progress=progress,
            should_stop=should_stop,
            base_url=base_url,
            timeout=timeout,
            headers={"Authorization": f"Bearer {token.value}"},
            check=check_finder_file,
        )
    except DownloadError as exc:
        if exc.status in (401, 403):
            raise DownloadError(_refused_message(exc.status, token), status=exc.status) from None
        raise


def check_finder_file(part: Path, entry: CheckpointEntry) -> None:
    """The downloaded file must read as a SAM 3 checkpoint (weights only, memory-mapped: the
    3.4 GB are not read); otherwise it is removed and the error says why."""
    from model.sam2.checkpoint import CheckpointError, read_state_dict
    from model.sam3.checkpoint import detector_state_dict

    try:
        detector_state_dict(read_state_dict(part), name=entry.filename)
    except CheckpointError as exc:
        part.unlink(missing_ok=True)
        raise DownloadError(f"downloaded file is not a usable SAM 3 checkpoint: {exc}") from None


def find_downloaded_finder(dest_dir: str | os.PathLike[str] | None = None) -> Path | None:
    """The completed `sam3.pt` in `dest_dir` (default the checkpoint cache), or None."""
    path = Path(dest_dir if dest_dir is not None else checkpoint_dir()) / FINDER.filename
    return path if path.is_file() else None
