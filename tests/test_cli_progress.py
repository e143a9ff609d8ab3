"""Feedback on long work: `prompt` and `export` show tqdm bars on stderr with `--progress`, none with `--no-progress`,
and none by default where stderr is not a terminal (a pipe, a log, these tests). Loading the base shows one too.

The commands run in-process through `main` (the `run` fixture): stderr is pytest's capture, which is no terminal."""
import io, contextlib
import pytest
from audio_lm.corpus import synth_corpus

DOC = """---
dlm_id: 01JZ8Q000000000000000PRGS1
dlm_version: 11
base_model: tiny-listener
training:
  max_steps: 1
  eval_every: 0
  sources:
    - path: ./corpus
      include: ["**/*.wav"]
---
"""

@pytest.fixture
def trained(tmp_path, run):
    synth_corpus(tmp_path/'corpus', n=4, seed=0, progress=False)
    (tmp_path/'d.dlm').write_text(DOC)
    r = run('train', tmp_path/'d.dlm')
    assert r.returncode == 0, r.stderr
    assert 'loading tiny-listener' not in r.stderr   # no terminal: no loading bar
    return tmp_path/'d.dlm', sorted((tmp_path/'corpus').rglob('*.wav'))[0]

def test_prompt_bar_on_request_only(trained, run):
    doc, clip = trained
    on = run('prompt', doc, 'Transcribe the audio.', '--audio', clip, '--max-new-tokens', 3, '--progress')
    assert on.returncode == 0 and 'loading v0001' in on.stderr and 'answer' in on.stderr and 'tok' in on.stderr, on.stderr
    for flags in ([], ['--no-progress']):
        off = run('prompt', doc, 'Transcribe the audio.', '--audio', clip, '--max-new-tokens', 3, *flags)
        assert off.returncode == 0 and off.stderr == '', off.stderr
        assert off.stdout == on.stdout   # the bar changes nothing the model writes

def test_export_bar_on_request_only(trained, run, tmp_path):
    doc, _ = trained
    on = run('export', doc, '--out', tmp_path/'e1', '--progress')
    assert on.returncode == 0 and 'export' in on.stderr and 'hashing the files' in on.stderr, on.stderr
    off = run('export', doc, '--out', tmp_path/'e2')
    assert off.returncode == 0 and off.stderr == '', off.stderr

def test_load_base_bar():
    from audio_lm.run import load_base
    for progress, shown in ((True, True), (False, False), (None, False)):
        err = io.StringIO()
        with contextlib.redirect_stderr(err): load_base('tiny-listener', progress=progress)
        assert ('loading tiny-listener' in err.getvalue()) == shown, (progress, err.getvalue())

def test_train_bar_on_request_only(tmp_path, cli):
    "`audio-lm train` as a subprocess (stderr a pipe): a bar with --progress only; the default and --no-progress write none."
    synth_corpus(tmp_path/'corpus', n=4, seed=0, progress=False)
    (tmp_path/'d.dlm').write_text(DOC.replace('PRGS1', 'PRGS2'))
    env = {'AUDIO_LM_HOME': str(tmp_path/'home'), 'OMP_NUM_THREADS': '1'}
    runs = {flag: cli('train', tmp_path/'d.dlm', '--max-steps', 2, *([flag] if flag else []), env=env)
            for flag in ('--progress', None, '--no-progress')}
    for flag, r in runs.items(): assert r.returncode == 0, (flag, r.stderr)
    on = runs['--progress'].stderr
    assert 'train listen' in on and 'loading tiny-listener' in on and '2/2' in on, on
    for flag in (None, '--no-progress'):
        err = runs[flag].stderr
        assert 'train listen' not in err and 'it/s' not in err and '\r' not in err, (flag, err)
        assert runs[flag].stdout.startswith('trained '), runs[flag].stdout
