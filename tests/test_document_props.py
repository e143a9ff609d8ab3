"Property tests of the `.dlm` parser and writer: round trips on generated documents, and no exception but `DocumentError` on any text."
import re
from hypothesis import given, settings, strategies as st, HealthCheck
from audio_lm.document import (Document, DocumentError, TrainingConfig, AudioSettings, Source, Prose, Instruction, Audio,
                               new_ulid, parse_text, DLM_VERSION)

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])

# ---- generated documents -------------------------------------------------------------------------------------------
TRICKY_LINES = ['::audio path="x.wav" transcript="y"::', '::prose::', '::instruction::', '::', ':: x', '::Foo bar', '\\::x',
                '\\\\::y', '### Q', '### A', '### Q  ', '\\### A', '\\\\### Q', '###  Q', '```', '```python', '---', '',
                '   ', '\t', '"', '\\', '\\"', 'say "hi"', 'ünïcödé ✓ 日本語', 'a\x0bb', '\u2028', '  indented']
NOT_TEXT = '\x00\ufffd'   # a NUL or U+FFFD in a document is refused (the marks of a wrong decode), so none is generated
line_chars = st.characters(blacklist_characters='\n\r' + NOT_TEXT, blacklist_categories=('Cs',))
free_line = st.text(line_chars, max_size=30)
a_line = st.one_of(st.sampled_from(TRICKY_LINES), free_line)

def balanced(text): return sum(l.startswith('```') for l in text.split('\n')) % 2 == 0

block = (st.lists(a_line, min_size=1, max_size=6).map('\n'.join)
         .filter(lambda t: balanced(t) and Prose(t).text != ''))
one_line = st.one_of(st.sampled_from(['a.wav', 'clips/x y.wav', 'C:\\clips\\a.wav', 'say "hi"', 'back\\', '\\"', '::x::', 'é']),
                     free_line).filter(lambda s: s.strip())

prose = st.builds(Prose, block)
instruction = st.builds(Instruction, st.lists(st.tuples(block, block), min_size=1, max_size=3))
audio = st.builds(Audio, one_line, one_line, st.one_of(st.none(), one_line))
sections = st.lists(st.one_of(prose, instruction, audio), max_size=6)

names = st.text(st.characters(blacklist_characters='\n\r' + NOT_TEXT, blacklist_categories=('Cs',)), min_size=1, max_size=12).filter(lambda s: s.strip())
source = st.builds(Source, names, st.lists(names, max_size=3), st.lists(names, max_size=2),
                   st.one_of(st.none(), st.integers(1, 10**6)), st.one_of(st.none(), st.integers(1, 10**9)))
training = st.builds(
    TrainingConfig,
    adapter=st.sampled_from(['lora', 'qlora']), lora_r=st.integers(1, 1024),
    lora_alpha=st.one_of(st.integers(1, 512), st.floats(1e-6, 1e4)),
    lora_dropout=st.floats(0, 1, exclude_max=True),
    target_modules=st.one_of(st.just('auto'), st.lists(st.from_regex(r'[a-z_][a-z0-9_.]{0,12}', fullmatch=True), min_size=1, max_size=4)),
    sequence_len=st.integers(1, 1 << 16), micro_batch_size=st.integers(1, 64), grad_accum=st.integers(1, 64),
    learning_rate=st.floats(1e-12, 10.), num_epochs=st.integers(1, 100), max_steps=st.one_of(st.none(), st.integers(1, 10**6)),
    seed=st.integers(0, 2**32), audio=st.sampled_from([AudioSettings(), AudioSettings(True, False), AudioSettings(False, True)]),
    sources=st.lists(source, max_size=3), sources_policy=st.sampled_from(['permissive', 'strict']))
base = st.one_of(st.sampled_from(['qwen2-audio-7b-instruct', 'tiny-listener', 'tiny-speaker', 'orpheus-3b']),
                 st.from_regex(r'[a-z0-9][a-z0-9.+_-]{0,20}', fullmatch=True),
                 st.from_regex(r'hf:[A-Za-z0-9][A-Za-z0-9._-]{0,10}/[A-Za-z0-9][A-Za-z0-9._-]{0,10}', fullmatch=True))
