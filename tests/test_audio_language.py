"""End-to-end checks of the audio-language recipe (issue 7) on `tiny-qwen2-audio`, on CPU.

A document with an inline clip + an instruction about it, a prose section and a source folder of transcribed
clips trains through `audio-lm train --max-steps 5` (a real subprocess), commits v0001, loads back as a plain
PEFT adapter, and answers a question about two clips. Plus: the loss never reads the audio placeholders, and
QLoRA is refused on a machine without CUDA. The recipe's answer-only head (issue 18) gives transformers' loss and
gradients on the tiny and the small real Qwen2-Audio, and leaves generation alone.
"""
import json, shutil, warnings
from pathlib import Path
import pytest
import torch

REAL_BASES = Path('~/.audio_lm/bases').expanduser()   # conftest moves AUDIO_LM_HOME, not the home folder

QLORA_MSG = "QLoRA needs a CUDA GPU (bitsandbytes 4-bit); set training.adapter: lora to train on CPU."

def _doc(project:Path, dlm_id:str, clip, adapter:str='lora')->Path:
    p = project/f'{adapter}.dlm'
    p.write_text(f'''---
dlm_id: {dlm_id}
dlm_version: 11
base_model: tiny-qwen2-audio
training:
  adapter: {adapter}
  micro_batch_size: 2
  grad_accum: 1
  learning_rate: 0.001
  sources:
    - path: ./corpus
      include: ["**/*.wav"]
---
# Digits

Digits are read aloud here by espeak-ng voices.

::audio path="clips/intro.wav" transcript="{clip.transcript}"::

::instruction::
### Q
How many digits does the speaker say?

### A
{len(clip.transcript.split())}
''')
    return p

@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    "One `audio-lm train --max-steps 5` run, shared by the tests below: (home, project, clips, process, document)."
    from conftest import run_cli
    from audio_lm.corpus import synth_corpus
    root = tmp_path_factory.mktemp('audio_language')
    home, project = root/'home', root/'project'
    (project/'clips').mkdir(parents=True)
    clips = synth_corpus(project/'corpus', n=5, seed=0, progress=False)
    shutil.copy(clips[0].path, project/'clips'/'intro.wav')
    doc = _doc(project, '01JZ8Q00000000000000000010', clips[0])
    r = run_cli('train', doc, '--max-steps', '5', env={'AUDIO_LM_HOME': str(home), 'HF_HUB_OFFLINE': '1'})
    return home, project, clips, r, doc

def _version(home:Path)->Path:
    return home/'store'/'01JZ8Q00000000000000000010'/'adapter'/'versions'/'v0001'

def test_train_cli_commits_a_peft_adapter(trained):
    home, project, clips, r, doc = trained
    assert r.returncode == 0, r.stderr[-3000:]
    assert 'audio-language recipe' in r.stdout and 'v0001' in r.stdout
    assert '6 train, 1 held out' in r.stdout and 'WER' in r.stdout   # prose + Q/A + 4 clips; the held-out voice's clip
    v = _version(home)
    assert sorted(p.name for p in v.iterdir()) == ['README.md', 'adapter_config.json', 'adapter_model.safetensors',
                                                    'audio_language.json', 'version.json']
    assert json.loads((v/'audio_language.json').read_text())['base'] == 'tiny-qwen2-audio'
    # a plain PEFT adapter: it loads onto the base with transformers + peft alone, on the language model only
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import Qwen2AudioForConditionalGeneration
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', FutureWarning)   # peft asks transformers a deprecated question
        m = PeftModel.from_pretrained(Qwen2AudioForConditionalGeneration.from_pretrained(home/'bases'/'tiny-qwen2-audio'), v)
    lora = {n: p for n, p in m.named_parameters() if 'lora_' in n}
    assert len(lora) == 16 and all('language_model' in n for n in lora)
    saved = load_file(str(v/'adapter_model.safetensors'))
    assert len(saved) == 16 and any(t.abs().sum() > 0 for k, t in saved.items() if 'lora_B' in k)   # trained: B moved from 0

