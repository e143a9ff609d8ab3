"""`audio-lm init`, `show` and `ingest` as a user runs them: real espeak-ng audio, a real store.

The main flows run the real `audio-lm` process; further cases call `audio_lm.cli.main` in-process (the same parser and
handlers, without paying the CLI's start-up, which imports every chapter, for each case)."""
import json, os, shutil, socket, subprocess, sys
from pathlib import Path
import pytest
from audio_lm.cli import main
from audio_lm.corpus import synth_corpus
from audio_lm.document import load_document, new_ulid
from audio_lm.bases import MODALITIES
from audio_lm.store import Store, audio_lm_home
from conftest import one_line_error

@pytest.fixture(scope='module')
def corpus(tmp_path_factory):
    "Four espeak-ng clips: three transcribed, one without a transcript; plus one clip for an inline fence."
    d = tmp_path_factory.mktemp('corpus')
    cs = synth_corpus(d/'src', n=5, seed=7, progress=False)
    return cs

@pytest.fixture
def project(tmp_path, corpus):
    "The issue's acceptance document: a source folder (3 transcribed + 1 not) and an inline clip with an instruction."
    proj = tmp_path/'proj'; (proj/'corpus').mkdir(parents=True); (proj/'clips').mkdir()
    for c in corpus[:4]:
        shutil.copy(c.path, proj/'corpus')
    for c in corpus[:3]: shutil.copy(Path(c.path).with_suffix('.txt'), proj/'corpus')
    shutil.copy(corpus[4].path, proj/'clips'/'intro.wav')
    doc = proj/'talk.dlm'
    doc.write_text(f'''---
dlm_id: {new_ulid(1700000000000, 5)}
dlm_version: 11
base_model: qwen2-audio-7b-instruct
training:
  sources:
    - path: ./corpus
      include: ["**/*.wav", "**/*.flac"]
---
::audio path="clips/intro.wav" transcript="{corpus[4].transcript}"::

::instruction::
### Q
What did the speaker say?

### A
{corpus[4].transcript}
''')
    return doc

def test_show_then_ingest_acceptance(cli, run, project):
    store = Store.for_document(load_document(project))
    r = cli('show', project, '--json')
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)  # stdout is JSON and nothing else
    assert info['clips'] == 4
    src, = info['source_directives']
    assert (src['path'], src['file_count'], src['audio_count'], src['skipped_audio_no_transcript']) == ('./corpus', 4, 3, 1)
    assert all(src[f'skipped_audio_{k}'] == 0 for k in ('empty_transcript', 'unreadable', 'over_size', 'over_max_files'))
    assert info['sections'] == {'prose': 0, 'instruction': 1, 'audio': 1}
    assert info['examples'] == {'transcription': 3, 'audio_question': 1, 'instruction': 0, 'prose': 0}
    assert info['base_model'] == 'qwen2-audio-7b-instruct' and info['direction'] == 'audio->text'
    assert 1 < info['total_duration_s'] < 60
    assert info['store'] == {'path': str(store.root), 'exists': False, 'blobs': 0, 'versions': [], 'rejected': [],
                             'current': None, 'version_records': {}, 'exports': [], 'lock': None}
    assert not store.root.exists()  # show is read-only

    r = cli('ingest', project)
    assert r.returncode == 0, r.stderr
    assert 'ingested 4 clips' in r.stdout and '4 added' in r.stdout
    blobs = store.blob_files()
    assert len(blobs) == 4
    from audio_lm.audio import file_sha256
    clips = sorted(project.parent.glob('corpus/*.wav'))
    want = {file_sha256(p) for p in clips if p.with_suffix('.txt').exists()} | {file_sha256(project.parent/'clips'/'intro.wav')}
    assert {p.name.split('.')[0] for p in blobs} == want
    assert json.loads(store.manifest_path.read_text())['dlm_id'] == store.root.name
    assert not store.lock_path.exists()

    # a damaged blob is refused on read, naming its path, and the next ingest repairs it
    b = blobs[0]; b.write_bytes(b.read_bytes()[:-10] + b'0' * 10)
    from audio_lm.store import BlobCorrupt
    with pytest.raises(BlobCorrupt, match=f'blob {b} is corrupt'): Store(store.root).blob(b.name.split('.')[0])
    r = run('show', project)
    assert r.returncode == 0 and '4 blobs' in r.stdout and 'skipped no_transcript 1' in r.stdout, r.stderr
    r = run('ingest', project)
    assert r.returncode == 0 and '1 repaired' in r.stdout, r
    assert Store(store.root).blob(b.name.split('.')[0]) == b

