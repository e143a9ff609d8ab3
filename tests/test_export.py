"""Export end to end: each recipe's tiny base is exported, then loaded in a fresh Python process with exactly the
lines of the export's README (plain transformers + PEFT; audio_lm only for the listening model), and must give the
logits of the adapter in the store. Also: merged weights without PEFT, verify after tampering, the CLI, a killed
export, and the user errors."""
import json, os, signal, subprocess, sys, textwrap
from dataclasses import asdict
from pathlib import Path
from types import SimpleNamespace
import numpy as np
import pytest
import torch

DOC = "---\ndlm_id: {id}\ndlm_version: 11\nbase_model: {base}\n---\nNotes.\n"

def _doc(path:Path, base:str, n:int):
    from audio_lm.document import new_ulid
    from audio_lm.store import Store
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(DOC.format(id=new_ulid(1700000000000, n), base=base))
    return Store.for_document(new_ulid(1700000000000, n)).create()

def _nudge(model, seed=0):
    "Random LoRA B matrices (zero at init), so the adapter changes the logits."
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if 'lora_B' in n: p.copy_(torch.randn(p.shape, generator=g) * 0.05)
    return model.eval()

@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    "Three documents (audio-language, listen, speak) on the tiny bases, each with one committed adapter version, and the in-store logits."
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import AutoModelForCausalLM, Qwen2AudioForConditionalGeneration
    from audio_lm.run import load_base
    from audio_lm.models import base_path, ListeningLM
    from audio_lm.codec import add_speech_tokens
    from audio_lm.store import commit_version, canonical_json
    root = tmp_path_factory.mktemp('export')
    ns = SimpleNamespace(root=root, home=root/'home')
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv('AUDIO_LM_HOME', str(ns.home)); mp.setenv('HF_HUB_OFFLINE', '1')
        # audio-language: a PEFT LoRA on the language model's attention (the registry's regex)
        qa = load_base('tiny-qwen2-audio')
        ft = _nudge(get_peft_model(qa.model, LoraConfig(r=4, lora_alpha=8, target_modules=qa.spec.lora_targets)))
        ns.qa_doc = root/'qa'/'notes.dlm'; ns.qa_store = _doc(ns.qa_doc, 'tiny-qwen2-audio', 1)
        def save_qa(d):  # as the audio-language recipe's save_adapter writes it
            ft.save_pretrained(d); (d/'audio_language.json').write_text(json.dumps({'base': 'tiny-qwen2-audio', 'adapter': 'lora'}))
        with ns.qa_store.lock('train'): commit_version(ns.qa_store, save_qa)   # no base in the store's record: the note says
        msgs = [{'role': 'user', 'content': [{'type': 'audio', 'audio': 'c.wav'}, {'type': 'text', 'text': 'What is said?'}]}]
        ns.qa_text = qa.processor.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
        ns.qa_wav = np.random.default_rng(0).standard_normal(24000).astype(np.float32) * 0.1
        x = qa.processor(text=ns.qa_text, audio=[ns.qa_wav], sampling_rate=16000, return_tensors='pt')
        in_store = PeftModel.from_pretrained(Qwen2AudioForConditionalGeneration.from_pretrained(base_path('tiny-qwen2-audio')),
                                             ns.qa_store.current_path()).eval()
        with torch.no_grad():
            ns.qa_ref = in_store(**x).logits
            ns.qa_plain = Qwen2AudioForConditionalGeneration.from_pretrained(base_path('tiny-qwen2-audio')).eval()(**x).logits
        # listen: projector + LoRA on the LLM
        tl = _nudge(load_base('tiny-listener').model.set_policy('projector+lora', r=4))
        ns.li_doc = root/'li'/'notes.dlm'; ns.li_store = _doc(ns.li_doc, 'tiny-listener', 2)
        with ns.li_store.lock('train'): commit_version(ns.li_store, tl.save_pretrained, meta={'base': 'tiny-listener'})
        ns.li_x = {'input_ids': torch.tensor([[7, 8] + [tl.audio_token_id] * tl.audio_tokens(160) + [9, 10]]),
                   'input_features': torch.randn(1, 80, 160, generator=torch.Generator().manual_seed(1))}
        with torch.no_grad(): ns.li_ref = ListeningLM.from_pretrained(ns.li_store.current_path()).eval()(**ns.li_x).logits
        # speak: a PEFT LoRA over the speaking Llama + speech_tokens.json
        sp = load_base('tiny-speaker'); ns.sp_tokens = add_speech_tokens(sp.tokenizer)
        sft = _nudge(get_peft_model(sp.model, LoraConfig(r=4, lora_alpha=8, target_modules=list(sp.spec.lora_targets),
                                                         task_type='CAUSAL_LM')))
        ns.codec_rec = {'id': sp.spec.codec, 'source': 'pretrained', 'sample_rate': 24000, 'fingerprint': 'f00d'}
        def save(d):  # as the speaking recipe's save_speaker writes it
            sft.save_pretrained(d)
            (d/'speech_tokens.json').write_text(canonical_json({'format': 1, 'base': 'tiny-speaker', 'speech_tokens': asdict(ns.sp_tokens),
                                                                'codec': ns.codec_rec, 'speakers': []}))
        ns.sp_doc = root/'sp'/'notes.dlm'; ns.sp_store = _doc(ns.sp_doc, 'tiny-speaker', 3)
        with ns.sp_store.lock('train'): commit_version(ns.sp_store, save, meta={'base': 'tiny-speaker'})
        t = ns.sp_tokens
        ns.sp_ids = torch.tensor([[t.start_of_human, 5, 6, 7, t.end_of_text, t.end_of_human, t.start_of_ai, t.start_of_speech,
                                   t.audio_tokens_start + 3, t.audio_tokens_start + 4096 + 9]])
        sp_in_store = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_path('tiny-speaker')),
                                                ns.sp_store.current_path()).eval()
        with torch.no_grad():
            ns.sp_ref = sp_in_store(ns.sp_ids).logits
            ns.sp_plain = AutoModelForCausalLM.from_pretrained(base_path('tiny-speaker')).eval()(ns.sp_ids).logits
    return ns