documents = st.builds(Document,
                      dlm_id=st.builds(new_ulid, st.integers(0, 2**48 - 1), st.integers(0, 2**80 - 1)),
                      base_model=base, dlm_version=st.integers(1, DLM_VERSION),
                      system_prompt=st.one_of(st.none(), st.text(st.characters(blacklist_characters=NOT_TEXT, blacklist_categories=('Cs',)), max_size=40)),
                      training=training, sections=sections)

@SETTINGS
@given(documents)
def test_round_trip(doc):
    text = doc.dumps()
    back = parse_text(text, 'gen.dlm')
    assert back == doc
    assert back.dumps() == text

@SETTINGS
@given(sections)
def test_round_trip_body_only(secs):
    doc = Document(new_ulid(0, 1), 'tiny-listener', sections=secs)
    assert parse_text(doc.dumps()).sections == doc.sections

# ---- arbitrary text -------------------------------------------------------------------------------------------------
HEAD = f'---\ndlm_id: {new_ulid(0, 1)}\ndlm_version: {DLM_VERSION}\nbase_model: tiny-listener\n'
yamlish = st.lists(st.sampled_from(list('abdlmst_:-[]{}&*!|>\'"#%@`, \n\t?0123456789.') + ['dlm_id', 'training', 'sources',
                                   'path', 'include', 'base_model', 'dlm_version', '\\', '\x00', 'é', '\ufeff', '\n  ', '\n    - ']),
                   max_size=60).map(''.join)
bodyish = st.lists(st.one_of(a_line, st.sampled_from(['::audio path="a" transcript="b', '::audio path="a" transcript="b "c"::',
                                                     '::audio path="a\\"::', '::instruction x="1"::', '### A', '```'])),
                   max_size=12).map('\n'.join)
arbitrary = st.one_of(st.text(max_size=200), st.text(max_size=200).map(lambda t: '---\n' + t),
                      yamlish.map(lambda t: f'---\n{t}\n---\n'), yamlish.map(lambda t: f'{HEAD}{t}\n---\n'),
                      bodyish.map(lambda t: f'{HEAD}---\n{t}'), st.binary(max_size=100).map(lambda b: b.decode('latin-1')))

def check_parse(text):
    try: parse_text(text, 'doc.dlm')
    except DocumentError as e:
        msg = str(e)
        assert re.match(r'doc\.dlm:\d+: \S', msg), msg
        assert '\n' not in msg, msg
    # any other exception fails the test

@SETTINGS
@given(arbitrary)
def test_arbitrary_text_raises_only_document_error(text): check_parse(text)

@SETTINGS
@given(documents, st.data())
def test_mutated_documents_raise_only_document_error(doc, data):
    text = doc.dumps()
    i = data.draw(st.integers(0, len(text)))
    j = data.draw(st.integers(i, min(len(text), i + 20)))
    ins = data.draw(st.one_of(st.text(max_size=5), st.sampled_from(['"', '\\', '::', '\n', '\n::', '```\n', '### Q\n', ': ', '\n---\n'])))
    check_parse(text[:i] + ins + text[j:])

@SETTINGS
@given(documents, st.data())
def test_nul_or_replacement_character_is_refused_at_its_line(doc, data):
    "A NUL or U+FFFD put anywhere in a document's text is refused with the line it is on, never parsed into a section."
    text = doc.dumps()
    i = data.draw(st.integers(0, len(text)))
    ch = data.draw(st.sampled_from(NOT_TEXT))
    bad = text[:i] + ch + text[i:]
    try: parse_text(bad, 'doc.dlm')
    except DocumentError as e: assert str(e).startswith(f"doc.dlm:{bad[:i].count(chr(10)) + 1}: the document holds a "), str(e)
    else: raise AssertionError(f"{ch!r} at {i} was accepted")
