"""A store you can trust (issue 17), checked the way a user meets it: real `audio-lm` processes, real signals.

Faults driven through the CLI: versions with a missing or flipped-byte file, a live lock holder, SIGTERM and SIGKILL,
damaged and mismatched checkpoints, a read-only store (a read-only bind mount in a user namespace, since root ignores
file modes), a full disk (a tiny tmpfs in a user namespace, else an ENOSPC injected at the write), a closed pipe; bad
arguments and documents. Each one must end in one line on stderr and exit code 2 (or 143 / 141 for a signal / a closed
pipe), with nothing half-written and nothing lost. The documents train `tiny-listener` for 2 steps, so a case costs a
process start (the torch import), not training."""
import errno, hashlib, json, os, shutil, signal, subprocess, sys, time
from pathlib import Path
import numpy as np
import pytest
import soundfile as sf
from safetensors.torch import load_file
from audio_lm.corpus import synth_corpus
from audio_lm.store import Store
from audio_lm.document import load_document
from conftest import run_cli, one_line_error

DOC = """---
dlm_id: {id}
dlm_version: 11
base_model: {base}
training:
  learning_rate: 0.003
  micro_batch_size: 4
  grad_accum: 1
  lora_r: {r}
  sources:
    - path: ./corpus
      include: ["**/*.wav"]
---
Spoken digits.
"""

def sha(p): return hashlib.sha256(Path(p).read_bytes()).hexdigest()

def temps(root): return sorted(p for p in Path(root).rglob('*') if '.tmp-' in p.name or '.pending-' in p.name)

def make_project(folder:Path, dlm_id:str, n:int=8, r:int=8, base:str='tiny-listener'):
    "A folder with its own small espeak corpus and a document over it; the env of a fresh AUDIO_LM_HOME."
    folder.mkdir(parents=True, exist_ok=True)
    synth_corpus(folder/'corpus', n=n, seed=1, progress=False)
    doc = folder/'digits.dlm'; doc.write_text(DOC.format(id=dlm_id, base=base, r=r))
    if base == 'tiny-listener':   # these checks look at LoRA files; the base's own default (policy all) has none
        doc.write_text(doc.read_text().replace('training:\n', 'training:\n  policy: projector+lora\n', 1))
    env = {'AUDIO_LM_HOME': str(folder/'home'), 'HF_HUB_OFFLINE': '1', 'OMP_NUM_THREADS': '1'}
    return doc, env, Store(folder/'home'/'store'/dlm_id)

def ok(r):
    assert r.returncode == 0, (r.returncode, r.stdout[-2000:], r.stderr[-3000:])
    return r

@pytest.fixture(scope='module')
def listener(tmp_path_factory):
    "A listening document trained twice, 2 steps each, same seed, in a fresh home: v0001 and v0002."
    doc, env, store = make_project(tmp_path_factory.mktemp('listener'), '01JZ8Q000000000000000FXT01')
    for _ in range(2): ok(run_cli('train', doc, '--max-steps', 2, env=env))
    return doc, env, store

# --- integrity and provenance --------------------------------------------------------------------------------------

def test_same_seed_same_weights(listener):
    "The first run also built the tiny base (which draws random numbers): the LoRA layers must not feel it."
    doc, env, store = listener
    assert store.versions() == ['v0001', 'v0002']
    for f in ('projector.safetensors', 'adapter/adapter_model.safetensors'):
        a, b = (load_file(store.version_path(v)/f) for v in ('v0001', 'v0002'))
        assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a), f

def test_damaged_version_is_refused_and_export_is_complete(listener, tmp_path):
    doc, env, store = listener
    v = store.current_path(); clip = sorted((doc.parent/'corpus').glob('*.wav'))[0]
    prompt = lambda: run_cli('prompt', doc, 'Transcribe the audio.', '--audio', clip, '--max-new-tokens', 3, env=env)
    export = lambda: run_cli('export', doc, '--out', tmp_path/'snap', env=env)
    w = v/'projector.safetensors'; w.rename(tmp_path/'away')                  # a weight file deleted
    try:
        for r in (prompt(), export()):
            assert one_line_error(r) == (f"version v0002 is incomplete: {w} is missing; train the document again to commit a "
                                         "whole version (other versions: v0001).")
    finally: (tmp_path/'away').rename(w)
    a = v/'adapter'/'adapter_model.safetensors'; good = a.read_bytes()     # one flipped byte, same size
    a.write_bytes(good[:-9] + bytes([good[-9] ^ 1]) + good[-8:])
    try:
        for r in (prompt(), export()):
            assert one_line_error(r).startswith(f"version v0002 is damaged: {a} no longer matches the sha256 recorded at commit;")
    finally: a.write_bytes(good)
    assert not (tmp_path/'snap').exists() and temps(tmp_path) == []
    ok(export())                                                               # whole again: exported, every file in it
    man = json.loads((tmp_path/'snap'/'snapshot_manifest.json').read_text())
    have = {x['sha256'] for x in man['artifacts']}
    rec = json.loads((v/'version.json').read_text())['files']
    assert {'projector.safetensors', 'adapter/adapter_model.safetensors', 'listening.json'} <= set(rec)
    assert [r for r, f in rec.items() if Path(r).name != 'README.md' and f['sha256'] not in have] == []
    assert ok(run_cli('verify', tmp_path/'snap', env=env)).stdout.startswith(f"{tmp_path/'snap'}: all ")

