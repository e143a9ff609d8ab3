"""The frozen-encoder cache (nbs/05a_encoder_cache.ipynb) inside the two hearing recipes.

With the cache the recipes train exactly as without it (same losses, same saved weights for the same seed),
epoch 2 reads every clip from it, a training encoder or changed weights are never served, damaged entries are
recomputed, and the folder stays under its bound. Outputs of the real bases (Whisper tiny.en + SmolLM2-135M,
Qwen2-Audio built of the same parts) are checked against the plain encoder.
"""
import json, os
from pathlib import Path
import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from audio_lm.collate import ListenExample
from audio_lm.corpus import synth_corpus
from audio_lm.encoder_cache import EncoderCache, encoder_cache_of, cache_encoder, uncache_encoder
from audio_lm.listen import listen_recipe
from audio_lm.audio_language import audio_language_recipe
from audio_lm.models import load_listening, load_audio_language, BUILD_VERSION
from audio_lm.train import fit, TrainConfig, evaluate

REAL_BASES = Path('~/.audio_lm/bases').expanduser()   # conftest moves AUDIO_LM_HOME, not the home folder

@pytest.fixture(scope='module')
def clips(tmp_path_factory):
    return synth_corpus(tmp_path_factory.mktemp('enc_corpus'), n=10, kind='digits', seed=0, progress=False)

def _examples(clips): return [ListenExample([c.path], 'Transcribe the audio.', c.transcript) for c in clips]

def _use_real_bases(*names):
    "Bases already built in the real home are linked into the test's home (read only); others are built there."
    bases = Path(os.environ['AUDIO_LM_HOME'])/'bases'; bases.mkdir(parents=True, exist_ok=True)
    for n in names:
        done = REAL_BASES/n/'DONE'
        if done.is_file() and json.loads(done.read_text()).get('build_version') == BUILD_VERSION and not (bases/n).exists():
            (bases/n).symlink_to(REAL_BASES/n)

CFG = dict(max_steps=6, num_epochs=3, micro_batch_size=4, eval_every=0, ckpt_every=0, warmup_steps=1, learning_rate=1e-3)

def _fit(recipe, train, held, tmp_path, name):
    return fit(recipe, train, held, TrainConfig(**CFG), run_dir=tmp_path/name, progress=False)

@pytest.mark.parametrize('kind', ['listen', 'audio-language'])
def test_fit_same_with_and_without_cache(kind, clips, tmp_path):
    ex = _examples(clips); train, held = ex[:8], ex[8:]
    load = (lambda: load_listening('tiny-listener')) if kind == 'listen' else (lambda: load_audio_language('tiny-qwen2-audio'))
    make = listen_recipe if kind == 'listen' else audio_language_recipe
    runs = {}
    for on in (True, False):
        r = make(load(), cache=tmp_path/f'cache_{on}', encoder_cache=on)
        ec = encoder_cache_of(r.model)
        assert (ec is not None) == on
        stats = []
        res = fit(r, train, held, TrainConfig(**CFG), run_dir=tmp_path/f'run_{on}', progress=False,
                  on_step=lambda s, rec: stats.append((rec['epoch'], ec.stats.computed, ec.stats.hits)) if ec else None)
        r.save(r.model, tmp_path/f'saved_{on}')
        runs[on] = res, ec, stats
    (res1, ec, stats), (res0, _, _) = runs[True], runs[False]
    np.testing.assert_allclose([h['loss'] for h in res1.history], [h['loss'] for h in res0.history], atol=1e-5)
    np.testing.assert_allclose(res1.final_eval['eval_loss'], res0.final_eval['eval_loss'], atol=1e-5)
    assert res1.final_eval['samples'] == res0.final_eval['samples']
    # every training clip computed once, in epoch 1 (2 steps); epochs 2 and 3 read all of them
    assert stats[1][1] == stats[-1][1] == 8 and stats[-1][2] >= 16
    assert ec.stats.computed == 8 + 2 and ec.stats.bypassed == 0     # the held-out clips once, in the final evaluation
    f = 'projector.safetensors' if kind == 'listen' else 'adapter_model.safetensors'
    a, b = load_file(tmp_path/'saved_True'/f), load_file(tmp_path/'saved_False'/f)
    assert sorted(a) == sorted(b) and all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    assert sorted(p.name for p in (tmp_path/'saved_True').iterdir()) == sorted(p.name for p in (tmp_path/'saved_False').iterdir())

