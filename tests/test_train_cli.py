"`audio-lm train` / `audio-lm prompt` as a user runs them: real processes, a real SIGKILL, a real resume."
import json, os, signal, subprocess, sys, time
from pathlib import Path
import pytest
from safetensors.torch import load_file
from audio_lm.corpus import synth_corpus

DOC = """---
dlm_id: {id}
dlm_version: 11
base_model: tiny-listener
training:
  policy: projector+lora
  learning_rate: 0.003
  micro_batch_size: 4
  grad_accum: 1
  sources:
    - path: ./corpus
      include: ["**/*.wav"]
---
Spoken digits.
"""

@pytest.fixture(scope='module')
def corpus(tmp_path_factory):
    d = tmp_path_factory.mktemp('corpus')
    synth_corpus(d/'corpus', n=12, seed=0, progress=False)
    return d/'corpus'

def make_doc(folder:Path, corpus:Path, dlm_id='01JZ8Q0000000000000000TRN1')->Path:
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder/'corpus').exists(): (folder/'corpus').symlink_to(corpus)
    (folder/'digits.dlm').write_text(DOC.format(id=dlm_id))
    return folder/'digits.dlm'

def cli(*args, home, **kw):
    env = {**os.environ, 'AUDIO_LM_HOME': str(home), 'OMP_NUM_THREADS': '1'}
    return subprocess.run([sys.executable, '-m', 'audio_lm.cli', *map(str, args)], capture_output=True, text=True, env=env, timeout=600, **kw)

def weights(home, dlm_id, version='v0001'):
    v = Path(home)/'store'/dlm_id/'adapter'/'versions'/version
    return {**load_file(v/'projector.safetensors'), **{f'lora.{k}': t for k, t in load_file(v/'adapter'/'adapter_model.safetensors').items()}}

def test_train_commits_and_prompt_answers(tmp_path, corpus):
    doc = make_doc(tmp_path/'doc', corpus)
    r = cli('train', doc, '--max-steps', 4, home=tmp_path/'home')
    assert r.returncode == 0, r.stderr[-3000:]
    assert 'v0001' in r.stdout and 'WER' in r.stdout
    clip = sorted(corpus.glob('*.wav'))[0]
    p = cli('prompt', doc, 'Transcribe the audio.', '--audio', clip, '--max-new-tokens', 5, home=tmp_path/'home')
    assert p.returncode == 0, p.stderr[-3000:]
    assert p.stdout.strip() != '' or p.stdout == '\n'  # the untrained model may say little, but it runs and prints
    # user errors: one line, exit 2
    e = cli('prompt', doc, 'What is said?', home=tmp_path/'home')
    assert e.returncode == 2 and e.stderr.strip() == "audio-lm: error: base 'tiny-listener' is a listening base; pass at least one --audio PATH to prompt it."
    e = cli('prompt', doc, 'q', '--audio', tmp_path/'missing.wav', home=tmp_path/'home')
    assert e.returncode == 2 and 'audio not found' in e.stderr and len(e.stderr.strip().splitlines()) == 1

def test_prompt_before_training_is_a_user_error(tmp_path, corpus):
    doc = make_doc(tmp_path/'doc', corpus, '01JZ8Q0000000000000000TRN3')
    clip = sorted(corpus.glob('*.wav'))[0]
    e = cli('prompt', doc, 'q', '--audio', clip, home=tmp_path/'home')
    assert e.returncode == 2 and 'no trained version' in e.stderr and 'audio-lm train' in e.stderr

def test_sigkill_then_resume_matches_uninterrupted(tmp_path, corpus):
    dlm_id = '01JZ8Q0000000000000000TRN2'
    args = ('--max-steps', 24, '--ckpt-every', 4, '--eval-every', 1000)
    doc = make_doc(tmp_path/'a', corpus, dlm_id)
    full = cli('train', doc, *args, home=tmp_path/'home_full')
    assert full.returncode == 0, full.stderr[-3000:]
    # the same run, killed with SIGKILL once a checkpoint exists
    home = tmp_path/'home_cut'
    env = {**os.environ, 'AUDIO_LM_HOME': str(home), 'OMP_NUM_THREADS': '1'}
    proc = subprocess.Popen([sys.executable, '-m', 'audio_lm.cli', 'train', str(doc), *map(str, args)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = home/'store'/dlm_id/'run'/'checkpoint'/'state.json'
    t0 = time.time()
    while not state.exists():
        assert proc.poll() is None, "training finished before it could be killed"
        assert time.time() - t0 < 300, "no checkpoint appeared"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL); proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (home/'store'/dlm_id/'adapter'/'current.txt').exists(), "the run was not interrupted"
    step = json.loads(state.read_text())['step']
    assert 4 <= step < 24
    # the killed process left its lock, and the lock comes first: reported, not stolen; --break-lock is the explicit escape
    again = cli('train', doc, *args, home=home)
    assert again.returncode == 2 and 'stale lock' in again.stderr and '--break-lock' in again.stderr
    # with the dead writer's lock broken, the user must still choose: resume or start over
    again = cli('train', doc, *args, '--break-lock', home=home)
    assert again.returncode == 2 and 'breaking the lock of pid' in again.stderr and 'stopped at step' in again.stderr
    assert '--resume' in again.stderr.splitlines()[-1]
    res = cli('train', doc, *args, '--resume', home=home)
    assert res.returncode == 0, res.stderr[-3000:]
    assert 'resumed at step' in res.stdout and 'nan' not in res.stdout, res.stdout   # the loss history came back
    a, b = weights(tmp_path/'home_full', dlm_id), weights(home, dlm_id)
    assert a.keys() == b.keys()
    for k in a: assert (a[k] == b[k]).all(), k