def test_show_json_says_what_each_version_learned_from(listener):
    doc, env, store = listener
    info = json.loads(ok(run_cli('show', doc, '--json', env=env)).stdout)
    rec = info['store']['version_records']['v0001']
    assert rec['document'] == {'path': str(doc.resolve()), 'sha256': sha(doc)}
    assert (rec['base'], rec['seed'], rec['steps'], rec['training']['document']['lora_r'], rec['training']['loop']['max_steps']) == \
           ('tiny-listener', 42, 2, 8, 2)
    clips = sorted((doc.parent/'corpus').glob('*.wav'))
    seen = rec['data']['train']['clips'] + rec['data']['eval']['clips']
    assert sorted(seen) == sorted(sha(c) for c in clips) and len(rec['data']['train']['fingerprint']) == 64
    assert set(rec['files']) >= {'projector.safetensors', 'adapter/adapter_model.safetensors'}
    # replace a clip's bytes: the record still names what v0001 learned from, the store still holds it
    old = sha(clips[0]); backup = clips[0].read_bytes()
    try:
        clips[0].write_bytes(clips[1].read_bytes())
        rec = json.loads(ok(run_cli('show', doc, '--json', env=env)).stdout)['store']['version_records']['v0001']
        assert old in rec['data']['train']['clips'] + rec['data']['eval']['clips'] and store.blob(old).exists()
    finally: clips[0].write_bytes(backup)

def test_a_store_belongs_to_one_document(listener, tmp_path):
    doc, env, store = listener
    copy = tmp_path/'talk.dlm'; shutil.copy(doc, copy); (tmp_path/'corpus').symlink_to(doc.parent/'corpus')
    before = store.manifest_path.read_bytes(), store.current()
    for r in (run_cli('ingest', copy, env=env), run_cli('train', copy, '--max-steps', 1, env=env)):
        msg = one_line_error(r)
        assert msg.startswith(f"{copy} has dlm_id {load_document(doc).dlm_id}, but that id's store {store.root} belongs to "
                              f"{doc.resolve()}, so this file is a copy; give it its own id (set dlm_id: "), msg
    assert (store.manifest_path.read_bytes(), store.current()) == before     # the original's store is untouched
    new_id = msg.split('set dlm_id: ')[1].split()[0]                           # follow the advice: the copy's own store
    copy.write_text(copy.read_text().replace(load_document(doc).dlm_id, new_id))
    ok(run_cli('ingest', copy, env=env))
    assert Store.for_document(new_id, env['AUDIO_LM_HOME']).read_manifest()['document'] == str(copy.resolve())

# --- locks, signals, checkpoints -----------------------------------------------------------------------------------

