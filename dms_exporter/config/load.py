"""Safe YAML in: size and depth limits, duplicate keys refused, errors that never quote a secret."""

from __future__ import annotations

import re
from typing import Any

import yaml  # type: ignore[import-untyped]  # no types-PyYAML in the dependencies

from ..errors import ConfigError

__all__ = ["MAX_YAML_BYTES", "MAX_YAML_DEPTH", "read_yaml"]

#: Larger or deeper files are refused before they can exhaust memory or the parser's stack.
MAX_YAML_BYTES = 10 << 20
MAX_YAML_DEPTH = 100


class _StrictLoader(yaml.SafeLoader):
    """``SafeLoader`` that refuses duplicate mapping keys and nesting deeper than
    ``MAX_YAML_DEPTH`` (the composer is recursive: a deep file would end in RecursionError)."""

    _depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                raise yaml.YAMLError(f"nested deeper than {MAX_YAML_DEPTH} levels")
            return super().compose_node(parent, index)  # type: ignore[no-untyped-call]
        finally:
            self._depth -= 1

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen = set()
        for key_node, _ in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if key is not None and key in seen and key_node.tag != "tag:yaml.org,2002:merge":
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep)


def read_yaml(path: str, *, quote: bool = True) -> Any:
    """The YAML document at ``path``. With ``quote=False`` (a file that may hold a secret) an
    error shows only the position and the kind of problem, never a word of the content."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_YAML_BYTES + 1)
        if len(data) > MAX_YAML_BYTES:
            raise ConfigError(f"{path}: larger than {MAX_YAML_BYTES >> 20} MiB, refused")
        return yaml.load(data.decode("utf-8"), Loader=_StrictLoader)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: cannot read: not UTF-8 text") from None
    except RecursionError:  # a structure the depth check does not see (e.g. alias chains)
        raise ConfigError(f"{path}: invalid YAML: nested too deeply") from None
    except yaml.YAMLError as exc:
        # Only the problem and its position: the excerpt PyYAML adds could show a secret.
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or (str(exc) if type(exc) is yaml.YAMLError else "")
        problem = problem or "not valid YAML"
        if not quote:
            problem = _QUOTED.sub("...", problem)
        raise ConfigError(f"{path}: {where}invalid YAML: {problem}") from None


_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