def test_ask_two_clips(trained, monkeypatch):
    home, project, clips, r, doc = trained
    assert r.returncode == 0, r.stderr[-3000:]
    monkeypatch.setenv('AUDIO_LM_HOME', str(home))
    from audio_lm.audio_language import load_trained, ask
    from audio_lm.collate import Qwen2AudioCollator, Qwen2AudioExample
    model, processor = load_trained(_version(home))
    q = 'Are these two clips the same words?'
    enc = Qwen2AudioCollator(processor, cache=False)([Qwen2AudioExample([clips[1].path, clips[2].path], q)], for_generation=True)
    assert processor.tokenizer.decode(enc['input_ids'][0]).count('<|audio_bos|>') == 2 and enc['input_features'].shape[0] == 2
    reply = ask(model, processor, [clips[1].path, clips[2].path], q, max_new_tokens=8)
    assert isinstance(reply, str) and reply.strip()
    assert ask(model, processor, [clips[1].path, clips[2].path], q, max_new_tokens=8) == reply   # greedy: repeatable

def test_loss_ignores_audio_placeholders(trained, monkeypatch):
    home, project, clips, r, doc = trained
    monkeypatch.setenv('AUDIO_LM_HOME', str(home))
    from audio_lm.run import load_base
    from audio_lm.collate import Qwen2AudioCollator, Qwen2AudioExample
    base = load_base('tiny-qwen2-audio')
    coll = Qwen2AudioCollator.for_base(base, cache=False)
    batch = coll([Qwen2AudioExample([clips[0].path, clips[1].path], 'First <|AUDIO|> then <|AUDIO|>: same words?', 'No.'),
                  Qwen2AudioExample([], 'What is seven plus one?', 'Eight.'), clips[2]])
    ids, lab = batch['input_ids'], batch['labels']
    ph = torch.isin(ids, torch.tensor(coll.audio_ids))
    assert ph[0].sum() > 50 and ph[1].sum() == 0                      # two clips expanded; a text-only row in the batch
    assert (lab[ph] == -100).all()                                    # placeholders are never scored
    tok = coll.tok
    assert [tok.decode(l[l != -100]) for l in lab] == ['No.<|im_end|>', 'Eight.<|im_end|>', clips[2].transcript + '<|im_end|>']
    with torch.no_grad():
        out = base.model(**batch)
        scored = torch.zeros_like(lab, dtype=torch.bool); scored[:, :-1] = lab[:, 1:] != -100
        noisy = torch.where(scored[..., None], out.logits, torch.randn_like(out.logits) * 50)
        am = batch['attention_mask'][:, 1:] == 1
        loss_noisy = torch.nn.functional.cross_entropy(noisy[:, :-1][am], lab[:, 1:][am])
        assert torch.allclose(loss_noisy, out.loss, atol=1e-5)         # logits at placeholders/prompt do not matter
        leaky = lab.clone(); leaky[ph] = ids[ph]
        assert abs(float(base.model(**{**batch, 'labels': leaky}).loss) - float(out.loss)) > 1e-3   # ... had they been labelled

def test_qlora_refused_without_cuda(trained, monkeypatch):
    home, project, clips, r, doc = trained
    monkeypatch.setenv('AUDIO_LM_HOME', str(home))
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    from audio_lm.audio import AudioLmError
    from audio_lm.audio_language import QLoraNeedsCuda
    from audio_lm.document import load_document
    from audio_lm.store import Store
    from audio_lm.run import train_document
    q = _doc(project, '01JZ8Q00000000000000000011', clips[0], adapter='qlora')
    with pytest.raises(QLoraNeedsCuda) as e: train_document(q, max_steps=1, progress=False)
    assert isinstance(e.value, AudioLmError) and str(e.value) == QLORA_MSG
    store = Store.for_document(load_document(q))
    assert store.versions() == [] and store.lock_holder() is None      # nothing committed, the lock is released