@pytest.fixture(scope='module')
def interrupted(tmp_path_factory):
    "A long `train` that holds the lock while two more `train`s try, then gets SIGTERM (no periodic checkpoint)."
    doc, env, store = make_project(tmp_path_factory.mktemp('live'), '01JZ8Q000000000000000FXT02')
    run = subprocess.Popen([sys.executable, '-m', 'audio_lm.cli', 'train', str(doc), '--max-steps', '5000',
                            '--ckpt-every', '0', '--eval-every', '0'], env={**os.environ, **env},
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    metrics, t0 = store.root/'run'/'metrics.jsonl', time.time()
    while not (metrics.exists() and metrics.read_text().count('\n') >= 2):   # training under way
        assert run.poll() is None, run.communicate()
        assert time.time() - t0 < 300, 'training did not start'
        time.sleep(0.1)
    (store.root/'run'/'checkpoint').mkdir()   # what a live run's checkpoint looks like to a second `train`
    (store.root/'run'/'checkpoint'/'state.json').write_text('{"step": 1, "epoch": 0, "batch_idx": 1}')
    second = run_cli('train', doc, env=env)
    breaker = run_cli('train', doc, '--break-lock', env=env)
    holder, alive = store.lock_holder(), run.poll() is None
    shutil.rmtree(store.root/'run'/'checkpoint')
    run.send_signal(signal.SIGTERM)
    out, err = run.communicate(timeout=120)
    return dict(doc=doc, env=env, store=store, run=run, err=err, second=second, breaker=breaker, holder=holder, alive=alive)

def test_a_live_run_keeps_its_lock_and_sigterm_keeps_its_work(interrupted):
    i = interrupted; store, run = i['store'], i['run']
    assert i['alive'] and i['holder'].pid == run.pid and i['holder'].command == 'train'
    assert one_line_error(i['second']).startswith(f"store {store.root} is busy: it is locked by pid {run.pid} on ")
    msg = one_line_error(i['breaker'])
    assert f"locked by pid {run.pid} on " in msg and "(train), which is still running: --break-lock only removes the lock of " \
           f"a process that is gone; wait for it to finish, or stop it first (kill {run.pid})." in msg, msg
    # SIGTERM: like Ctrl-C, the run stops after its step with a checkpoint there, releases the lock, exits 143
    assert run.returncode == 143, i['err'][-3000:]
    step = json.loads((store.root/'run'/'checkpoint'/'state.json').read_text())['step']
    assert 2 <= step < 5000
    assert [l for l in i['err'].splitlines() if l.strip()][-1] == (f"audio-lm: interrupted by SIGTERM: stopped after step {step}; the checkpoint at step "
                                         f"{step} is kept: audio-lm train {i['doc']} --resume continues")
    assert store.lock_holder() is None and store.versions() == [] and temps(store.root) == []

def test_resume_refuses_other_settings_other_data_and_damage(interrupted, tmp_path):
    i = interrupted; doc, env, store = i['doc'], i['env'], i['store']
    ck = store.root/'run'/'checkpoint'; step = json.loads((ck/'state.json').read_text())['step']
    resume = lambda *a: run_cli('train', doc, '--resume', '--max-steps', step + 1, *a, env=env)
    text = doc.read_text()
    doc.write_text(text.replace('lora_r: 8', 'lora_r: 4'))                  # lora_r changed
    try: msg = one_line_error(resume())
    finally: doc.write_text(text)
    assert "training.lora_r 8 then, 4 now" in msg and msg.endswith(f"audio-lm train {doc} --fresh discards the checkpoint and starts over."), msg
    gone = sorted((doc.parent/'corpus').glob('*.wav'))[-1]                   # a clip removed
    for p in (gone, gone.with_suffix('.txt')): p.rename(tmp_path/p.name)
    try: msg = one_line_error(resume())
    finally:
        for p in (gone, gone.with_suffix('.txt')): (tmp_path/p.name).rename(p)
    assert 'other settings or data (data.train.' in msg and '--fresh discards the checkpoint' in msg, msg
    for name, damage, says in [('state.json', lambda b: b[:7], 'is damaged (not JSON'),            # not JSON, even for plain train
                               ('trainable.safetensors', lambda b: b[:-5] + bytes([b[-5] ^ 1]) + b[-4:], 'is damaged (its sha256'),
                               ('optimizer.pt', lambda b: b[:len(b) // 2], 'is damaged (its sha256')]:
        good = (ck/name).read_bytes(); (ck/name).write_bytes(damage(good))
        try: msg = one_line_error(run_cli('train', doc, env=env) if name == 'state.json' else resume())
        finally: (ck/name).write_bytes(good)
        assert f"{ck/name} {says}" in msg and '--fresh' in msg, msg
    r = ok(resume())                                                         # intact and unchanged: it resumes
    assert f'resumed at step {step}' in r.stdout and store.versions() == ['v0001'] and not (store.root/'run').exists()

_KILLED_INGEST = '''
import os, shutil, signal, sys
def half(src, dst, *a, **k):   # the copy of a clip into blobs/ dies halfway
    with open(src, 'rb') as f, open(dst, 'wb') as g: g.write(f.read()[:2000]); g.flush()
    os.kill(os.getpid(), signal.SIGKILL)
shutil.copyfile = half
from audio_lm.cli import main
sys.exit(main(['ingest', sys.argv[1]]))
'''

def test_a_killed_ingest_leaves_a_temp_that_the_next_writer_removes(tmp_path):
    doc, env, store = make_project(tmp_path, '01JZ8Q000000000000000FXT03', n=3)
    r = subprocess.run([sys.executable, '-c', _KILLED_INGEST, str(doc)], env={**os.environ, **env})
    assert r.returncode == -signal.SIGKILL
    left = temps(store.blobs_dir); assert len(left) == 1 and f'.tmp-' in left[0].name, left
    assert one_line_error(run_cli('ingest', doc, env=env)).startswith(f"store {store.root} has a stale lock from pid ")
    r = ok(run_cli('ingest', doc, '--break-lock', env=env))
    assert r.stderr.startswith('audio-lm: breaking the lock of pid ') and '3 added' in r.stdout
    assert temps(store.root) == [] and len(store.blob_files()) == 3 and all(sha(p) == p.stem for p in store.blob_files())

# --- one line, exit 2, nothing written -----------------------------------------------------------------------------

def test_bad_arguments_and_documents_are_one_line(listener, tmp_path):
    doc, env, store = listener
    before = sorted(p.relative_to(store.root).as_posix() for p in store.root.rglob('*') if 'cache' not in p.parts)
    clip = sorted((doc.parent/'corpus').glob('*.wav'))[0]
    for args, says in [(('train', doc, '--max-steps', 0), "--max-steps 0 trains nothing; give at least 1"),
                       (('train', doc, '--max-steps', -1), "--max-steps -1 trains nothing"),
                       (('train', doc, '--seed', -1), "--seed -1 is not a seed; give an integer from 0 to 4294967295."),
                       (('prompt', doc, 'Q', '--audio', clip, '--max-new-tokens', 0), "--max-new-tokens 0 leaves no room for an answer")]:
        assert one_line_error(run_cli(*args, env=env)).startswith(says), args
    long = tmp_path/'meeting.wav'; sf.write(long, np.zeros(16000 * 600, np.int16), 16000, subtype='PCM_16')   # 10 minutes
    assert one_line_error(run_cli('prompt', doc, 'Q', '--audio', long, env=env)).startswith(
        f"{long} is 600.0 s long, but base 'tiny-listener' hears at most 30 s of a clip and would hear only its start; cut it")
    after = sorted(p.relative_to(store.root).as_posix() for p in store.root.rglob('*') if 'cache' not in p.parts)
    assert after == before                                                   # nothing written, no run begun
    # documents: a folder, a key given twice, an hf: base whose weights are not here
    (tmp_path/'data').mkdir()
    assert one_line_error(run_cli('show', tmp_path/'data', env=env)) == \
        f"{tmp_path/'data'} is a folder, not a .dlm document; it holds no .dlm file: create one with audio-lm init {tmp_path/'data'/'notes.dlm'}."
    assert one_line_error(run_cli('init', tmp_path/'data', env=env)) == f"{tmp_path/'data'} is a folder; give a file name such as {tmp_path/'data'/'notes.dlm'}."
    twice = tmp_path/'twice.dlm'; twice.write_text(doc.read_text().replace('  lora_r: 8\n', '  lora_r: 8\n  lora_r: 16\n'))
    assert one_line_error(run_cli('show', twice, env=env)) == f"{twice}:11: training.lora_r is set twice in the frontmatter (first on line 10); keep one of them."  # line 9: policy
    hf = tmp_path/'hf.dlm'; hf.write_text(DOC.format(id='01JZ8Q000000000000000FXT04', base='hf:org/name', r=8))
    (tmp_path/'corpus').symlink_to(doc.parent/'corpus')
    assert one_line_error(run_cli('train', hf, env=env)) == ("base 'hf:org/name' needs weights that are not on this machine (org/name); "
                                                            "download them with `hf download org/name` (or set HF_HOME to where they are) and try again.")

def test_show_json_into_a_closed_pipe_is_quiet(listener):
    doc, env, store = listener
    p = subprocess.Popen([sys.executable, '-m', 'audio_lm.cli', 'show', str(doc), '--json'], env={**os.environ, **env},
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdout.close()   # `| head` that has read all it wanted
    assert (p.wait(timeout=120), p.stderr.read()) == (141, b'')

def _userns()->bool:
    "Can this machine make a user + mount namespace (for a read-only bind mount or a tmpfs without privileges)?"
    try: return subprocess.run(['unshare', '-rm', 'true'], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired): return False
USERNS = _userns()

def run_cli_readonly(folder, *args, env):
    "`audio-lm ARGS` with `folder` read-only: a read-only bind mount (root ignores file modes), else chmod for other users."
    if USERNS:
        script = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" "$1" && shift && exec "$@"'
        return subprocess.run(['unshare', '-rm', 'sh', '-c', script, 'sh', str(folder), sys.executable, '-m', 'audio_lm.cli',
                               *map(str, args)], capture_output=True, text=True, env={**os.environ, **env}, timeout=600)
    if os.geteuid() == 0: pytest.skip('root ignores file modes, and user namespaces are not available for a read-only mount')
    paths = [folder, *Path(folder).rglob('*')]; modes = {p: p.stat().st_mode for p in paths}
    for p in paths: p.chmod(modes[p] & ~0o222)
    try: return run_cli(*args, env=env)
    finally:
        for p in reversed(paths): p.chmod(modes[p])

def test_read_only_store(listener):
    doc, env, store = listener
    before = sorted(str(p) for p in store.root.rglob('*'))
    msg = one_line_error(run_cli_readonly(store.root, 'ingest', doc, env=env))
    assert msg.startswith(f"cannot write {store.lock_path}: ") and 'make that folder writable (or set AUDIO_LM_HOME' in msg, msg
    clip = sorted((doc.parent/'corpus').glob('*.wav'))[-1]   # reading needs no writing: prompt answers (its cache stays cold)
    ok(run_cli_readonly(store.root, 'prompt', doc, 'Transcribe the audio.', '--audio', clip, '--max-new-tokens', 2, env=env))
    assert sorted(str(p) for p in store.root.rglob('*')) == before

_FULL_DISK = '''
import json, subprocess, sys
from pathlib import Path
home = Path(sys.argv[1])
r = subprocess.run([sys.executable, '-m', 'audio_lm.cli', *sys.argv[2:]], capture_output=True, text=True)
blobs = [p for p in home.rglob('blobs/*/*') if p.is_file()]
print(json.dumps({'rc': r.returncode, 'stdout': r.stdout, 'stderr': r.stderr, 'blobs': [p.name for p in blobs],
                  'whole': [__import__('hashlib').sha256(p.read_bytes()).hexdigest() == p.name.split('.')[0] for p in blobs],
                  'temps': [str(p) for p in home.rglob('*') if '.tmp-' in p.name]}))
'''
_ENOSPC = '''
import errno, shutil, sys
real, n = shutil.copyfile, [0]
def full(src, dst, *a, **k):   # the third clip finds the disk full halfway through
    n[0] += 1
    if n[0] < 3: return real(src, dst, *a, **k)
    with open(src, 'rb') as f, open(dst, 'wb') as g: g.write(f.read()[:4096])
    raise OSError(errno.ENOSPC, 'No space left on device', dst)
shutil.copyfile = full
from audio_lm.cli import main
sys.exit(main(sys.argv[1:]))
'''

def test_full_disk(tmp_path):
    doc, env, store = make_project(tmp_path, '01JZ8Q000000000000000FXT05', n=8)
    home = Path(env['AUDIO_LM_HOME']); home.mkdir()
    r = subprocess.run([sys.executable, '-c', _ENOSPC, 'ingest', str(doc)], capture_output=True, text=True, env={**os.environ, **env})
    msg = one_line_error(r)
    assert msg.startswith(f"cannot write {store.blobs_dir}/") and ': no space left on device; free some space there' in msg, msg
    assert temps(home) == [] and len(store.blob_files()) == 2 and all(sha(p) == p.stem for p in store.blob_files())
    if not USERNS: pytest.skip('no user namespace for a real tiny tmpfs; the injected ENOSPC above passed')
    shutil.rmtree(home); home.mkdir()   # a real full disk: a 160 kB tmpfs as AUDIO_LM_HOME, 8 clips of ~60 kB
    script = 'mount -t tmpfs -o size="$1" tmpfs "$2" && shift 2 && exec "$@"'
    r = subprocess.run(['unshare', '-rm', 'sh', '-c', script, 'sh', '160k', str(home), sys.executable, '-c', _FULL_DISK,
                        str(home), 'ingest', str(doc)], capture_output=True, text=True, env={**os.environ, **env}, timeout=300)
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert res['rc'] == 2 and res['stdout'] == '' and len(res['stderr'].strip().splitlines()) == 1, res
    assert ': no space left on device; free some space there' in res['stderr'], res
    assert res['temps'] == [] and all(res['whole']), res   # what was written is whole; nothing half-written is left
