"""The files a Jupyter Book ``_toc.yml`` lists, for the book scripts."""

from __future__ import annotations

from pathlib import Path

import yaml


def toc_files(toc_path: Path) -> list[str]:
    """Every ``file`` entry of ``_toc.yml`` (parts, chapters, sections), in order; not the root.

    Args:
        toc_path: the ``_toc.yml`` file.

    Returns:
        Paths without suffix, relative to the book's root.
    """
    files: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if "file" in node:
                files.append(str(node["file"]))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk({k: v for k, v in yaml.safe_load(toc_path.read_text()).items() if k != "root"})
    return files