@pytest.fixture
def home(trained, monkeypatch):
    "Point AUDIO_LM_HOME at the module's home (its tiny bases and stores)."
    monkeypatch.setenv('AUDIO_LM_HOME', str(trained.home))
    return trained.home

# Runs in a fresh interpreter: for each export, executes the "## Load" code block of its README inside the export
# folder, then computes logits on the inputs the test saved. Merged HF exports load with `peft` made unimportable.
# One process for the three recipes (interpreter start-up and imports are most of its time); failures are reported
# per recipe, so each test names its own.
FRESH = textwrap.dedent(r"""
    import json, os, sys, traceback
    import numpy as np, torch
    jobs, out = json.load(open(sys.argv[1])), sys.argv[2]
    def load(folder, block_peft=False):
        readme = open(os.path.join(folder, 'README.md'), encoding='utf-8').read()
        code = readme.split('## Load\n\n```python\n', 1)[1].split('\n```', 1)[0]
        if block_peft: sys.modules['peft'] = None          # `import peft` raises ImportError
        ns, cwd = {}, os.getcwd(); os.chdir(folder)
        try: exec(code, ns)
        finally:
            os.chdir(cwd)
            if block_peft: del sys.modules['peft']
        return ns
    def logits(modality, ns, inputs):
        with torch.no_grad():
            if modality == 'audio-language':
                x = ns['processor'](text=open(inputs + '.txt').read(), audio=[np.load(inputs + '.npy')], sampling_rate=16000,
                                    return_tensors='pt')
                return ns['model'].eval()(**x).logits
            if modality == 'speak': return ns['model'].eval()(torch.load(inputs + '.pt')).logits
            return ns['model'].eval()(**torch.load(inputs + '.pt')).logits
    res, facts = {}, {}
    for modality in ('audio-language', 'speak', 'listen'):   # audio_lm is imported by the listening one only: last
        j = jobs[modality]; f = facts[modality] = {}
        try:
            ns = load(j['merged'], block_peft=modality != 'listen')
            res[modality + ':merged'] = logits(modality, ns, j['inputs'])
            f['merged_class'] = type(ns.get('llm', ns['model'])).__name__
            f['audio_lm_imported'] = 'audio_lm' in sys.modules
            ns = load(j['snap'])
            res[modality + ':adapter'] = logits(modality, ns, j['inputs'])
            f['adapter_class'] = type(ns['model']).__name__
            f['audio_lm_imported'] = f['audio_lm_imported'] or 'audio_lm' in sys.modules
            if modality == 'speak':
                info = json.load(open(os.path.join(j['snap'], 'speech_tokens.json')))
                f['speech'] = [ns['tokenizer'].convert_tokens_to_ids('<custom_token_10>'),
                               info['speech_tokens']['audio_tokens_start'], info['codec']['id']]
        except Exception: f['error'] = traceback.format_exc()[-3000:]
    torch.save(res, out)
    print(json.dumps(facts))
""")

