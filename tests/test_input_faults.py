"""Whole classes of input faults people report (issue 16), as a user meets them through `audio-lm`.

Each class is tested on the input of the report and its siblings (other encodings, other extensions, other special
tokens, other rates): the right value, or one clear error — exit code 2, one line naming the user's file as written in
the document or its source folder (`doc.dlm:LINE` for a fence), nothing written. Most runs call `audio_lm.cli.main`
in-process (the same parser and handlers); the first test runs the real process once per kind of refusal."""
import io, json, shutil, subprocess
from pathlib import Path
import numpy as np
import pytest
import soundfile as sf
from audio_lm.cli import main
from audio_lm.corpus import synth_corpus
from audio_lm.document import load_document
from audio_lm.store import Store, audio_lm_home
from conftest import one_line_error

@pytest.fixture(scope='module')
def clips(tmp_path_factory):
    "Six espeak-ng clips at 16 kHz, and the same six at 24 kHz."
    d = tmp_path_factory.mktemp('clips')
    return synth_corpus(d/'c16', n=6, seed=5, progress=False), synth_corpus(d/'c24', n=6, seed=5, sr=24000, progress=False)

IDS = iter(f'01JZ8Q0000000000000000F{i:03d}' for i in range(1000))

def project(root:Path, clips, base='tiny-listener', body='', training='', corpus=True, include='["**/*.wav"]')->Path:
    "A document folder: `corpus/` holding `clips` with their sidecars (and metadata.csv), and `doc.dlm`."
    root.mkdir(parents=True, exist_ok=True); (root/'clips').mkdir(exist_ok=True)
    if corpus:
        (root/'corpus').mkdir(exist_ok=True)
        for c in clips:
            shutil.copy(c.path, root/'corpus'); shutil.copy(Path(c.path).with_suffix('.txt'), root/'corpus')
    src = f'  sources:\n    - path: ./corpus\n      include: {include}\n' if corpus else ''
    (root/'doc.dlm').write_text(f'---\ndlm_id: {next(IDS)}\ndlm_version: 11\nbase_model: {base}\ntraining:\n  micro_batch_size: 2\n'
                                f'  grad_accum: 1\n{training}{src}---\n{body}')
    return root/'doc.dlm'

def fence_line(doc:Path, clip:str)->int:
    return next(i for i, l in enumerate(doc.read_text().split('\n'), 1) if f'path="{clip}"' in l)

def store_of(doc:Path)->Store: return Store.for_document(load_document(doc))

