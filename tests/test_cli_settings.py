"One path for training settings: the document's `training:` block, its base's defaults, and `train` flags that override both."
import json, re
from pathlib import Path
import pytest
from audio_lm.corpus import synth_corpus
from conftest import run_cli, one_line_error

@pytest.fixture(scope='module')
def corpus(tmp_path_factory):
    d = tmp_path_factory.mktemp('corpus')
    synth_corpus(d/'corpus', n=48, seed=0, progress=False)
    return d/'corpus'

def listen_doc(folder:Path, corpus:Path)->Path:
    "A document as a user makes it: `audio-lm init --listen --base tiny-listener`, sources added, the example fences removed."
    folder.mkdir(parents=True, exist_ok=True)
    (folder/'corpus').symlink_to(corpus)
    doc = folder/'d.dlm'
    r = run_cli('init', doc, '--listen', '--base', 'tiny-listener')
    assert r.returncode == 0, r.stderr
    text = doc.read_text()
    head, body = text.split('\n---\n', 1)
    head = head.replace('# training:', 'training:\n  sources:\n    - path: ./corpus\n      include: ["**/*.wav"]\n# training:', 1)
    doc.write_text(head + '\n---\n' + body.split('::audio')[0])
    return doc

def losses(out:str)->tuple[float, float]:
    m = re.search(r'loss\s+([\d.]+) -> ([\d.]+)', out)
    assert m, out
    return float(m[1]), float(m[2])

def version_record(home:Path, version='v0001')->dict:
    (rec,) = Path(home).glob(f'store/*/adapter/versions/{version}/version.json')
    return json.loads(rec.read_text())

def test_listen_defaults_learn_and_flags_override(tmp_path, corpus):
    doc = listen_doc(tmp_path/'a', corpus)
    home = tmp_path/'home'
    r = run_cli('train', doc, '--max-steps', 30, '--eval-every', 0, env={'AUDIO_LM_HOME': str(home)})
    assert r.returncode == 0, r.stderr[-3000:]
    first, last = losses(r.stdout)
    assert last < 0.6 * first, (first, last)           # the base's defaults (policy all, CTC, 3e-3, batch 16) learn
    rec = version_record(home)
    meta = rec.get('meta', rec)
    assert meta['policy'] == 'all' and meta['training']['document']['ctc_weight'] is None   # None: 0.5 with policy all
    assert meta['overrides'] == {'max_steps': 30, 'eval_every': 0}
    # yesterday's settings, now as flags: recorded as what made the version, and they do not learn in 30 steps
    doc2 = listen_doc(tmp_path/'b', corpus)
    home2 = tmp_path/'home2'
    r = run_cli('train', doc2, '--max-steps', 30, '--eval-every', 0, '--policy', 'projector+lora', '--lr', '2e-4',
                '--batch-size', 1, '--grad-accum', 4, '--ctc-weight', 0, env={'AUDIO_LM_HOME': str(home2)})
    assert r.returncode == 0, r.stderr[-3000:]
    f2, l2 = losses(r.stdout)
    assert l2 > 0.9 * f2, (f2, l2)
    meta = version_record(home2)
    meta = meta.get('meta', meta)
    assert meta['overrides'] == {'max_steps': 30, 'eval_every': 0, 'policy': 'projector+lora', 'learning_rate': 2e-4,
                                 'micro_batch_size': 1, 'grad_accum': 4, 'ctc_weight': 0.0}
    t = meta['training']
    assert (t['document']['learning_rate'], t['loop']['learning_rate'], t['loop']['micro_batch_size']) == (2e-4, 2e-4, 1)

def test_bad_flags_are_one_line_errors(tmp_path, corpus):
    doc = listen_doc(tmp_path/'a', corpus)
    assert one_line_error(run_cli('train', doc, '--lr', '-1')) == '--learning-rate must be a number > 0 (e.g. 0.0002), not -1.0.'
    msg = one_line_error(run_cli('train', doc, '--policy', 'everything'))
    assert msg.startswith('--policy must be one of projector, projector+lora,'), msg
    assert one_line_error(run_cli('train', doc, '--encoder-window', '30s')) == "--encoder-window must be one of clip, padded, not '30s'."
    assert not any(Path(tmp_path).glob('audio_lm_home/store/*/adapter/versions/*'))