@pytest.fixture(scope='module')
def exported(trained):
    "Each recipe exported as an adapter snapshot and as merged weights, then loaded in one fresh Python process."
    from audio_lm.export import export
    root = trained.root/'fresh'; root.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv('AUDIO_LM_HOME', str(trained.home))
        jobs = {m: {'snap': str(export(doc)), 'merged': str(export(doc, merged=True)), 'inputs': str(root/m)}
                for m, doc in (('audio-language', trained.qa_doc), ('listen', trained.li_doc), ('speak', trained.sp_doc))}
        np.save(root/'audio-language.npy', trained.qa_wav); (root/'audio-language.txt').write_text(trained.qa_text)
        torch.save(trained.li_x, root/'listen.pt'); torch.save(trained.sp_ids, root/'speak.pt')
        (root/'jobs.json').write_text(json.dumps(jobs))
        r = subprocess.run([sys.executable, '-c', FRESH, str(root/'jobs.json'), str(root/'logits.pt')], capture_output=True,
                           text=True, timeout=600, cwd=root, env={**os.environ, 'HF_HUB_OFFLINE': '1'})
    assert r.returncode == 0, r.stderr[-3000:]
    return SimpleNamespace(jobs={m: {k: Path(v) for k, v in j.items()} for m, j in jobs.items()},
                           logits=torch.load(root/'logits.pt'), facts=json.loads(r.stdout.strip().splitlines()[-1]))

def _loaded(exported, modality):
    f = exported.facts[modality]
    assert 'error' not in f, f['error']
    return exported.logits[modality + ':adapter'], exported.logits[modality + ':merged'], f

def test_audio_language_export_loads_with_plain_transformers_and_peft(trained, exported, home):
    from audio_lm.export import read_snapshot_manifest, verify
    snap, merged = exported.jobs['audio-language']['snap'], exported.jobs['audio-language']['merged']
    assert snap == trained.qa_store.exports_dir.absolute()/'hf-audio-snapshot-v0001' and merged.name == 'hf-audio-snapshot-merged-v0001'
    assert sorted(p.name for p in (snap/'adapter').iterdir()) == ['adapter_config.json', 'adapter_model.safetensors']
    assert (snap/'processor'/'processor_config.json').exists()
    m = read_snapshot_manifest(snap)
    assert (m['export_target'], m['modality'], m['adapter_version'], m['audio_token']) == ('hf_snapshot', 'audio-language', 'v0001', '<|AUDIO|>')
    assert (m['num_audio_tokens'], m['sample_rate'], m['max_length_seconds']) == (750, 16000, 30.0)
    assert m['base']['name'] == 'tiny-qwen2-audio' and m['base']['architecture'] == 'Qwen2AudioForConditionalGeneration'
    assert m['created_by']['name'] == 'audio_lm' and m['created_at'] and m['base']['path'] and 'id' in m['base']
    assert {a['path'] for a in m['artifacts']} >= {'README.md', 'adapter/adapter_model.safetensors', 'processor/tokenizer.json'}
    assert read_snapshot_manifest(merged)['export_target'] == 'hf_merged'
    assert verify(snap).ok and verify(merged).ok
    rec = trained.qa_store.read_manifest()['exports']
    assert rec['hf-audio-snapshot-v0001']['adapter_version'] == 'v0001' and rec['hf-audio-snapshot-merged-v0001']['merged'] is True
    adapter, merged_logits, facts = _loaded(exported, 'audio-language')
    assert not facts['audio_lm_imported'] and facts['adapter_class'] == 'PeftModel'
    assert facts['merged_class'] == 'Qwen2AudioForConditionalGeneration'
    assert torch.equal(adapter, trained.qa_ref)                          # identical to the in-store adapter
    torch.testing.assert_close(merged_logits, trained.qa_ref, atol=1e-4, rtol=1e-4)
    assert (trained.qa_ref - trained.qa_plain).abs().max() > 0.1         # ... which really changes the base's logits

