"""Execute notebooks to refresh their stored outputs, then leave them clean and the library exported.

Usage: python .ci/run_nbs.py [nbs/NN_name.ipynb ...]   (default: every notebook in nbs/)

Outputs are committed (the docs render from them), so they must be deterministic: `#| eval: false` cells
are not executed (their source is blanked while nbconvert runs, then restored, with no outputs), and the
saved widget state is dropped — it holds random model ids. Then nbdev_clean and nbdev_export, in that order, so the exported cell ids match.
"""
import json, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

def no_eval(c)->bool:
    "A code cell flagged `#| eval: false` (nbconvert would run it: it knows no nbdev flags)."
    src = ''.join(c['source']) if isinstance(c['source'], list) else c['source']
    return c['cell_type'] == 'code' and any(l.strip().replace(' ', '') == '#|eval:false' for l in src.splitlines()[:5])

def hide_no_eval(p:Path)->dict:
    "Blank the source of `#| eval: false` cells before executing; returns {index: source} to restore."
    nb = json.loads(p.read_text()); saved = {}
    for i, c in enumerate(nb['cells']):
        if no_eval(c): saved[i] = c['source']; c['source'] = ['#| eval: false']
    if saved: p.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + '\n')
    return saved

def strip_live(p:Path, saved:dict):
    nb = json.loads(p.read_text())
    for i, c in enumerate(nb['cells']):
        if i in saved: c['source'] = saved[i]
        if no_eval(c): c['outputs'] = []; c['execution_count'] = None
    nb['metadata'].pop('widgets', None)
    p.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + '\n')

def main(paths):
    paths = [Path(p).resolve() for p in paths] or sorted((ROOT/'nbs').rglob('*.ipynb'))
    failed = []
    for p in paths:
        if '.ipynb_checkpoints' in p.parts: continue
        print(f'executing {p.relative_to(ROOT)}', flush=True)
        saved = hide_no_eval(p)
        r = subprocess.run([BIN/'jupyter', 'nbconvert', '--to', 'notebook', '--execute', '--inplace',
                            '--ExecutePreprocessor.timeout=1200', str(p)], cwd=p.parent, capture_output=True, text=True)
        if r.returncode:
            if saved: strip_live(p, saved)   # put the unexecuted cells' source back
            failed.append(p.name); print(r.stderr[-3000:]); continue
        strip_live(p, saved)
    subprocess.run([BIN/'nbdev_clean'], cwd=ROOT, check=True)
    subprocess.run([BIN/'nbdev_export'], cwd=ROOT, check=True)
    if failed: sys.exit(f"failed: {', '.join(failed)}")

if __name__ == '__main__': main(sys.argv[1:])
