import os, sys, subprocess
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]

@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    "Every test gets its own AUDIO_LM_HOME: no test touches the real ~/.audio_lm."
    monkeypatch.setenv('AUDIO_LM_HOME', str(tmp_path/'audio_lm_home'))
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')

def run_cli(*args, cwd=None, env=None, timeout=600):
    "Run `audio-lm` as a real subprocess (python -m audio_lm.cli)."
    e = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, '-m', 'audio_lm.cli', *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=e, timeout=timeout)

def one_line_error(r):
    "The run failed as a user error: exit 2, nothing on stdout and exactly one line on stderr."
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert r.stdout == '' and len(lines) == 1 and lines[0].startswith('audio-lm: error: '), (r.stdout, r.stderr)
    return lines[0][len('audio-lm: error: '):]

@pytest.fixture
def cli():
    return run_cli

@pytest.fixture
def run(capsys):
    "`audio-lm ARGS` in-process: (exit code, stdout, stderr)."
    from audio_lm.cli import main
    def _run(*argv):
        capsys.readouterr()
        rc = main([str(a) for a in argv])
        out = capsys.readouterr()
        return subprocess.CompletedProcess(argv, rc, out.out, out.err)
    return _run