def test_listening_export_loads_with_listeninglm(trained, exported, home):
    from audio_lm.export import read_snapshot_manifest
    snap, merged = exported.jobs['listen']['snap'], exported.jobs['listen']['merged']
    files = {p.relative_to(snap).as_posix() for p in snap.rglob('*') if p.is_file()}
    assert {'listening.json', 'projector.safetensors', 'adapter/adapter_config.json', 'adapter/adapter_model.safetensors',
            'processor/tokenizer.json', 'processor/preprocessor_config.json', 'README.md', 'snapshot_manifest.json'} <= files
    assert not (merged/'adapter').exists() and (merged/'llm'/'model.safetensors').exists() and (merged/'encoder'/'config.json').exists()
    assert json.loads((merged/'listening.json').read_text())['base'] is None       # self-contained
    assert read_snapshot_manifest(merged)['base']['name'] == 'tiny-listener'
    adapter, merged_logits, facts = _loaded(exported, 'listen')
    assert facts['adapter_class'] == 'ListeningLM' and facts['merged_class'] == 'LlamaForCausalLM'   # llm/ is plain transformers
    assert torch.equal(adapter, trained.li_ref)
    torch.testing.assert_close(merged_logits, trained.li_ref, atol=1e-4, rtol=1e-4)

def test_speaking_export_loads_with_plain_transformers_and_peft(trained, exported, home):
    from audio_lm.export import read_snapshot_manifest
    snap, merged = exported.jobs['speak']['snap'], exported.jobs['speak']['merged']
    assert (snap/'adapter'/'adapter_model.safetensors').exists() and (snap/'tokenizer'/'tokenizer.json').exists()
    assert (merged/'model.safetensors').exists() and (merged/'speech_tokens.json').exists()
    m = read_snapshot_manifest(snap)
    assert (m['modality'], m['codec'], m['sample_rate'], m['audio_token']) == ('speak', 'hubertsiuzdak/snac_24khz', 24000, None)
    assert m['speech_tokens'] == asdict(trained.sp_tokens) and m['codec_record'] == trained.codec_rec
    assert json.loads((snap/'speech_tokens.json').read_text())['codec'] == trained.codec_rec
    adapter, merged_logits, facts = _loaded(exported, 'speak')
    assert not facts['audio_lm_imported'] and facts['merged_class'] == 'LlamaForCausalLM'
    assert facts['speech'] == [trained.sp_tokens.audio_tokens_start, trained.sp_tokens.audio_tokens_start, 'hubertsiuzdak/snac_24khz']
    assert torch.equal(adapter, trained.sp_ref)
    torch.testing.assert_close(merged_logits, trained.sp_ref, atol=1e-4, rtol=1e-4)
    assert (trained.sp_ref - trained.sp_plain).abs().max() > 0.01

