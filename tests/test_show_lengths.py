"""`audio-lm show` reports, before any training, the rows longer than `training.sequence_len` (issue 15), naming the
clips as the user wrote them; the counts are the recipe collators' own, made from the base's tokenizer and the clips'
headers without loading weights; `train` then refuses the same file. On the two small real bases."""
import json, os, re, shutil
from pathlib import Path
import pytest
from audio_lm.corpus import synth_corpus
from audio_lm.document import load_document
from audio_lm.models import BUILD_VERSION, base_path
from conftest import one_line_error

REAL_BASES = Path('~/.audio_lm/bases').expanduser()   # conftest moves AUDIO_LM_HOME, not the home folder
LISTEN, HEAR = 'whisper-tiny.en+smollm2-135m', 'qwen2-audio-tiny.en+smollm2'

def _use_real_base(name):
    "A base built in the real home is linked into the test's home (read only); otherwise it is built there."
    bases = Path(os.environ['AUDIO_LM_HOME'])/'bases'; bases.mkdir(parents=True, exist_ok=True)
    done = REAL_BASES/name/'DONE'
    if done.is_file() and json.loads(done.read_text()).get('build_version') == BUILD_VERSION:
        if not (bases/name).exists(): (bases/name).symlink_to(REAL_BASES/name)
    else: base_path(name)

@pytest.fixture(scope='module')
def corpus(tmp_path_factory):
    return synth_corpus(tmp_path_factory.mktemp('seq_corpus'), n=4, kind='digits', seed=3, progress=False)

def project(root:Path, clips, base:str, ulid:str, sequence_len=None)->Path:
    "Two clips in fences (clips/), two in a source folder (./corpus), and a line of prose."
    (root/'clips').mkdir(parents=True); (root/'corpus').mkdir()
    for c in clips[:2]: shutil.copy(c.path, root/'clips')
    for c in clips[2:]: shutil.copy(c.path, root/'corpus'); shutil.copy(Path(c.path).with_suffix('.txt'), root/'corpus')
    seq = f'  sequence_len: {sequence_len}\n' if sequence_len else ''
    fences = ''.join(f'::audio path="clips/{Path(c.path).name}" transcript="{c.transcript}"::\n' for c in clips[:2])
    (root/'d.dlm').write_text(f'---\ndlm_id: {ulid}\ndlm_version: 11\nbase_model: {base}\ntraining:\n{seq}  max_steps: 1\n'
                              f'  sources:\n    - path: ./corpus\n      include: ["**/*.wav"]\n---\nDigits, read aloud.\n\n{fences}')
    return root/'d.dlm'

def written(clips)->list:
    "The clips as the document writes them."
    return [f'clips/{Path(c.path).name}' for c in clips[:2]] + [f'./corpus/{Path(c.path).name}' for c in clips[2:]]

@pytest.mark.parametrize('base,ulid', [(LISTEN, '01JZ8Q0000000000000000SEQA'), (HEAR, '01JZ8Q0000000000000000SEQB')])
def test_show_lists_rows_longer_than_sequence_len(base, ulid, corpus, tmp_path, cli):
    _use_real_base(base)
    doc = project(tmp_path/'p', corpus, base, ulid, sequence_len=40)
    r = cli('show', doc, '--json')
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info['note'] is None, info['note']
    long = [p for p in info['problems'] if 'training.sequence_len=40' in p]
    assert sorted(p.split(': ')[0] for p in long) == sorted(written(corpus)), long   # every clip, named as written
    for p in long:
        m = re.search(r': (\d+) tokens \(prompt and audio (\d+)\) > training.sequence_len=40; (.*)', p)
        assert m and int(m[1]) > 40, p
        assert m[3].startswith('train would refuse it' if int(m[2]) >= 40 else f'the answer would be cut to {40 - int(m[2])} tokens'), p
    assert not (tmp_path/'audio_lm_home'/'store').exists(), 'show wrote a store'
    text = cli('show', doc)
    assert text.returncode == 0 and f"{written(corpus)[0]}: " in text.stdout and 'problems  ' in text.stdout, text.stdout
    ok = cli('show', project(tmp_path/'q', corpus, base, ulid[:-1] + 'C'), '--json')   # the default sequence_len
    assert ok.returncode == 0 and json.loads(ok.stdout)['problems'] == [] and json.loads(ok.stdout)['note'] is None, ok.stdout

def test_train_refuses_the_file_show_named(corpus, tmp_path, cli):
    _use_real_base(LISTEN)
    doc = project(tmp_path/'p', corpus, LISTEN, '01JZ8Q0000000000000000SEQD', sequence_len=40)
    named = [p.split(': ')[0] for p in json.loads(cli('show', doc, '--json').stdout)['problems']]
    msg = one_line_error(cli('train', doc, env={'OMP_NUM_THREADS': '1'}))
    m = re.search(r"the prompt and audio of the example with clip '([^']+)' take \d+ tokens, more than max_length=40", msg)
    assert m and m[1] in named and 'blobs' not in msg, msg
    assert load_document(doc) and not list((tmp_path/'audio_lm_home'/'store').glob('*/adapter/versions/v*'))

@pytest.mark.parametrize('base', [LISTEN, HEAR])
def test_counts_are_the_recipe_collators(base, corpus, tmp_path):
    "The counts equal the rows the recipe's own collator builds with the loaded base (no cut at the default sequence_len)."
    from audio_lm.run import RECIPES, recipe_of, load_base
    _use_real_base(base)
    doc = load_document(project(tmp_path/'p', corpus, base, '01JZ8Q0000000000000000SEQE'))
    ex = doc.resolve().examples
    lens = recipe_of(base).lengths(base, doc, ex)
    recipe = recipe_of(base).recipe(load_base(base, progress=False), doc, cache=tmp_path/'cache')
    trained = recipe.prepare(ex) if recipe.prepare else ex
    b = recipe.collate(trained)
    assert [s.total for s in lens] == b['attention_mask'].sum(1).tolist()
    assert [s.total - s.prompt for s in lens] == (b['labels'] != -100).sum(1).tolist()
    assert len(lens) == len(trained) == (4 if base == LISTEN else 5)   # prose trains only on the audio-language base

def test_show_speaking_rows_about_their_length(tmp_path, cli):
    "A speaking base drops rows over the limit: show says so, with an upper bound ('about': repeated frames go only when encoded)."
    base_path('tiny-speaker')   # the tiny random speaker, built in the test's home
    clips = synth_corpus(tmp_path/'c24', n=2, kind='digits', seed=4, sr=24000, progress=False)
    doc = project(tmp_path/'p', clips, 'tiny-speaker', '01JZ8Q0000000000000000SEQG', sequence_len=40)
    info = json.loads(cli('show', doc, '--json').stdout)
    assert info['note'] is None and len(info['problems']) == 2, info
    for p, name in zip(sorted(info['problems']), sorted(written(clips))):
        assert re.fullmatch(re.escape(name) + r': about \d+ tokens \(text \d+, speech about \d+\) > training.sequence_len=40; '
                            r'train would leave it out\. Shorten the clip or raise training.sequence_len\.', p), p
