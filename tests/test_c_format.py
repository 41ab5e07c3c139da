"""The C sources keep the project's format (.clang-format at the root): clang-format, from the
`test` extra (PyPI's clang-format wheel), must find nothing to change in csrc/."""
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def clang_format():
    found = shutil.which('clang-format', path=str(Path(sys.executable).parent)) or \
        shutil.which('clang-format')
    assert found, "clang-format is missing: pip install '.[test]' installs it"
    return found


def test_csrc_is_formatted():
    sources = sorted(str(p) for p in (ROOT / 'csrc').glob('*.[ch]'))
    done = subprocess.run([clang_format(), '--style=file', '--dry-run', '--Werror', *sources],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, ('csrc/ is not formatted as .clang-format says; run\n'
                                  '    clang-format -i csrc/*.[ch]\n' + done.stderr[-3000:])
