"Integration checks of audio_lm.models that need fresh processes: a fine-tune saved in one process loads in another."
import json, os, subprocess, sys, textwrap
from pathlib import Path
import pytest

TRAIN = textwrap.dedent('''
    import json, sys, torch
    from pathlib import Path
    from audio_lm.run import load_base
    torch.manual_seed(0)
    m = load_base('tiny-listener').model.set_policy('projector+lora+encoder', r=4)
    x = {'input_ids': torch.tensor([[7, 8] + [m.audio_token_id] * m.audio_tokens(150) + [9, 10]]),
         'input_features': torch.randn(1, 80, 150)}
    x['labels'] = x['input_ids'].clone()
    opt = torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(2): m(**x).loss.backward(); opt.step(); opt.zero_grad()
    m.eval(); m.save_pretrained(sys.argv[1])
    torch.save(x, Path(sys.argv[1]).parent / 'x.pt')
    with torch.no_grad(): print(json.dumps(m(**{k: v for k, v in x.items() if k != 'labels'}).logits[0, -1, :8].tolist()))  # full logits: no labels
''')

LOAD = textwrap.dedent('''
    import json, sys, torch
    from pathlib import Path
    from audio_lm.models import ListeningLM
    m = ListeningLM.from_pretrained(sys.argv[1]).eval()
    x = torch.load(Path(sys.argv[1]).parent / 'x.pt', weights_only=True)
    with torch.no_grad(): print(json.dumps(m(**{k: v for k, v in x.items() if k != 'labels'}).logits[0, -1, :8].tolist()))  # full logits: no labels
''')

def _py(script, *args, home):
    env = {**os.environ, 'AUDIO_LM_HOME': str(home), 'HF_HUB_OFFLINE': '1'}
    r = subprocess.run([sys.executable, '-c', script, *map(str, args)], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])

def test_finetune_reloads_in_a_fresh_process(tmp_path):
    home, out = tmp_path / 'home', tmp_path / 'ft'
    before = _py(TRAIN, out, home=home)
    files = sorted(str(p.relative_to(out)) for p in out.rglob('*') if p.is_file())
    # trained parts only: projector, encoder (trained by this policy), a PEFT adapter; no pickles, no LLM copy
    assert files == ['adapter/README.md', 'adapter/adapter_config.json', 'adapter/adapter_model.safetensors',
                     'encoder.safetensors', 'listening.json', 'projector.safetensors'], files
    cfg = json.loads((out / 'listening.json').read_text())
    assert (cfg['base'], cfg['policy']) == ('tiny-listener', 'projector+lora+encoder')
    assert _py(LOAD, out, home=home) == before
    # a fresh AUDIO_LM_HOME rebuilds the tiny base from its seed, so the fine-tune still loads identically
    assert _py(LOAD, out, home=tmp_path / 'other_home') == before

def test_missing_hub_weights_are_one_sentence(tmp_path):
    from audio_lm.run import load_base
    from audio_lm.bases import BaseWeightsMissing
    from audio_lm.audio import AudioLmError
    with pytest.raises(BaseWeightsMissing) as e: load_base('whisper-large-v3+mistral-7b-openorca')
    msg = str(e.value)
    assert isinstance(e.value, AudioLmError) and msg.count('. ') == 0 and msg.endswith('.')
    assert 'hf download openai/whisper-large-v3 && hf download Open-Orca/Mistral-7B-OpenOrca' in msg
