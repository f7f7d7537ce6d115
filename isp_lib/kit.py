"""Where the kit's committed files are, and the settings a chapter resolves before it runs.

The sweep configs and result records committed under the repository's ``results/`` are what
the chapters read. :func:`results_dir` finds them from any working directory:

* from a source checkout (``make venv`` installs the kit editable, or ``isp_lib`` is imported
  from the repository), the checkout's own ``results/``, where ``isp sweep`` writes;
* from an installed wheel (``pip install "isp-lib @ git+URL@REF"``, as a chapter's first cell
  does on Colab), the copy the wheel ships as ``isp_lib/results``: ``pyproject.toml`` maps the
  package ``isp_lib.results`` onto the repository's ``results/`` (its ``*.yaml``, ``*.jsonl``
  and ``README.md``; not the ``numerics1/`` archive), so git holds the files once.

:func:`resolve_bf16` turns a chapter's ``BF16`` parameter (None: automatic) into the run
setting.
"""

from __future__ import annotations

from pathlib import Path

import isp_lib
from isp_lib.errors import UserError

#: The folder name of the committed sweeps, in the repository and inside the installed package.
RESULTS = "results"
#: Compute capability from which a CUDA device has native bf16 tensor cores (Ampere, sm_80).
NATIVE_BF16 = (8, 0)


def results_dir() -> Path:
    """The folder of the committed sweep configs (``<name>.yaml``) and records (``.jsonl``).

    Returns:
        The checkout's ``results/`` when ``isp_lib`` is imported from a source checkout (the
        folder above the package holds ``pyproject.toml`` and ``results/``), else the copy
        installed with the package (``isp_lib/results``). Absolute either way, so it does not
        depend on the working directory.

    Raises:
        UserError: if neither exists (an installation made without the results files).

    >>> (results_dir() / "README.md").is_file()
    True
    """
    package = Path(isp_lib.__file__).resolve().parent
    checkout = package.parent
    if (checkout / "pyproject.toml").is_file() and (checkout / RESULTS).is_dir():
        return checkout / RESULTS
    if (package / RESULTS).is_dir():
        return package / RESULTS
    raise UserError(f"the kit's sweep configs are neither in {checkout / RESULTS} nor in "
                    f"{package / RESULTS}: reinstall the kit from its repository "
                    "(pip install 'isp-lib @ git+URL@REF'), or pass results_dir=FOLDER")


def display_path(path: str | Path) -> str:
    """A path as a reader types it: relative to the working directory when inside it.

    Args:
        path: a file or folder.

    Returns:
        ``path`` relative to the working directory if it lies below it, else absolute.

    >>> display_path(Path.cwd() / "results" / "a.yaml")
    'results/a.yaml'
    """
    full = Path(path).resolve()
    try:
        return str(full.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(full)


def resolve_bf16(bf16: bool | None, profile: str, device: str = "auto") -> bool:
    """A chapter's ``BF16`` parameter as the runs' ``bf16`` setting (part of the config hash).

    Args:
        bf16: True or False as given; None (automatic): on at the ``paper`` profile on a CUDA
            device with native bf16 (compute capability 8.0 or newer, e.g. A100, L4, H100),
            off otherwise, so that a CPU, and a T4 (which only emulates bf16, slower than
            float32), run in float32.
        profile: the chapter's ``PROFILE``.
        device: ``auto``, ``cpu`` or ``cuda`` (the chapter's ``DEVICE``).

    Returns:
        Whether the runs use bf16 autocast.

    Raises:
        UserError: for ``bf16=True`` without CUDA (bf16 autocast runs on CUDA only), or a
            device that :func:`isp_lib.runs.resolve_device` refuses.

    >>> resolve_bf16(None, "paper", "cpu"), resolve_bf16(False, "paper", "cpu")
    (False, False)
    """
    import torch

    from isp_lib.runs import resolve_device

    if (bf16 is None and profile != "paper") or (bf16 is not None and not bf16):
        return False  # no device check: a chapter that only reads records needs none
    dev = resolve_device(device)
    if bf16 is None:
        return dev.type == "cuda" and torch.cuda.get_device_capability(dev) >= NATIVE_BF16
    if dev.type != "cuda":
        raise UserError("BF16 = True has no effect without CUDA (bf16 autocast runs on CUDA "
                        "only): set BF16 = None (automatic) or False, or DEVICE = 'cuda' on a "
                        "GPU machine")
    return bool(bf16)