def test_init_scaffolds(run, tmp_path, capsys):
    p = tmp_path/'a'/'new.dlm'
    r = run('init', p, '--listen')
    assert r.returncode == 0, r.stderr
    doc = load_document(p)
    assert doc.base_model == MODALITIES['listen'].default_base == 'whisper-tiny.en+smollm2-135m' and doc.dlm_id in r.stdout
    before = p.read_bytes()
    assert one_line_error(run('init', p, '--speak')) == f'{p} already exists; pass --force to overwrite it.'
    assert p.read_bytes() == before
    assert main(['init', str(p), '--speak', '--force']) == 0
    assert load_document(p).base_model == 'tiny-speaker'
    assert main(['init', str(tmp_path/'b.dlm'), '--base', 'hf:Qwen/Qwen2-Audio-7B-Instruct']) == 0
    d = load_document(tmp_path/'b.dlm')
    assert (d.base_model, [s.kind for s in d.sections]) == ('hf:Qwen/Qwen2-Audio-7B-Instruct', ['prose'])   # its examples wait in a ``` block
    capsys.readouterr()
    assert main(['init', str(tmp_path/'c.dlm'), '--base', 'Not A Name']) == 2
    err = capsys.readouterr().err
    assert err.startswith("audio-lm: error: --base 'Not A Name' is not a registry name") and err.count('\n') == 1
    assert not (tmp_path/'c.dlm').exists()
    assert main(['init', str(tmp_path/'c.dlm'), '--base', 'foo']) == 2    # a well-formed name the registry does not know
    err = capsys.readouterr().err
    assert err.startswith("audio-lm: error: unknown base 'foo' (--base); choose one of: qwen2-audio-7b-instruct") and err.count('\n') == 1
    assert not (tmp_path/'c.dlm').exists()
    with pytest.raises(SystemExit): main(['init', str(tmp_path/'d.dlm'), '--listen', '--speak'])  # argparse: exclusive
    # a fresh scaffold shows, with no clip yet: its example fence is inside a ``` block, so nothing is missing
    capsys.readouterr()
    assert main(['show', str(p), '--json']) == 0
    info = json.loads(capsys.readouterr().out)
    assert info['clips_missing'] == [] and info['modality'] == 'speak'
    p.write_text(p.read_text().replace('```\n', ''))   # the example moved out of the block: its clip does not exist
    assert main(['show', str(p), '--json']) == 0
    assert json.loads(capsys.readouterr().out)['clips_missing'] == ['clips/your-clip.wav']

def test_user_errors_one_line_nothing_written(run, tmp_path, project, capsys):
    bad = tmp_path/'bad.dlm'
    bad.write_text(f'---\ndlm_id: {new_ulid(1700000000000, 1)}\ndlm_version: 11\nbase_model: tiny-listener\n---\n'
                   '::audio path="a.wav" transcript="she said "hi""::\n')
    assert one_line_error(run('show', bad, '--json')) == (
        f"{bad}:6: unescaped '\"' inside the value of transcript in ::audio::; write a quote inside a value as \\\".")
    def err(*argv):
        capsys.readouterr()
        assert main([str(a) for a in argv]) == 2
        e = capsys.readouterr()
        assert e.out == '' and e.err.count('\n') == 1, e
        return e.err[len('audio-lm: error: '):].strip()
    assert err('show', tmp_path/'nope.dlm') == f"document not found: {tmp_path/'nope.dlm'}; check the path or create one with audio-lm init {tmp_path/'nope.dlm'}."
    newer = tmp_path/'newer.dlm'
    newer.write_text(f'---\ndlm_id: {new_ulid(1700000000000, 1)}\ndlm_version: 12\nbase_model: tiny-listener\n---\n')
    assert err('show', newer) == f"{newer}:3: dlm_version 12 is newer than this parser's version 11; upgrade audio_lm (pip install -U audio_lm) to read it."
    # ingest refuses a missing inline clip before writing anything
    missing = tmp_path/'missing.dlm'
    missing.write_text(f'---\ndlm_id: {new_ulid(1700000000000, 2)}\ndlm_version: 11\nbase_model: tiny-listener\n---\n'
                       '::audio path="clips/none.wav" transcript="x"::\n')
    assert err('ingest', missing).startswith(f"{missing}:6: audio clip 'clips/none.wav' not found (resolved to ")
    assert not audio_lm_home().exists()
    # strict sources policy: a source outside the document's folder
    text = project.read_text().replace('training:\n', 'training:\n  sources_policy: strict\n').replace('./corpus', '../outside')
    (project.parent.parent/'outside').mkdir()
    strict = project.parent/'strict.dlm'; strict.write_text(text)
    assert err('show', strict).startswith(f"{strict}:8: source path '../outside' escapes the document's folder")
    assert not audio_lm_home().exists()

def test_lock_held_stale_and_break(cli, run, project):
    store = Store.for_document(load_document(project))
    holder = subprocess.Popen([sys.executable, '-c', 'import sys, time\nfrom audio_lm.store import Store\n'
                               'with Store(sys.argv[1]).lock("train"):\n print("locked", flush=True); time.sleep(120)',
                               str(store.root)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == 'locked'
        msg = one_line_error(cli('ingest', project))
        host = socket.gethostname()
        assert msg.startswith(f"store {store.root} is busy: it is locked by pid {holder.pid} on {host} since ") and '(train)' in msg, msg
        assert store.blob_files() == []
    finally:
        holder.kill(); holder.wait()
    msg = one_line_error(run('ingest', project))
    assert msg.startswith(f"store {store.root} has a stale lock from pid {holder.pid} on {host} since "), msg
    assert 'rerun with --break-lock' in msg and store.lock_path.exists()  # reported, not stolen
    r = run('ingest', project, '--break-lock')
    assert r.returncode == 0, r.stderr
    assert f'breaking the lock of pid {holder.pid}' in r.stderr and len(store.blob_files()) == 4
    assert not store.lock_path.exists()
