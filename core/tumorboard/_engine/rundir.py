"""Folders tumorboard owns (run directories, synthetic cohorts): written atomically, sealed by a
manifest, and replaced only when they are provably ours.

A folder is staged beside its target (``.NAME.incomplete-PID-XXXX``) and
renamed when complete; ``manifest.json`` (every file with its SHA-256) is
written last, so a folder at the output path that has a manifest is a
finished piece of work. ``--overwrite`` replaces only such a folder, never a
user's folder, ``.``, the spec's folder, a folder holding one of the run's
inputs, or anything behind a symbolic link. A crash, an error, Ctrl-C or
SIGTERM removes the staging folder; a hard kill can leave it, and the next
write to the same output removes it once its process is gone.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import hashlib
import json
import os
import shutil
import signal
import socket
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .errors import RunError

MANIFEST = "manifest.json"
MANIFEST_FORMAT = 1
STAGING_MARK = ".tumorboard-staging"
Kind = Literal["run", "synthetic cohort", "converted dataset"]


# --- writing -----------------------------------------------------------------


def describe_os_error(err: OSError) -> str:
    """An OSError in words a person can act on (a full disk and a read-only folder named as such)."""
    where = f" ({err.filename})" if err.filename else ""
    if err.errno == errno.ENOSPC:
        return f"the disk is full{where}; free some space"
    if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"permission denied{where}; the folder is read-only for you"
    return f"{err.strerror or err}{where}"


def write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n", encoding="utf-8")


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Have ``write`` fill a temporary file beside ``path``, then rename it into place: a full disk or
    a crash leaves the old file as it was, and two writers never share a temporary name."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:6]}")
    try:
        write(tmp)
        with tmp.open("rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """``atomic_write`` of UTF-8 text."""
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def hash_inputs(paths: list[Path]) -> dict[str, str]:
    """SHA-256 of every input file (every file inside a folder input)."""
    hashes: dict[str, str] = {}
    for path in paths:
        if path.is_dir():
            for file in sorted(p for p in path.rglob("*") if p.is_file()):
                hashes[str(file)] = sha256_of(file)
        elif path.is_file():
            hashes[str(path)] = sha256_of(path)
    return hashes


# --- the completion manifest ---------------------------------------------------


def _files_of(folder: Path) -> list[Path]:
    # only the folder's own manifest is left out (pipeline/manifest.json is a file like any other)
    return sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink() and p != folder / MANIFEST)


def write_manifest(folder: Path, kind: Kind) -> None:
    """Seal ``folder``: every file with its SHA-256. Written last: its presence marks completion."""
    files = {p.relative_to(folder).as_posix(): sha256_of(p) for p in _files_of(folder)}
    # no time stamp: the same work gives a byte-identical manifest (provenance.json keeps the times)
    manifest = {"tumorboard": kind, "format": MANIFEST_FORMAT, "files": files}
    atomic_write_text(folder / MANIFEST, json.dumps(manifest, indent=1) + "\n")


def read_manifest(folder: Path) -> dict[str, Any] | None:
    """The folder's manifest when it is one of ours, else None (never raises for a stranger's file)."""
    path = Path(folder) / MANIFEST
    if path.is_symlink() or not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(data, dict) or data.get("tumorboard") not in ("run", "synthetic cohort"):
        return None
    if not isinstance(data.get("files"), dict):
        return None
    return data


def verify_run(folder: Path, what: str = "run", redrawn: tuple[str, ...] = ()) -> dict[str, Any]:
    """Check that ``folder`` is a finished tumorboard run whose files match its manifest.

    Commands that read a run (predict, explain, report, recommend) call this
    first: a folder without a manifest is refused, a changed or missing file is
    named. Files added after the run (cards) are not the manifest's business;
    ``redrawn`` names files the caller is about to write anew (the report).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise RunError(f"{folder}: no such run directory; give the folder that `tumorboard run` printed")
    manifest = read_manifest(folder)
    if manifest is None or manifest.get("tumorboard") != what:
        raise RunError(
            f"{folder}: not a finished tumorboard {what} (no {MANIFEST}, the completion manifest written last); "
            "a run that failed or was interrupted has none: run the spec again"
        )
    root = folder.resolve()
    for rel, digest in manifest["files"].items():
        if rel in redrawn:
            continue
        path = (folder / rel)
        if not path.resolve().is_relative_to(root) or path.is_symlink():
            raise RunError(f"{folder}: {MANIFEST} lists {rel!r}, which is outside the run; the run was tampered with")
        if not path.is_file():
            raise RunError(f"{folder}: {rel} is missing (listed in {MANIFEST}); the run is incomplete: run the spec again")
        if sha256_of(path) != digest:
            raise RunError(
                f"{folder}: {rel} does not match the run's {MANIFEST} (changed after the run finished); "
                "run the spec again, or restore the file from the original run"
            )
    return manifest


def update_manifest(folder: Path, rel: str) -> None:
    """Record a file that a command rewrote inside a finished run (the redrawn report)."""
    manifest = read_manifest(folder)
    if manifest is None:
        return
    manifest["files"][rel] = sha256_of(Path(folder) / rel)
    atomic_write_text(Path(folder) / MANIFEST, json.dumps(manifest, indent=1) + "\n")


