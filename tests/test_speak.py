"""`audio-lm train` and `audio-lm speak` on a speaking document, as a user runs them.

A tiny espeak-ng corpus at 24 kHz, a `.dlm` document with `base_model: tiny-speaker`, a few training steps in a real
`audio-lm train` process, then `audio-lm speak` in another: the WAV it writes is 24 kHz mono speech decoded from whole
codec frames. The error paths run as real processes too (one line on stderr, exit code 2); cases that fail before any
model is loaded run in-process through the same parser and handler."""
import os, subprocess
from pathlib import Path
import numpy as np
import pytest
import soundfile as sf
from audio_lm.cli import main
from audio_lm.corpus import synth_corpus
from conftest import run_cli, one_line_error

DOC = """---
dlm_id: {dlm_id}
dlm_version: 11
base_model: {base}
training:
  learning_rate: 0.01
  micro_batch_size: 4
  grad_accum: 1
  sources:
    - path: ./corpus
      include: ["**/*.wav"]
---
Spoken digits, synthesized with espeak-ng.
"""

@pytest.fixture(scope='module')
def project(tmp_path_factory):
    "A folder with an 8-clip espeak corpus and three documents over it: to train, never trained, and a listening one."
    d = tmp_path_factory.mktemp('speak')
    synth_corpus(d/'corpus', n=8, seed=3, sr=24000, progress=False)
    docs = {}
    for name, dlm_id, base in [('voice', '01JZ8Q000000000000000SPKA1', 'tiny-speaker'),
                               ('untrained', '01JZ8Q000000000000000SPKA2', 'tiny-speaker'),
                               ('ears', '01JZ8Q000000000000000SPKA3', 'tiny-listener')]:
        docs[name] = d/f'{name}.dlm'
        docs[name].write_text(DOC.format(dlm_id=dlm_id, base=base))
    home = d/'home'
    env = {'AUDIO_LM_HOME': str(home), 'HF_HUB_OFFLINE': '1', 'OMP_NUM_THREADS': '1'}
    return d, docs, env

