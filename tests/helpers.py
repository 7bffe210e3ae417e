"""Helpers the script tests share: run a script's ``main`` in-process and check its one-line errors."""

import importlib.util
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def load_script(name: str):
    """A script as a module, so its ``main(argv)`` runs in-process (seconds faster than a subprocess)."""
    spec = importlib.util.spec_from_file_location(f"{name}_script", SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_main(module, argv: list[str], capsys) -> tuple[int, str, str]:
    """``main(argv)`` -> (exit code, stdout, stderr), argparse's SystemExit included."""
    try:
        code = module.main(argv)
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, expected_code: int, mentions: str) -> None:
    assert code == expected_code, err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert mentions in err