# --- what may be replaced --------------------------------------------------------


def _is_within(path: Path, folder: Path) -> bool:
    return path == folder or path.is_relative_to(folder)


def check_output_free(output: Path, overwrite: bool, kind: Kind = "run", protected: Iterable[Path] = ()) -> None:
    """Refuse to write at ``output`` unless it is free, or ``overwrite`` is given and it is ours to replace.

    ``protected`` are paths the output must not hold (the spec file, every input).
    """
    output = Path(output)
    if output.is_symlink():
        raise RunError(f"output {output} is a symbolic link; tumorboard never writes through a link "
                       "(set run.output to a plain folder)")
    resolved = output.resolve()
    protected = [Path(p).resolve() for p in protected]
    for path in protected:
        if _is_within(path, resolved):
            raise RunError(f"output folder {output} holds {path}, an input of this run; choose another run.output")
    if not output.exists():
        return
    if not overwrite:
        raise RunError(
            f"output folder already exists: {output}\n"
            "pass --overwrite to replace it (only a finished tumorboard run is replaced), or set run.output to a new folder"
        )
    if _is_within(Path.cwd().resolve(), resolved):
        raise RunError(f"--overwrite refused: {output} is the current folder or holds it; choose another run.output")
    if not output.is_dir():
        raise RunError(f"--overwrite refused: {output} is a file, not a tumorboard {kind}")
    problem = not_ours(output, kind)
    if problem:
        raise RunError(
            f"--overwrite refused: {output} {problem}; tumorboard replaces only a finished {kind} of its own. "
            "Move or delete the folder yourself, or choose another output"
        )


# what a command may add inside a finished folder after its manifest was written
ADDED_LATER: dict[str, tuple[str, ...]] = {
    "run": ("cards/card-*.html",),            # tumorboard explain
    "synthetic cohort": ("spec.toml",),       # tumorboard demo's spec, beside the cohort's files
}


def not_ours(folder: Path, kind: Kind) -> str | None:
    """Why ``folder`` is not entirely a finished tumorboard ``kind`` (None when it is).

    A manifest alone does not make a folder ours: every file in it must be
    listed in the manifest, be one a tumorboard command adds later, or lie in
    a nested folder that is itself ours (a demo's runs inside its cohort).
    Nothing is followed through a symbolic link. A user's file anywhere inside
    means the folder is not ours to delete.
    """
    manifest = read_manifest(folder)
    if manifest is None or manifest.get("tumorboard") != kind:
        return f"is a tumorboard {manifest['tumorboard']}" if manifest else f"is not a tumorboard {kind} (no {MANIFEST})"
    listed = set(manifest["files"]) | {MANIFEST}
    nested: list[Path] = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if any(rel.is_relative_to(n) for n in nested):
            continue
        if path.is_symlink():
            return f"holds a symbolic link, {rel.as_posix()}"
        if path.is_dir():
            if read_manifest(path) is not None:  # a finished run inside (checked on its own terms)
                inner = not_ours(path, read_manifest(path)["tumorboard"])  # type: ignore[index]
                if inner:
                    return f"holds {rel.as_posix()}, which {inner}"
                nested.append(rel)
            continue
        later = any(len(rel.parts) == len(Path(p).parts) and rel.match(p) for p in ADDED_LATER[kind])
        if rel.as_posix() not in listed and not later:
            return f"holds {rel.as_posix()}, a file tumorboard did not write"
    return None