@pytest.mark.skipif(torch.cuda.is_available(), reason='the refusal is for machines without CUDA')
def test_qlora_cli_refusal_is_one_line(trained, cli):
    home, project, clips, r, doc = trained
    q = _doc(project, '01JZ8Q00000000000000000012', clips[0], adapter='qlora')
    p = cli('train', q, '--max-steps', '1', env={'AUDIO_LM_HOME': str(home)})
    assert p.returncode == 2 and p.stderr.strip() == f'audio-lm: error: {QLORA_MSG}', p.stderr[-2000:]

@pytest.mark.skipif(not torch.cuda.is_available(), reason='QLoRA needs a CUDA GPU')
def test_qlora_trains_on_cuda(trained, monkeypatch):
    pytest.importorskip('bitsandbytes')
    home, project, clips, r, doc = trained
    monkeypatch.setenv('AUDIO_LM_HOME', str(home))
    from audio_lm.audio_language import load_trained, ask
    from audio_lm.run import train_document
    q = _doc(project, '01JZ8Q00000000000000000013', clips[0], adapter='qlora')
    s = train_document(q, max_steps=3, progress=False)
    assert s['version'] == 'v0001'
    assert json.loads((Path(s['version_path'])/'audio_language.json').read_text())['adapter'] == 'qlora'
    model, processor = load_trained(s['version_path'])
    assert isinstance(ask(model, processor, [clips[1].path, clips[2].path], 'Same words?', max_new_tokens=4), str)

@pytest.mark.parametrize('name', ['tiny-qwen2-audio', 'qwen2-audio-tiny.en+smollm2'])
def test_answer_only_head_same_loss_and_grads(name, tmp_path):
    "The head on the trained positions only: transformers' loss and the same gradients of what trains; generate unchanged."
    import os
    from audio_lm.models import load_audio_language
    from audio_lm.audio_language import audio_language_recipe, answer_only_head
    from audio_lm.collate import Qwen2AudioExample
    from audio_lm.corpus import synth_corpus
    home = Path(os.environ['AUDIO_LM_HOME'])/'bases'; home.mkdir(parents=True)
    if (REAL_BASES/name/'DONE').is_file(): (home/name).symlink_to(REAL_BASES/name)   # the built real base, read only
    clips = synth_corpus(tmp_path/'c', n=4, kind='digits', seed=0, progress=False)
    r = audio_language_recipe(load_audio_language(name), cache=tmp_path/'cache')
    inner = r.model.base_model.model
    assert '_dense_forward' in inner.__dict__                         # on by default
    with torch.no_grad():
        for n, p in r.model.named_parameters():
            if 'lora_B' in n: p.normal_(0, 0.02)                      # B = 0 would hide the adapters
    b = r.collate([*clips[:3], Qwen2AudioExample([], 'What is seven plus one?', 'Eight.')])
    assert (b['attention_mask'] == 0).any() and (b['labels'][b['attention_mask'] == 0] == -100).all()   # padding: never trained
    r.model.eval()
    def step():
        r.model.zero_grad(); out = r.model(**b); out.loss.backward()
        return out, {n: p.grad.clone() for n, p in r.model.named_parameters() if p.requires_grad}
    sparse, g_sparse = step()
    said = r.transcribe(r.model, clips[3:])
    answer_only_head(inner, False)
    dense, g_dense = step()
    assert sparse.logits is None and dense.logits.shape[:2] == b['input_ids'].shape
    assert sparse.answer_logits.shape[0] == int((b['labels'][:, 1:] != -100).sum()) < b['labels'][:, 1:].numel() // 4
    assert abs(sparse.loss.item() - dense.loss.item()) <= 1e-5, (sparse.loss.item(), dense.loss.item())
    assert g_sparse.keys() == g_dense.keys() and len(g_sparse) >= 16
    for n in g_sparse: assert torch.allclose(g_sparse[n], g_dense[n], atol=1e-5, rtol=1e-4), n
    assert r.transcribe(r.model, clips[3:]) == said                  # generation never took the answer-only path