def test_training_encoder_never_served(clips, tmp_path):
    r = listen_recipe(load_listening('tiny-listener'), cache=tmp_path/'c', policy='projector')
    ec = encoder_cache_of(r.model)
    r.model.set_policy('projector+encoder')   # the encoder trains from now on
    b = r.collate(_examples(clips[:4]))
    for _ in range(2): r.model(**b).loss.backward()
    assert (ec.stats.computed, ec.stats.hits, ec.stats.bypassed) == (0, 0, 2)
    assert r.model.encoder.conv1.weight.grad is not None
    # a recipe whose policy trains the encoder attaches no cache at all
    assert encoder_cache_of(listen_recipe(load_listening('tiny-listener'), cache=tmp_path/'c', policy='projector+encoder').model) is None

def test_changed_weights_and_damage(clips, tmp_path):
    r = listen_recipe(load_listening('tiny-listener'), cache=tmp_path/'c')
    ec, b = encoder_cache_of(r.model), r.collate(_examples(clips[:4]))
    with torch.no_grad():
        r.model(**b); r.model(**b)
        assert (ec.stats.computed, ec.stats.hits) == (4, 4)
        r.model.encoder.layer_norm.bias[0] += 0.5               # one encoder weight changes
        changed = r.model(**b).loss
        assert (ec.stats.computed, ec.stats.hits) == (8, 4)
        uncache_encoder(r.model.encoder); plain = r.model(**b).loss
        assert abs(float(changed - plain)) <= 1e-5
    for f in (tmp_path/'c'/'encoder').glob('*/*.npz'): f.write_bytes(f.read_bytes()[:100])   # every entry cut short
    ec2 = cache_encoder(r.model.encoder, EncoderCache(tmp_path/'c')).encoder_cache
    with torch.no_grad(): again = r.model(**b).loss
    assert ec2.stats.corrupt == 4 and ec2.stats.computed == 4 and abs(float(again - plain)) <= 1e-5
    with torch.no_grad(): r.model(**b)
    assert ec2.stats.hits == 4   # rewritten (and read from memory)
    assert EncoderCache(tmp_path/'c').get(next(iter(ec2._mem))[1]) is not None   # ... and on disk, whole again

def test_size_bound_in_a_run(clips, tmp_path):
    r = listen_recipe(load_listening('tiny-listener'), cache=tmp_path/'c')
    ec = encoder_cache_of(r.model); ec.max_bytes = 60_000   # about half the 10 clips
    _fit(r, _examples(clips), (), tmp_path, 'run')
    assert 0 < ec.disk_bytes() <= 60_000 and ec.stats.evicted > 0

@pytest.mark.parametrize('name', ['whisper-tiny.en+smollm2-135m', 'qwen2-audio-tiny.en+smollm2'])
def test_real_bases_same_outputs(name, clips, tmp_path):
    "Real frozen encoders: every output with the cache (all computed, all served, half and half) is the plain one."
    _use_real_bases(name)
    listen = name.startswith('whisper')
    base = load_listening(name) if listen else load_audio_language(name)
    r = (listen_recipe if listen else audio_language_recipe)(base, cache=tmp_path/'c')
    ec = encoder_cache_of(r.model); assert ec is not None
    enc = next(m for m in r.model.modules() if 'encoder_cache' in m.__dict__)
    batches = [r.collate(_examples(clips[:4])), r.collate(_examples(clips[:4])), r.collate(_examples(clips[2:6]))]
    r.model.eval()
    with torch.no_grad():
        cached = [r.model(**b) for b in batches]
        assert (ec.stats.computed, ec.stats.hits) == (4 + 2, 4 + 2)   # the third batch: two known clips, two new
        uncache_encoder(enc)
        plain = [r.model(**b) for b in batches]
    logits = (lambda o: o.answer_logits) if listen else (lambda o: o.logits)
    for c, p in zip(cached, plain):
        assert abs(float(c.loss - p.loss)) <= 1e-5
        assert float((logits(c) - logits(p)).abs().max()) <= 1e-5