@pytest.fixture(scope='module')
def trained(project):
    "The `voice` document after `audio-lm train --max-steps 6` (a real process)."
    d, docs, env = project
    r = run_cli('train', docs['voice'], '--max-steps', '6', env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    return r

@pytest.fixture
def run(run, project, monkeypatch):
    "`audio-lm ARGS` in-process with the project's home: (exit code, stdout, stderr)."
    for k, v in project[2].items(): monkeypatch.setenv(k, v)
    return run

def test_train_then_speak_writes_24khz_wav(cli, project, trained):
    d, docs, env = project
    assert 'speak recipe' in trained.stdout and 'v0001' in trained.stdout
    assert 'speech rows:' in trained.stdout  # the recipe reports what became rows (and what was skipped)
    loss = next(l for l in trained.stdout.splitlines() if l.strip().startswith('loss'))
    first, last = map(float, loss.split()[1:4:2])
    assert last < first, loss
    version = next((d/'home'/'store').glob('*SPKA1/adapter/versions/v0001'))
    assert {'adapter_config.json', 'adapter_model.safetensors', 'speech_tokens.json'} <= {p.name for p in version.iterdir()}

    out = d/'said.wav'
    r = cli('speak', docs['voice'], 'four two', '--out', out, '--max-new-tokens', '70', '--seed', '0', env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.startswith(f'wrote {out}: ') and 'at 24000 Hz (v0001)' in r.stdout, r.stdout
    info = sf.info(str(out))
    assert (info.samplerate, info.channels) == (24000, 1)
    assert info.frames > 0 and info.frames % 2048 == 0 and info.frames <= 10 * 2048  # whole SNAC frames, <= 70 tokens
    wav, _ = sf.read(str(out), dtype='float32')
    assert np.isfinite(wav).all()
    assert not list(d.glob('.said*'))  # written atomically

def test_speak_before_training_is_one_line_error(cli, project):
    d, docs, env = project
    msg = one_line_error(cli('speak', docs['untrained'], 'hello', '--out', d/'no.wav', env=env))
    assert msg == f"no trained version of {docs['untrained']} yet; run audio-lm train {docs['untrained']} first."
    assert not (d/'no.wav').exists()

def test_speak_with_listening_base_is_one_line_error(cli, project):
    d, docs, env = project
    msg = one_line_error(cli('speak', docs['ears'], 'hello', '--out', d/'no.wav', env=env))
    assert "base 'tiny-listener'" in msg and 'does not speak' in msg and f'audio-lm prompt {docs["ears"]}' in msg, msg
    assert not (d/'no.wav').exists()

def test_speak_argument_errors(run, project, trained):
    d, docs, _ = project
    r = run('speak', docs['voice'], 'hello', '--out', d/'no.wav', '--speaker', 'alice')
    assert r.returncode == 2 and 'trained without speaker names' in r.stderr and 'leave --speaker out' in r.stderr, r.stderr
    r = run('speak', docs['voice'], 'hello', '--out', d/'no.wav', '--max-new-tokens', '3')
    assert r.returncode == 2 and 'less than one speech frame' in r.stderr, r.stderr
    r = run('speak', d/'missing.dlm', 'hello', '--out', d/'no.wav')
    assert r.returncode == 2 and 'missing.dlm' in r.stderr, r.stderr
    assert not (d/'no.wav').exists()

def test_speak_refuses_in_one_line_and_writes_nothing(cli, project, trained):
    "An empty text, a format soundfile cannot write, a text beyond the base's positions, a damaged version (issue 17)."
    d, docs, env = project
    out = d/'faults'/'said.wav'; out.parent.mkdir(exist_ok=True)
    msg = one_line_error(cli('speak', docs['voice'], '  ', '--out', out, env=env))
    assert msg.startswith('the text to say is empty; give the words to speak'), msg
    msg = one_line_error(cli('speak', docs['voice'], 'four two', '--out', out.with_suffix('.mp4'), env=env))
    assert msg == f"--out {out.with_suffix('.mp4')}: audio-lm cannot write .mp4; name it {out} (or .flac, .ogg, .mp3).", msg
    msg = one_line_error(cli('speak', docs['voice'], 'four two ' * 10700, '--out', out, env=env))   # 96 k characters
    assert 'beyond the 4096 positions the model was built for; say it in shorter parts' in msg, msg
    version = next((d/'home'/'store').glob('*SPKA1/adapter/versions/v0001'))
    w = version/'adapter_model.safetensors'; good = w.read_bytes()
    w.write_bytes(good[:-3] + bytes([good[-3] ^ 1]) + good[-2:])
    try: msg = one_line_error(cli('speak', docs['voice'], 'four two', '--out', out, env=env))
    finally: w.write_bytes(good)
    assert msg.startswith(f"version v0001 is damaged: {w} no longer matches the sha256 recorded at commit"), msg
    assert list(out.parent.iterdir()) == []   # no file, no temporary

def test_speak_warns_when_the_token_limit_cuts_the_speech(cli, project, trained):
    d, docs, env = project
    r = cli('speak', docs['voice'], 'four two', '--out', d/'cut.wav', '--max-new-tokens', '14', '--seed', '0', env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    warn = [l for l in r.stderr.splitlines() if l.startswith('audio-lm: warning: ')]
    assert len(warn) == 1 and '--max-new-tokens 14 (0.2 s of audio at ~82 tokens a second)' in warn[0], r.stderr
    assert sf.info(str(d/'cut.wav')).frames <= 2 * 2048

def test_speak_adapter_picks_a_version(cli, project, trained):
    d, docs, env = project
    r = cli('speak', docs['voice'], 'four', '--out', d/'v1.wav', '--adapter', 'v0001', '--max-new-tokens', '14', env=env)
    assert r.returncode == 0 and '(v0001' in r.stdout, r.stderr[-2000:]
    msg = one_line_error(cli('speak', docs['voice'], 'four', '--out', d/'v9.wav', '--adapter', 'v0009', env=env))
    assert 'v0009' in msg and not (d/'v9.wav').exists(), msg

def test_speak_progress_bar_on_request_only(run, project, trained):
    "Loading, then one tick per speech token, on stderr with --progress; nothing by default where stderr is no terminal."
    d, docs, env = project
    on = run('speak', docs['voice'], 'four', '--out', d/'bar.wav', '--max-new-tokens', '21', '--seed', '0', '--progress')
    assert on.returncode == 0 and 'loading v0001' in on.stderr and 'speak' in on.stderr and 'tok' in on.stderr, on.stderr
    off = run('speak', docs['voice'], 'four', '--out', d/'quiet.wav', '--max-new-tokens', '21', '--seed', '0')
    assert off.returncode == 0 and [l for l in off.stderr.splitlines() if not l.startswith('audio-lm: warning: ')] == [], off.stderr
    assert 'loading v0001' not in off.stderr and 'tok/s' not in off.stderr
    assert (d/'bar.wav').read_bytes() == (d/'quiet.wav').read_bytes()   # same seed: the bar changes nothing said
