"""The peer baseline of `audio-lm bench`: the project's trainer vs a plain Hugging Face `Trainer` with 30 s padding,
on the quick (tiny) bases. Speed is reported, never asserted; what is asserted is that the comparison is fair
(same steps, same trainable parameters) and that the peer really does what it stands for (30 s, encoder every step)."""
import json, math
import pytest
from audio_lm.bench import BENCHMARKS, PEER_BASES, bench_peer, pad_features, to_markdown, machine

def finite(x): return isinstance(x, (int, float)) and math.isfinite(x)

@pytest.mark.parametrize('recipe', ['listen', 'audio-language'])
def test_quick_peer_benchmark(recipe, tmp_path):
    r = bench_peer(recipe, quick=True, workdir=tmp_path)
    json.dumps(r, allow_nan=False)   # strict JSON, as `audio-lm bench --json` writes it
    o, p = r['ours'], r['peer']
    assert r['base'] == {'listen': 'tiny-listener', 'audio-language': 'tiny-qwen2-audio'}[recipe]
    assert (r['train_clips'], r['epochs'], r['batch']) == (8, 2, 4)
    # a fair comparison: the same number of optimizer steps over the same parameters
    assert o['steps'] == p['steps'] == 4 == len(o['losses']) == len(p['losses'])
    assert o['trainable_params'] == p['trainable_params'] > 0
    # the peer is the LLaMA-Factory pipeline: every clip padded to 30 s, the encoder run on every clip at every step
    assert p['encoder_frames'] == [3000, 3000] and p['encoder_runs'] == p['steps'] and p['encoder_clips'] == 4 * 4
    # ...and logits over every position; ours only where an answer token is trained
    assert 0 < o['head_positions'] < p['head_positions'] / 2
    assert o['encoder_clips'] == r['train_clips']   # ours: the frozen encoder runs once per clip (the encoder cache)
    if recipe == 'listen': assert o['encoder_frames'][1] < 3000   # ours: each batch at its longest clip
    for side in (o, p):
        assert all(finite(x) for x in side['losses'] + side['epoch_s'] + side['epoch_cpu_s'])
        assert all(finite(side[k]) and side[k] > 0 for k in ('samples_per_s', 'samples_per_cpu_s', 'peak_rss_mb', 'final_loss',
                                                            'eval_loss', 'step_s_epoch1', 'step_s_epoch2', 'step_cpu_s_epoch2'))
        assert len(side['epoch_s']) == len(side['epoch_cpu_s']) == 2 and side['threads'] == 1
    for k in ('samples_per_s_ratio', 'samples_per_cpu_s_ratio', 'rss_ratio', 'epoch2_over_epoch1', 'epoch2_over_epoch1_cpu',
              'final_loss_diff', 'final_loss_noise', 'eval_loss_diff'):
        assert finite(r[k]), k
    assert abs(r['samples_per_s_ratio'] - o['samples_per_s'] / p['samples_per_s']) < 0.01 * r['samples_per_s_ratio']
    # the same model from the same start learns the same: the first step's loss is the same up to the batch drawn
    assert abs(o['losses'][0] - p['losses'][0]) < 0.5
    row = to_markdown({'machine': machine(), 'quick': True, 'benchmarks': {f"peer_{recipe.replace('-', '_')}": r}}).splitlines()[-1]
    assert 'samples/s' in row and 'peak RSS' in row and 'final loss' in row

def test_peer_benchmarks_are_in_audio_lm_bench():
    assert {'peer_listen', 'peer_audio_language'} <= set(BENCHMARKS)
    assert [b[0] for b in PEER_BASES] == ['whisper-tiny.en+smollm2-135m', 'qwen2-audio-tiny.en+smollm2']

def test_peer_benchmark_errors(tmp_path):
    with pytest.raises(ValueError, match="no peer benchmark for recipe 'speak'; choose one of listen, audio-language"):
        bench_peer('speak')
    with pytest.raises(ValueError, match='no full batch'):
        bench_peer('listen', quick=True, n=2, workdir=tmp_path)
    with pytest.raises(ValueError, match='no held-out clip'):
        bench_peer('listen', quick=True, n_eval=0, workdir=tmp_path/'b')
    import torch
    with pytest.raises(ValueError, match='3000-frame window'):
        pad_features({'input_features': torch.zeros(1, 80, 3100), 'feature_attention_mask': torch.ones(1, 3100)})
