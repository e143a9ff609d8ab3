"Every file and folder `audio-lm` writes has the mode the user's umask gives (0644/0755 under 022), not mkstemp's 0600/0700."
import json, os, stat, subprocess, sys
from pathlib import Path

def cli_umask(mask:int, *args, home):
    env = {**os.environ, 'AUDIO_LM_HOME': str(home), 'OMP_NUM_THREADS': '1'}
    return subprocess.run([sys.executable, '-m', 'audio_lm.cli', *map(str, args)], capture_output=True, text=True, env=env,
                          timeout=600, preexec_fn=lambda: os.umask(mask))

def modes(*roots)->dict:
    "path -> permission bits of every file and folder under `roots` (the store's transient lock left out)."
    out = {}
    for r in roots:
        for p in [Path(r), *Path(r).rglob('*')]:
            if p.is_symlink() or p.name == 'lock': continue
            out[p] = stat.S_IMODE(p.stat().st_mode)
    return out

def bad(ms:dict, file_mode:int, dir_mode:int)->list:
    return [(str(p), oct(m)) for p, m in ms.items() if m != (dir_mode if p.is_dir() else file_mode)]

def test_outputs_follow_umask_022(tmp_path):
    home, work = tmp_path/'home', tmp_path/'work'
    work.mkdir()
    r = cli_umask(0o022, 'corpus', 'synth', work/'corpus', '--n', 6, home=home)
    assert r.returncode == 0, r.stderr
    r = cli_umask(0o022, 'init', work/'d.dlm', '--listen', '--base', 'tiny-listener', home=home)
    assert r.returncode == 0, r.stderr
    text = (work/'d.dlm').read_text()
    head, body = text.split('\n---\n', 1)
    (work/'d.dlm').write_text(head.replace('# training:', 'training:\n  sources:\n    - path: ./corpus\n# training:', 1)
                              + '\n---\nDigits.\n')
    r = cli_umask(0o022, 'train', work/'d.dlm', '--max-steps', 2, home=home)
    assert r.returncode == 0, r.stderr[-2000:]
    r = cli_umask(0o022, 'export', work/'d.dlm', '--out', work/'export', home=home)
    assert r.returncode == 0, r.stderr[-2000:]
    ms = modes(work, home)
    kinds = {p.suffix for p in ms if p.is_file()}
    assert {'.wav', '.txt', '.csv', '.dlm', '.json', '.jsonl', '.png', '.safetensors'} <= kinds, kinds
    assert any('versions' in p.parts for p in ms) and any(p.parent.name == 'export' for p in ms)
    b = bad(ms, 0o644, 0o755)
    assert not b, '\n'.join(map(str, b))

def test_outputs_follow_umask_077(tmp_path):
    home, work = tmp_path/'home', tmp_path/'work'
    work.mkdir(mode=0o700)
    assert cli_umask(0o077, 'corpus', 'synth', work/'corpus', '--n', 2, home=home).returncode == 0
    assert cli_umask(0o077, 'init', work/'d.dlm', '--speak', home=home).returncode == 0
    ms = modes(work)
    assert len(ms) > 5 and bad(ms, 0o600, 0o700) == []

def _strict(text:str):
    def no(c): raise ValueError(f'non-standard JSON constant {c}')
    return json.loads(text, parse_constant=no)

def test_json_we_write_is_strict(tmp_path):
    from audio_lm.store import Store, canonical_json, commit_version
    assert _strict(canonical_json({'train_loss': float('nan'), 'eval': {'wer': float('inf')}})) == {'train_loss': None, 'eval': {'wer': None}}
    st = Store(tmp_path/'s'); st.create()
    commit_version(st, lambda d: (d/'w.txt').write_text('x'), meta={'train_loss': float('nan')})
    for f in [st.manifest_path, *st.root.rglob('version.json')]: _strict(f.read_text())