def test_cli_export_verify_show(trained, home, tmp_path, cli):
    out = tmp_path/'shipped'
    r = cli('export', trained.qa_doc, '--out', out, '--adapter', 'v0001')
    assert r.returncode == 0, r.stderr[-2000:]
    assert f'exported v0001 of {trained.qa_doc}' in r.stdout and str(out) in r.stdout
    r = cli('verify', out)
    assert r.returncode == 0 and len(r.stdout.strip().splitlines()) == 1 and 'all 8 files' in r.stdout, r.stdout + r.stderr
    r = cli('show', trained.qa_doc)
    assert r.returncode == 0 and str(out) in r.stdout, r.stdout + r.stderr
    assert str(out) in json.loads(cli('show', trained.qa_doc, '--json').stdout)['store']['exports']
    # one changed byte and one missing file: verify fails, naming both
    w = out/'adapter'/'adapter_model.safetensors'
    raw = bytearray(w.read_bytes()); raw[len(raw)//2] ^= 0x10; w.write_bytes(bytes(raw))
    (out/'processor'/'tokenizer_config.json').unlink()
    r = cli('verify', out)
    assert r.returncode == 1
    assert 'changed: adapter/adapter_model.safetensors (sha256 differs from the manifest)' in r.stderr
    assert 'missing: processor/tokenizer_config.json' in r.stderr and '2 of 8 files are missing or changed' in r.stderr
    # user errors: one line, exit 2
    r = cli('verify', tmp_path)
    assert r.returncode == 2 and r.stderr.strip().count('\n') == 0 and 'holds no snapshot_manifest.json' in r.stderr
    r = cli('export', trained.qa_doc, '--adapter', 'v0042')
    assert r.returncode == 2 and "version 'v0042' is not in" in r.stderr and r.stderr.strip().count('\n') == 0

_KILLED = textwrap.dedent('''
    import os, signal, sys
    from audio_lm import export as E
    E._CRASH['writing'] = lambda: os.kill(os.getpid(), signal.SIGKILL)
    E.export(sys.argv[1], out=sys.argv[2])
''')

def test_killed_export_leaves_no_half_snapshot(trained, home, tmp_path):
    from audio_lm.export import export, verify, read_snapshot_manifest
    from audio_lm.store import StaleLock
    out = tmp_path/'snap'
    old = read_snapshot_manifest(export(trained.qa_doc, out=out))['created_at']
    r = subprocess.run([sys.executable, '-c', _KILLED, str(trained.qa_doc), str(out)], capture_output=True, text=True, timeout=300)
    assert r.returncode == -signal.SIGKILL, r.stderr[-2000:]
    assert verify(out).ok and read_snapshot_manifest(out)['created_at'] == old     # the previous export, whole
    assert [p.name.split('-')[0] for p in tmp_path.iterdir() if p.name.startswith('.')] == ['.snap.pending']
    with pytest.raises(StaleLock): export(trained.qa_doc, out=out)                   # the dead writer's lock is reported
    export(trained.qa_doc, out=out, break_lock=True)
    assert verify(out).ok and sorted(p.name for p in tmp_path.iterdir()) == ['snap']  # leftovers swept away

def test_user_errors(trained, home, tmp_path):
    from audio_lm.audio import AudioLmError
    from audio_lm.export import export, verify, ExportError, NoAdapterVersion, NotAnExport
    from audio_lm.bases import BaseWeightsMissing
    from audio_lm.store import reject_version
    with pytest.raises(NoAdapterVersion, match='has no trained adapter version in its store .*; run audio-lm train'):
        _doc(tmp_path/'new.dlm', 'tiny-listener', 9); export(tmp_path/'new.dlm')
    with pytest.raises(NotAnExport, match='holds no snapshot_manifest.json'): verify(tmp_path)
    (tmp_path/'busy').mkdir(); (tmp_path/'busy'/'x').write_text('mine')
    with pytest.raises(ExportError, match='already exists and is not an audio_lm export'): export(trained.qa_doc, out=tmp_path/'busy')
    # a hub base whose weights are not here: the models chapter's one sentence with the download command
    st = _doc(tmp_path/'big.dlm', 'qwen2-audio-7b-instruct', 10)
    with st.lock('train'):
        from audio_lm.store import commit_version
        commit_version(st, lambda d: [(d/n).write_bytes((trained.qa_store.current_path()/n).read_bytes())
                                      for n in ('adapter_config.json', 'adapter_model.safetensors')])
        rej = reject_version(st, lambda d: (d/'x').write_text('nan'), 'non-finite weights')
    with pytest.raises(BaseWeightsMissing, match='hf download Qwen/Qwen2-Audio-7B-Instruct'): export(tmp_path/'big.dlm')
    with pytest.raises(ExportError, match=f'version {rej} was rejected during training'): export(tmp_path/'big.dlm', adapter=rej)
    assert not any(st.exports_dir.iterdir()) and st.lock_holder() is None   # nothing half-written, lock released
    for e in (NoAdapterVersion, NotAnExport, ExportError): assert issubclass(e, AudioLmError)