# --- staging ----------------------------------------------------------------------


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def remove_stale_staging(output: Path) -> list[Path]:
    """Remove staging folders for ``output`` left by processes that no longer exist (hard kills).

    Only folders with tumorboard's staging mark whose recorded process is gone
    are removed: never a live run's, never anything else.
    """
    removed = []
    parent = output.parent
    if not parent.is_dir():
        return removed
    for candidate in parent.glob(f".{output.name}.incomplete-*"):
        mark = candidate / STAGING_MARK
        if candidate.is_symlink() or mark.is_symlink() or not mark.is_file():
            continue
        try:
            record = json.loads(mark.read_text(encoding="utf-8"))
            pid = int(record["pid"])
        except (OSError, ValueError, KeyError, TypeError, json.JSONDecodeError):
            continue
        # a process id means something only on the machine that wrote it (an output on a shared file
        # system may be staged by another host's live run), and only for the folder its name carries
        ours = (record.get("host") == socket.gethostname() and record.get("output") == str(output)
                and candidate.name.startswith(f".{output.name}.incomplete-{pid}-"))
        if ours and pid != os.getpid() and not _pid_alive(pid):
            shutil.rmtree(candidate, ignore_errors=True)
            removed.append(candidate)
    return removed


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """While the block runs, SIGTERM (a scheduler's kill, `timeout`) raises KeyboardInterrupt like Ctrl-C,
    so cleanup runs the same way."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):  # noqa: ARG001
        raise KeyboardInterrupt(f"terminated by signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@dataclass
class Staged:
    """A staging folder and, once the block has succeeded, where its contents ended up."""

    path: Path
    output: Path
    final: Path | None = None
    notes: list[str] = field(default_factory=list)


def _fresh_sibling(output: Path) -> Path:
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    candidate = output.with_name(f"{output.name}-{stamp}")
    n = 2
    while candidate.exists() or candidate.is_symlink():
        candidate = output.with_name(f"{output.name}-{stamp}-{n}")
        n += 1
    return candidate


@contextlib.contextmanager
def staged_directory(output: Path, overwrite: bool, kind: Kind = "run", protected: Iterable[Path] = ()) -> Iterator[Staged]:
    """Yield a staging folder that becomes ``output`` only if the block succeeds.

    The manifest is written after the block, then the folder is swapped in. If
    something appeared at ``output`` during the work (another run, a user's
    folder), or what is there is no longer ours to replace, the new folder is
    kept under a fresh sibling name and ``Staged.notes`` says so.
    """
    output = Path(output)
    protected = list(protected)
    check_output_free(output, overwrite, kind, protected)
    staging = output.parent / f".{output.name}.incomplete-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    created = False
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_staging(output)
        staging.mkdir()
        created = True
        mark = {"pid": os.getpid(), "host": socket.gethostname(), "output": str(output)}
        (staging / STAGING_MARK).write_text(json.dumps(mark), encoding="utf-8")
    except OSError as err:
        if created:  # only ever remove the folder this call made
            shutil.rmtree(staging, ignore_errors=True)
        raise RunError(f"cannot create the {kind} folder beside {output}: {describe_os_error(err)}; nothing was "
                       "written (choose an output folder you can write to)") from err
    staged = Staged(staging, output)
    try:
        with terminate_as_interrupt():
            yield staged
            (staging / STAGING_MARK).unlink()
            write_manifest(staging, kind)
    except OSError as err:  # a full disk, a read-only folder: a clear error, never a half-written folder
        shutil.rmtree(staging, ignore_errors=True)
        raise RunError(f"the {kind} stopped on a file system error: {describe_os_error(err)}; nothing was written "
                       f"to {output}") from err
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    staged.final = _swap_in(staging, output, overwrite, kind, staged.notes)


def _swap_in(staging: Path, output: Path, overwrite: bool, kind: Kind, notes: list[str]) -> Path:
    try:
        check_output_free(output, overwrite, kind)
    except RunError as err:
        # something appeared (or changed) at the output while we worked: keep both
        final = _fresh_sibling(output)
        staging.rename(final)
        notes.append(f"{output} changed during the run ({str(err).splitlines()[0]}); nothing was replaced and "
                     f"this {kind} was written to {final}")
        return final
    if output.exists():
        # move the old one aside first so the swap never leaves nothing at the output path; what was
        # moved is checked again before it is deleted (it may have changed since the check above)
        old = output.parent / f".{output.name}.replaced-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        output.rename(old)
        problem = not_ours(old, kind) if not old.is_symlink() else "is a symbolic link"
        if problem:
            old.rename(output)
            final = _fresh_sibling(output)
            staging.rename(final)
            notes.append(f"{output} {problem}; nothing was replaced and this {kind} was written to {final}")
            return final
        staging.rename(output)
        shutil.rmtree(old, ignore_errors=True)
        return output
    try:
        staging.rename(output)
    except OSError as err:
        if err.errno not in (errno.ENOTEMPTY, errno.EEXIST):
            raise
        final = _fresh_sibling(output)
        staging.rename(final)
        notes.append(f"{output} appeared during the run; nothing was replaced and this {kind} was written to {final}")
        return final
    return output


def run_and_inputs(run_dir: Path) -> list[Path]:
    """What an output file (``--out``) must never replace: the run directory and every input it read
    (the files its provenance.json hashed)."""
    run_dir = Path(run_dir)
    try:
        provenance = json.loads((run_dir / "provenance.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        provenance = {}
    inputs = provenance.get("inputs_sha256", {}) if isinstance(provenance, dict) else {}
    return [run_dir, *(Path(p) for p in inputs)]


def check_output_file(out: Path, overwrite: bool, protected: Iterable[Path] = ()) -> None:
    """An output file (``--out``) never replaces an existing file without ``overwrite``, and never one
    of the ``protected`` paths (a run's files, its inputs, the new data) even with it."""
    out = Path(out)
    if out.is_symlink():
        raise RunError(f"--out {out} is a symbolic link; tumorboard never writes through a link")
    resolved = out.resolve()
    for path in protected:
        path = Path(path).resolve()
        if _is_within(resolved, path):
            raise RunError(f"--out {out} would write over {path}, which this command reads; choose another file")
    if out.exists() and not overwrite:
        raise RunError(f"--out {out} already exists; pass --overwrite to replace it, or choose another file")
    if out.is_dir():
        raise RunError(f"--out {out} is a folder; give a file name")


def safe_output_file(out: Path, overwrite: bool, run_dir: Path) -> None:
    """An output file a command writes about a run (``--out``): never an existing file without
    ``overwrite``, never a file of the run or one of its inputs even with it."""
    check_output_file(out, overwrite, protected=run_and_inputs(run_dir))