def test_encoder_window_flag_trains_and_prompts_with_the_clip_in_its_window(tmp_path, corpus):
    doc, home = listen_doc(tmp_path/'a', corpus), tmp_path/'home'
    env = {'AUDIO_LM_HOME': str(home)}
    r = run_cli('train', doc, '--max-steps', 2, '--eval-every', 0, '--policy', 'projector', '--encoder-window', 'padded', env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    (cfg,) = home.glob('store/*/adapter/versions/v0001/listening.json')
    assert json.loads(cfg.read_text())['window'] == 'padded'        # saved with the version, so prompt hears as training did
    meta = version_record(home); meta = meta.get('meta', meta)
    assert meta['overrides']['encoder_window'] == 'padded' and meta['training']['document']['encoder_window'] == 'padded'
    r = run_cli('prompt', doc, '--audio', sorted(corpus.glob('*.wav'))[0], 'Transcribe the audio.', '--max-new-tokens', 4, env=env)
    assert r.returncode == 0 and r.stdout.strip(), r.stderr[-3000:]

def test_init_writes_the_training_keys_with_the_base_defaults(tmp_path):
    r = run_cli('init', tmp_path/'s.dlm', '--speak', '--base', 'tiny-speaker')
    assert r.returncode == 0, r.stderr
    text = (tmp_path/'s.dlm').read_text()
    assert '#   learning_rate: 0.01' in text and '#   micro_batch_size: 4' in text and 'policy' not in text

def test_export_writes_one_folder_per_version_and_never_overwrites_another(tmp_path, corpus):
    doc = listen_doc(tmp_path/'a', corpus)
    env = {'AUDIO_LM_HOME': str(tmp_path/'home')}
    for _ in range(2):
        r = run_cli('train', doc, '--max-steps', 1, '--eval-every', 0, '--policy', 'projector', env=env)
        assert r.returncode == 0, r.stderr[-2000:]
    r2 = run_cli('export', doc, env=env)
    r1 = run_cli('export', doc, '--adapter', 'v0001', env=env)
    assert r1.returncode == 0 and r2.returncode == 0, (r1.stderr, r2.stderr)
    (store,) = (tmp_path/'home'/'store').iterdir()
    snaps = {p.name: json.loads((p/'snapshot_manifest.json').read_text())['adapter_version'] for p in (store/'exports').iterdir()}
    assert snaps == {'listening-snapshot-v0001': 'v0001', 'listening-snapshot-v0002': 'v0002'}
    before = (store/'exports'/'listening-snapshot-v0002'/'snapshot_manifest.json').read_bytes()
    msg = one_line_error(run_cli('export', doc, '--adapter', 'v0001', '--out', store/'exports'/'listening-snapshot-v0002', env=env))
    assert 'holds the export of v0002' in msg and '--out' in msg, msg
    assert (store/'exports'/'listening-snapshot-v0002'/'snapshot_manifest.json').read_bytes() == before

def test_listening_flags_on_a_speaking_document_are_refused_first(tmp_path):
    assert run_cli('init', tmp_path/'s.dlm', '--speak', '--base', 'tiny-speaker').returncode == 0
    msg = one_line_error(run_cli('train', tmp_path/'s.dlm', '--policy', 'all'))   # before its missing example clip
    assert msg.startswith("--policy applies to listening bases; base 'tiny-speaker' is a speak base"), msg

def test_bases_lists_every_base_and_where_its_weights_come_from(run):
    from audio_lm.bases import BASES
    r = run('bases', '--json')
    assert r.returncode == 0, r.stderr
    rows = {b['name']: b for b in json.loads(r.stdout)}
    assert set(rows) == set(BASES)
    assert rows['tiny-listener']['modality'] == 'listen' and rows['tiny-listener']['weights'].startswith('offline')
    assert rows['qwen2-audio-7b-instruct']['weights'].startswith('download: hf download Qwen/')   # the installed hub's own CLI
    text = run('bases').stdout
    assert all(name in text for name in BASES)

def test_show_lists_every_clip_at_another_rate_than_the_speaking_base(tmp_path, corpus, run):
    "16 kHz clips in a document for a 24 kHz speaking base: `show` names each file before anything trains, and train refuses the first."
    (tmp_path/'corpus').mkdir()
    for w in sorted(corpus.glob('*.wav'))[:3]:
        for f in (w, w.with_suffix('.txt')): (tmp_path/'corpus'/f.name).write_bytes(f.read_bytes())
    doc = tmp_path/'s.dlm'
    doc.write_text('---\ndlm_id: 01JZ8Q000000000000000RATE1\ndlm_version: 11\nbase_model: tiny-speaker\ntraining:\n'
                   '  sources:\n    - path: ./corpus\n      include: ["**/*.wav"]\n---\n')
    r = run('show', doc, '--json')
    assert r.returncode == 0, r.stderr
    probs = json.loads(r.stdout)['problems']
    names = sorted(p.name for p in (tmp_path/'corpus').glob('*.wav'))
    assert [p.split(':')[0] for p in probs] == [f"audio './corpus/{n}'" for n in names], probs
    assert all('native sample_rate=16000 Hz does not match pinned 24000 Hz' in p for p in probs), probs
    assert 'problems  3' in run('show', doc).stdout
    r = run('train', doc)
    assert r.returncode == 2 and r.stderr.startswith(f"audio-lm: error: {probs[0]}"), r.stderr

def test_show_names_missing_clips_and_counts_empty_transcripts_before_train_hits_them(tmp_path, corpus, run):
    "A fence whose clip is gone and a source clip whose transcript is empty: `show` names both; train refuses the missing one."
    (tmp_path/'corpus').mkdir()
    for w in sorted(corpus.glob('*.wav'))[:2]:
        for f in (w, w.with_suffix('.txt')): (tmp_path/'corpus'/f.name).write_bytes(f.read_bytes())
    (tmp_path/'corpus'/w.with_suffix('.txt').name).write_text('  \n')   # the second clip's transcript is empty
    doc = tmp_path/'d.dlm'
    doc.write_text('---\ndlm_id: 01JZ8Q000000000000000MSNG1\ndlm_version: 11\nbase_model: tiny-listener\ntraining:\n'
                   '  sources:\n    - path: ./corpus\n      include: ["**/*.wav"]\n---\n::audio path="clips/gone.wav" transcript="hello"::\n')
    info = json.loads(run('show', doc, '--json').stdout)
    assert info['clips_missing'] == ['clips/gone.wav'] and info['source_directives'][0]['skipped_audio_empty_transcript'] == 1
    text = run('show', doc).stdout
    assert 'missing: clips/gone.wav' in text and 'skipped empty_transcript 1' in text, text
    msg = one_line_error(run('train', doc))
    assert 'clips/gone.wav' in msg, msg
