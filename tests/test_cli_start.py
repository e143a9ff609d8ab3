"""`audio-lm <command> --help` starts fast: parsing any command line imports neither torch nor transformers.

Timing is a poor test on a shared machine, so this checks the cause instead: each command's `--help` runs in a fresh
interpreter (`python -X importtime -m audio_lm.cli CMD --help`), exits 0, prints that command's own options, and the
import log names no module of torch or transformers (they take seconds; the rest takes a fraction of one)."""
import subprocess, sys
import pytest
from audio_lm.cli import COMMANDS

OPTION = {  # an option (or argument) only the command's own parser prints
    'corpus': 'synth', 'bases': '--json', 'init': '--listen', 'show': '--json', 'ingest': '--break-lock',
    'train': '--learning-rate', 'prompt': '--audio', 'speak': '--max-new-tokens', 'export': '--merged', 'verify': 'DIR',
    'bench': '--quick', 'demo': '--steps', 'corpus synth': '--kind'}

def help_imports(*argv):
    "Exit code, stdout and the modules imported by `audio-lm ARGV --help` in a new interpreter."
    r = subprocess.run([sys.executable, '-X', 'importtime', '-m', 'audio_lm.cli', *argv, '--help'], capture_output=True, text=True)
    mods = {l.split('|')[-1].strip() for l in r.stderr.splitlines() if l.startswith('import time:')}
    return r.returncode, r.stdout, mods

def heavy(mods): return sorted(m for m in mods if m.split('.')[0] in ('torch', 'transformers'))

def test_every_command_is_checked():
    assert set(OPTION) >= set(COMMANDS)

@pytest.mark.parametrize('cmd', sorted(COMMANDS) + ['corpus synth'])
def test_help_imports_no_torch(cmd):
    rc, out, mods = help_imports(*cmd.split())
    assert rc == 0 and out.startswith(f'usage: audio-lm {cmd}') and OPTION[cmd] in out, out
    assert not heavy(mods), heavy(mods)[:5]

def test_the_import_log_does_show_torch_when_it_is_imported():
    "The check above can fail: a command line that imports torch shows it in the same log."
    r = subprocess.run([sys.executable, '-X', 'importtime', '-c', 'import audio_lm.run'], capture_output=True, text=True)
    mods = {l.split('|')[-1].strip() for l in r.stderr.splitlines() if l.startswith('import time:')}
    assert 'torch' in heavy(mods) and 'transformers' in heavy(mods)

def test_main_parses_without_torch():
    "`main(['train', '--help'])` in-process, as the console script runs it: SystemExit 0 and no torch in sys.modules."
    code = ("import sys; from audio_lm.cli import main\n"
            "try: main(['prompt', '--help'])\n"
            "except SystemExit as e: print('exit', e.code, [m for m in ('torch', 'transformers') if m in sys.modules])")
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert r.stdout.splitlines()[-1] == 'exit 0 []' and '--progress' in r.stdout, r.stdout + r.stderr
