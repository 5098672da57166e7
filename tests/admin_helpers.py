# SPDX-License-Identifier: Apache-2.0
"""Running the `listserv` command in-process against a test database.

`write_config` writes the TOML file `make_settings` would build (the shipped
configuration pointed at the test's database and var dir), so the CLI reads
it through LISTSERV_CONFIG exactly as an operator's shell does. `run_cli`
goes through `listserv.cli.main`, so exit codes and the one-line errors on
stderr are the real ones.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from listserv.cli import main
from tests.conftest import config_data


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")


def to_toml(data: dict[str, Any]) -> str:
    lines: list[str] = []
    for table, content in data.items():
        if isinstance(content, list):
            for item in content:
                lines.append(f"[[{table}]]")
                lines.extend(f"{k} = {_toml_value(v)}" for k, v in item.items())
                lines.append("")
            continue
        lines.append(f"[{table}]")
        lines.extend(f"{k} = {_toml_value(v)}" for k, v in content.items())
        lines.append("")
    return "\n".join(lines)


def write_config(path: Path, db_url: str, var_dir: Path, **overrides: Any) -> Path:
    path.write_text(to_toml(config_data(db_url, var_dir, **overrides)), encoding="utf-8")
    return path


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


def run_cli(config: Path, *args: str, input: str | bytes | None = None) -> CliResult:
    """`listserv ARGS…` with LISTSERV_CONFIG=config; stdout, stderr and the exit code."""
    runner = CliRunner()
    env = {"LISTSERV_CONFIG": str(config), "LISTSERV_DATABASE_URL": None}
    with runner.isolation(input=input, env=env) as streams:
        argv = sys.argv
        sys.argv = ["listserv", *args]
        code = 0
        try:
            main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        finally:
            sys.argv = argv
            sys.stdout.flush()
            sys.stderr.flush()
        stdout = streams[0].getvalue().decode("utf-8", "replace")
        stderr = streams[1].getvalue().decode("utf-8", "replace")
    return CliResult(code, stdout, stderr)
