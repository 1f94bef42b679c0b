"""Reading the admin's YAML files (the department file, the agencies file) strictly.

They are written by hand and read once at start-up, so anything odd is an error that names
the file, never a half-read configuration: only a regular file of at most MAX_BYTES (a
device or a runaway file is refused before it is read), no key given twice in one mapping
(YAML's default lets the last one win silently: a pasted agency block would replace the
first), and no structure nested deep enough to exhaust the parser's recursion.
"""

from __future__ import annotations

from pathlib import Path

import yaml

# A department file is about 25 kB; a county's agencies file a few kB.
MAX_BYTES = 1024 * 1024


class YamlFileError(ValueError):
    """The file cannot be read as configuration; the message says why."""


class _NoDuplicates(yaml.SafeLoader):
    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"{key!r} is given twice", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load(path: Path) -> object:
    try:
        if not path.is_file():
            raise YamlFileError("not found, or not a regular file" if not path.exists()
                                else "not a regular file")
        if path.stat().st_size > MAX_BYTES:
            raise YamlFileError(f"larger than {MAX_BYTES // 1024} KiB")
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise YamlFileError(exc.strerror or str(exc)) from None
    except UnicodeDecodeError:
        raise YamlFileError("not UTF-8 text") from None
    try:
        return yaml.load(text, Loader=_NoDuplicates)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise YamlFileError(f"not valid YAML: {exc}") from None
    except RecursionError:
        raise YamlFileError("nested too deeply") from None
