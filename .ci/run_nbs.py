"""Execute notebooks to refresh their stored outputs, then leave them clean and the library exported.

Usage: python .ci/run_nbs.py [nbs/NN_name.ipynb ...]   (default: every notebook in nbs/)

Outputs are committed (the docs render from them), so they must be deterministic: after executing, the
outputs of `#| eval: false` cells (live widgets) and the saved widget state are dropped — both hold
random model ids. Then nbdev_clean and nbdev_export, in that order, so the exported cell ids match.
"""
import json, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

def strip_live(p:Path):
    nb = json.loads(p.read_text())
    for c in nb['cells']:
        src = ''.join(c['source']) if isinstance(c['source'], list) else c['source']
        if c['cell_type'] == 'code' and any(l.strip().replace(' ', '') == '#|eval:false' for l in src.splitlines()[:5]):
            c['outputs'] = []; c['execution_count'] = None
    nb['metadata'].pop('widgets', None)
    p.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + '\n')

def main(paths):
    paths = [Path(p).resolve() for p in paths] or sorted((ROOT/'nbs').rglob('*.ipynb'))
    failed = []
    for p in paths:
        if '.ipynb_checkpoints' in p.parts: continue
        print(f'executing {p.relative_to(ROOT)}', flush=True)
        r = subprocess.run([BIN/'jupyter', 'nbconvert', '--to', 'notebook', '--execute', '--inplace',
                            '--ExecutePreprocessor.timeout=1200', str(p)], cwd=p.parent, capture_output=True, text=True)
        if r.returncode: failed.append(p.name); print(r.stderr[-3000:]); continue
        strip_live(p)
    subprocess.run([BIN/'nbdev_clean'], cwd=ROOT, check=True)
    subprocess.run([BIN/'nbdev_export'], cwd=ROOT, check=True)
    if failed: sys.exit(f"failed: {', '.join(failed)}")

if __name__ == '__main__': main(sys.argv[1:])