def tone(n, rate, nan=False):
    w = (0.2 * np.sin(np.arange(n) / 3)).astype(np.float32)
    if nan: w[n // 2] = np.nan
    return w

# ---- class 1: messages name the user's files, never the store's --------------------------------------------------------

def test_real_process_refuses_in_one_line_naming_the_fence(tmp_path, clips, cli):
    "The reported inputs, through the real `audio-lm` process: a 0-sample WAV and a 44.1 kHz clip in a document."
    for name, data, rate, says in [('empty.wav', tone(0, 16000), 16000, "audio 'clips/empty.wav' has zero samples; remove it or record it again."),
                                   ('cd.wav', tone(44100, 44100), 44100, "audio 'clips/cd.wav': native sample_rate=44100 Hz does not match "
                                    "pinned 16000 Hz. Set training.audio.auto_resample: true to resample on the fly (or "
                                    "training.audio.drop_mismatched: true to leave such clips out), or re-encode manually with "
                                    "ffmpeg -i <in> -ar 16000 <out>.")]:
        doc = project(tmp_path/name, clips[0], body=f'::audio path="clips/{name}" transcript="one two"::\n', corpus=False)
        sf.write(doc.parent/'clips'/name, data, rate)
        for command in ('train', 'ingest'):
            msg = one_line_error(cli(command, doc, '--max-steps', 1) if command == 'train' else cli(command, doc))
            assert msg == f"{doc}:{fence_line(doc, 'clips/' + name)}: {says}", msg
        assert not store_of(doc).root.exists()   # nothing written

def test_problems_found_in_training_name_the_source_file(tmp_path, clips, run):
    "NaN samples pass every header check: training finds them in the stored copy, and names the user's file."
    doc = project(tmp_path/'p', clips[0])
    sf.write(doc.parent/'corpus'/'zz_nan.wav', tone(16000, 16000, nan=True), 16000, subtype='FLOAT')
    (doc.parent/'corpus'/'zz_nan.txt').write_text('a broken clip')
    r = run('train', doc, '--max-steps', 3)
    assert r.returncode == 2, r
    last = r.stderr.strip().splitlines()[-1]
    assert last == "audio-lm: error: audio './corpus/zz_nan.wav' contains NaN or infinite samples; re-export it from the source.", r.stderr
    assert 'blobs' not in r.stderr and store_of(doc).versions() == []

def test_sequence_overflow_names_the_example(tmp_path, clips, run):
    "A row whose prompt and audio overflow training.sequence_len names the clip as written, not 'an example'."
    doc = project(tmp_path/'p', clips[0][:2], base='tiny-qwen2-audio', training='  sequence_len: 40\n')
    r = run('train', doc, '--max-steps', 1)
    assert r.returncode == 2, r
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("audio-lm: error: the prompt and audio of the example from ./corpus/digits_0000") and 'more than max_length=40' in last, last
    assert 'blobs' not in last

def test_show_reports_the_same_problems_before_training(tmp_path, clips, run):
    doc = project(tmp_path/'p', clips[0], body='::audio path="clips/empty.wav" transcript="x"::\n::audio path="clips/cd.wav" transcript="y"::\n')
    sf.write(doc.parent/'clips'/'empty.wav', tone(0, 16000), 16000); sf.write(doc.parent/'clips'/'cd.wav', tone(4410, 44100), 44100)
    sf.write(doc.parent/'corpus'/'low.wav', tone(8000, 8000), 8000); (doc.parent/'corpus'/'low.txt').write_text('eight kilohertz')
    (doc.parent/'corpus'/'cp.txt').write_bytes('café'.encode('cp1252')); sf.write(doc.parent/'corpus'/'cp.wav', tone(1600, 16000), 16000)
    r = run('show', doc, '--json')
    assert r.returncode == 0, r.stderr
    probs = json.loads(r.stdout)['problems']
    want = [f"{doc}:{fence_line(doc, 'clips/empty.wav')}: audio 'clips/empty.wav' has zero samples", "text file './corpus/cp.txt' is not UTF-8",
            f"{doc}:{fence_line(doc, 'clips/cd.wav')}: audio 'clips/cd.wav': native sample_rate=44100 Hz",
            "audio './corpus/low.wav': native sample_rate=8000 Hz"]
    assert len(probs) == len(want) and all(p.startswith(w) for p, w in zip(probs, want)), probs
    assert not store_of(doc).root.exists()
    # training refuses the first of them, naming the same file the same way
    msg = one_line_error(run('train', doc))
    assert msg == probs[0]

def test_prompt_names_the_clip_as_typed(tmp_path, clips, run, monkeypatch):
    doc = project(tmp_path/'p', clips[0][:2])
    assert run('train', doc, '--max-steps', 1).returncode == 0
    (tmp_path/'p'/'sub').mkdir(); sf.write(tmp_path/'p'/'sub'/'cd.wav', tone(44100, 44100), 44100)
    monkeypatch.chdir(tmp_path/'p')
    r = run('prompt', 'doc.dlm', 'Transcribe the audio.', '--audio', 'sub/cd.wav')   # inference resamples, and says so once
    assert r.returncode == 0, r.stderr
    assert r.stderr.strip() == "audio-lm: resampling 'sub/cd.wav' (44100 Hz) to the 16000 Hz base 'tiny-listener' hears", r.stderr

# ---- class 2: transcript text is decoded right or refused ---------------------------------------------------------------

ENCODINGS = [('utf-8-sig', None), ('cp1252', 'is not UTF-8: byte 0x'), ('latin-1', 'is not UTF-8: byte 0x'),
             ('utf-16', 'is UTF-16, not UTF-8'), ('utf-16-le', 'holds NUL bytes'), ('utf-16-be', 'holds NUL bytes'),
             ('utf-32', 'is UTF-32, not UTF-8'), ('mac-roman', 'is not UTF-8: byte 0x')]

def test_sidecars_and_text_sources_decode_right_or_are_counted(tmp_path, clips, run):
    doc = project(tmp_path/'p', clips[0][:1], include='["**/*"]')
    folder = doc.parent/'corpus'
    for i, (enc, _) in enumerate(ENCODINGS):
        shutil.copy(clips[0][1].path, folder/f's{i}.wav')
        (folder/f's{i}.txt').write_bytes('café naïve'.encode(enc))
        (folder/f'note{i}.md').write_bytes('A note, naïve.'.encode(enc))
    res = load_document(doc).resolve()
    targets = [e.target for e in res.examples]
    assert 'café naïve' in targets and 'A note, naïve.' in targets
    assert not any(ch in t for t in targets for ch in '\ufeff\ufffd\x00'), targets
    info = json.loads(run('show', doc, '--json').stdout)
    src, = info['source_directives']
    bad = [e for e in ENCODINGS if e[1]]
    assert (src['audio_count'], src['skipped_audio_bad_transcript'], src['text_count'], src['skipped_text_bad_encoding']) == (2, len(bad), 1, len(bad))
    for i, (enc, why) in enumerate(ENCODINGS):
        if why:
            assert any(p.startswith(f"text file './corpus/s{i}.txt' {why}") for p in info['problems']), (enc, info['problems'])
            assert any(p.startswith(f"text file './corpus/note{i}.md' {why}") for p in info['problems']), (enc, info['problems'])

@pytest.mark.parametrize('enc,why', [('utf-16', 'the document is UTF-16, not UTF-8'), ('utf-16-le', 'the document holds NUL bytes'),
                                     ('utf-32', 'the document is UTF-32, not UTF-8'), ('cp1252', 'the document is not UTF-8: byte 0xe9')])
def test_a_document_not_in_utf8_is_refused_at_its_line(tmp_path, clips, run, enc, why):
    doc = project(tmp_path/'p', clips[0], body='Notes on a café.\n', corpus=False)
    doc.write_bytes(doc.read_text().encode(enc))
    msg = one_line_error(run('show', doc))
    assert msg.startswith(f"{doc}:") and why in msg, msg
    assert not audio_lm_home().exists()

def test_a_document_with_a_bom_reads_and_nul_or_fffd_is_refused(tmp_path, clips, run):
    doc = project(tmp_path/'p', clips[0], body='::audio path="clips/a.wav" transcript="hello world"::\n', corpus=False)
    shutil.copy(clips[0][0].path, doc.parent/'clips'/'a.wav')
    text = doc.read_text()
    doc.write_bytes(text.encode('utf-8-sig'))
    assert load_document(doc).resolve().examples[0].target == 'hello world'
    for ch in '\x00\ufffd':
        doc.write_text(text.replace('hello world', f'hello{ch}world'))
        msg = one_line_error(run('train', doc))
        assert msg.startswith(f"{doc}:{fence_line(doc, 'clips/a.wav')}: the document holds "), msg

# ---- class 3: audio files are found the way users name them -------------------------------------------------------------

def test_extensions_in_any_case_and_every_libsndfile_format(tmp_path, clips, run):
    doc = project(tmp_path/'p', [], include='["**/*.wav"]')
    folder = doc.parent/'corpus'
    w = tone(16000, 16000)
    for name in ['SA1.WAV', 'sa2.wav', 'SX3.Wav']: sf.write(folder/name, w, 16000); (folder/name).with_suffix('.TXT').write_text(f'said in {name}')
    sf.write(folder/'voice.opus', w, 16000, format='OGG', subtype='OPUS'); (folder/'voice.txt').write_text('an opus clip')
    info = json.loads(run('show', doc, '--json').stdout)['source_directives'][0]
    assert (info['file_count'], info['audio_count']) == (3, 3), info    # **/*.wav matches SA1.WAV and SX3.Wav too
    from audio_lm.audio import AUDIO_EXTS, _FORMAT_EXTS
    # every format the installed libsndfile decodes is a clip; its sidecar is its transcript, never prose
    fmt = {e: f for f, es in _FORMAT_EXTS.items() for e in es if f in sf.available_formats()} | {'.opus': 'OGG'}
    for i, ext in enumerate(AUDIO_EXTS):
        p = folder/f'f{i}{ext.upper() if i % 2 else ext}'
        sf.write(p, w, 16000, format=fmt[ext], subtype='OPUS' if ext == '.opus' else None)
        p.with_suffix('.txt').write_text(f'format {ext}')
    (folder/'metadata.csv').write_text('file\n'); (folder/'README.md').write_text('About this corpus.')
    doc.write_text(doc.read_text().replace('include: ["**/*.wav"]', 'include: ["**/*"]'))
    shown = json.loads(run('show', doc, '--json').stdout)
    info, n_audio = shown['source_directives'][0], 4 + len(AUDIO_EXTS)
    assert info['audio_count'] == n_audio, info
    # formats with a fixed rate (Psion WVE at 8 kHz, FastTracker XI at 44.1 kHz) are clips too, and listed for their rate
    assert sum('native sample_rate' in p for p in shown['problems']) == sum(fmt[e] in ('WVE', 'XI') for e in AUDIO_EXTS), shown['problems']
    assert info['transcript_count'] == n_audio and info['text_count'] == 1 and info['ignored_count'] == 1, info
    counted = (info['audio_count'] + info['transcript_count'] + info['text_count'] + info['ignored_count']
               + sum(v for k, v in info.items() if k.startswith('skipped_')))
    assert counted == info['file_count'] == 2 * n_audio + 2, info      # every file seen is taken or counted
    res = load_document(doc).resolve(check=False)
    assert {e.target for e in res.examples if e.kind == 'prose'} == {'About this corpus.'}
    assert 'an opus clip' in {e.target for e in res.examples if e.kind == 'transcription'}

# ---- class 4: text that looks like a control token stays text -----------------------------------------------------------

SAID = ['press <|im_end|> then keep talking', '<|endoftext|> was typed here', 'a <|im_start|>user turn inside', 'the <|AUDIO|> tag, read out']

def test_listening_document_labels_hold_the_whole_transcript(tmp_path, clips):
    from audio_lm.run import load_base
    from audio_lm.listen import listen_recipe
    body = ''.join(f'::audio path="clips/a{i}.wav" transcript="{s}"::\n' for i, s in enumerate(SAID))
    doc = project(tmp_path/'p', clips[0], body=body, corpus=False)
    for i in range(len(SAID)): shutil.copy(clips[0][i].path, doc.parent/'clips'/f'a{i}.wav')
    d = load_document(doc); exs = d.resolve().examples
    recipe = listen_recipe(load_base('tiny-listener'), d, cache=tmp_path/'cache')
    b = recipe.collate(exs)
    tok = recipe.model.tokenizer
    for i, s in enumerate(SAID):
        lab = b['labels'][i][b['labels'][i] != -100]
        assert tok.decode(lab) == s + '<|im_end|>', (s, tok.decode(lab))
        assert int((b['input_ids'][i] == recipe.model.audio_token_id).sum()) == recipe.model.audio_tokens(int(b['feature_attention_mask'][i].sum()))

def test_audio_language_and_speaking_rows_keep_the_whole_text(tmp_path, clips):
    from audio_lm.models import load_audio_language
    from audio_lm.collate import Qwen2AudioCollator
    from audio_lm.document import Example
    from audio_lm.corpus import Clip
    tq = load_audio_language('tiny-qwen2-audio')
    coll = Qwen2AudioCollator.for_base(tq, cache=tmp_path/'cache')
    exs = [Example('transcription', s, None, [clips[0][0]]) for s in SAID] + [Example('instruction', s, f'Q: {s}?') for s in SAID[:3]]
    b = coll(exs)
    for i, e in enumerate(exs):
        lab = b['labels'][i][b['labels'][i] != -100]
        assert coll.tok.decode(lab) == e.target + '<|im_end|>', (e, coll.tok.decode(lab))
    from audio_lm.run import load_base
    from audio_lm.speak import speech_spec_for, speech_codec_for, speech_rows
    sp = load_base('tiny-speaker'); spec = speech_spec_for(sp)
    rows, _ = speech_rows([Clip(clips[1][0].path, s) for s in SAID], speech_codec_for(sp), sp.tokenizer, spec, cache=tmp_path/'cache', verbose=False)
    for r, s in zip(rows, SAID):
        text = r['input_ids'][1:r['input_ids'].index(spec.end_of_text)]
        assert sp.tokenizer.decode([t for t in text if t != sp.tokenizer.bos_token_id]) == s

# ---- class 5: audio given as data keeps its rate ------------------------------------------------------------------------

def test_datasets_rows_through_collators_and_the_bridge(tmp_path, clips):
    from datasets import Dataset
    from audio_lm.audio import load_audio, AudioSampleRateMismatch
    from audio_lm.corpus import from_dataset
    from audio_lm.collate import ListenCollator, Qwen2AudioCollator
    from audio_lm.models import load_audio_language, load_listening
    c = clips[0][0]
    w16 = load_audio(c.path, 16000)[0]
    buf = io.BytesIO(); sf.write(buf, load_audio(c.path, 8000, auto_resample=True)[0], 8000, format='FLAC')
    ds = Dataset.from_dict({'audio': [{'array': load_audio(c.path, 8000, auto_resample=True)[0], 'sampling_rate': 8000},
                                      {'array': w16, 'sampling_rate': 16000}], 'text': [c.transcript, c.transcript]})
    enc = Dataset.from_dict({'audio': [{'path': 'rec_8k.flac', 'bytes': buf.getvalue()}], 'text': [c.transcript]})
    rows = list(ds) + list(enc)      # rows as datasets hands them out: lists of floats, bytes
    lc = ListenCollator.for_model(load_listening('tiny-listener').model, cache=tmp_path/'cache')
    qc = Qwen2AudioCollator.for_base(load_audio_language('tiny-qwen2-audio'), cache=tmp_path/'cache')
    for coll in (lc, qc):
        for value in (rows[0]['audio'], {'array': np.asarray(rows[0]['audio']['array']), 'sampling_rate': 8000}):   # a bare TypeError once
            with pytest.raises(AudioSampleRateMismatch, match='audio given as samples: native sample_rate=8000 Hz does not match pinned 16000 Hz'):
                coll([{'audio': value, 'transcript': c.transcript}])
        with pytest.raises(AudioSampleRateMismatch, match='native sample_rate=8000 Hz does not match pinned 16000 Hz'): coll(rows[:1])
        with pytest.raises(AudioSampleRateMismatch, match="audio 'rec_8k.flac': native sample_rate=8000 Hz"): coll(rows[2:])
        assert coll(rows[1:2])['input_ids'].tolist() == coll([c])['input_ids'].tolist()     # 16 kHz: the clip itself
        coll.auto_resample = True
        b = coll(rows)
        assert b['input_features'].shape[0] == 3 and (b['labels'] != -100).any()
    # the bridge: each clip keeps its rate, or gets the one asked for
    got = from_dataset(ds, out_dir=tmp_path/'ds')
    assert [g.sample_rate for g in got] == [8000, 16000]
    with pytest.raises(AudioSampleRateMismatch, match='native sample_rate=8000 Hz'): from_dataset(ds, out_dir=tmp_path/'ds2', sampling_rate=16000)
    assert {g.sample_rate for g in from_dataset(ds, out_dir=tmp_path/'ds3', sampling_rate=16000, auto_resample=True)} == {16000}

# ---- class 6: one sample-rate policy for every recipe -------------------------------------------------------------------

@pytest.mark.parametrize('base,rate,corpus', [('tiny-listener', 16000, 1), ('tiny-speaker', 24000, 0), ('tiny-qwen2-audio', 16000, 1)])
def test_every_recipe_refuses_a_wrong_rate_with_the_same_message(tmp_path, clips, run, base, rate, corpus):
    "The listening corpus at 16 kHz trains a listener but not a speaker (24 kHz), and vice versa: same words, exit 2."
    doc = project(tmp_path/'p', clips[corpus], base=base)
    other = {16000: 24000, 24000: 16000}[rate]
    msg = one_line_error(run('train', doc))
    first = sorted((doc.parent/'corpus').glob('*.wav'))[0].name
    assert msg == (f"audio './corpus/{first}': native sample_rate={other} Hz does not match pinned {rate} Hz. Set "
                   "training.audio.auto_resample: true to resample on the fly (or training.audio.drop_mismatched: true to leave "
                   f"such clips out), or re-encode manually with ffmpeg -i <in> -ar {rate} <out>. (5 more clips are at other "
                   "rates; audio-lm show lists them)"), msg
    assert not store_of(doc).root.exists()

@pytest.mark.parametrize('rate', [8000, 22050, 44100, 48000])
def test_dropping_is_explicit_and_counted(tmp_path, clips, run, rate):
    doc = project(tmp_path/'p', clips[0], training='  audio:\n    drop_mismatched: true\n',
                  body='::audio path="clips/odd.wav" transcript="odd one"::\n')
    sf.write(doc.parent/'clips'/'odd.wav', tone(rate, rate), rate)
    sf.write(doc.parent/'corpus'/'odd.wav', tone(rate, rate), rate); (doc.parent/'corpus'/'odd.txt').write_text('odd two')
    info = json.loads(run('show', doc, '--json').stdout)
    assert info['clips_dropped'] == ['clips/odd.wav', './corpus/odd.wav'] and info['problems'] == []
    assert (info['source_directives'][0]['skipped_audio_sample_rate'], info['examples']['transcription']) == (1, 6)
    assert 'dropped   2 clips at another sample rate' in run('show', doc).stdout
    # refusing is the default; resampling and dropping at once is a contradiction
    doc.write_text(doc.read_text().replace('drop_mismatched: true', 'drop_mismatched: false'))
    assert f'native sample_rate={rate} Hz' in one_line_error(run('ingest', doc))
    doc.write_text(doc.read_text().replace('drop_mismatched: false', 'drop_mismatched: true\n    auto_resample: true'))
    assert 'training.audio sets both auto_resample and drop_mismatched; choose one' in one_line_error(run('show', doc))
