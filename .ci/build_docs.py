"""Build the docs site into _docs/ without Quarto.

nbdev's own processing (`proc_nbs`: show_doc rendering, directives, hidden cells) writes the processed
notebooks to _proc/ exactly as for `nbdev_docs`; this script then renders each one to HTML with
nbconvert and wraps it in a page with the sidebar from nbs/sidebar.yml. Use `nbdev_docs` where Quarto
is installed.
"""
import html, json, os, re, shutil, sys
from pathlib import Path
import yaml, nbformat
from nbconvert import HTMLExporter
from nbdev.config import get_config
from nbdev.serve import proc_nbs
from nbdev.doclinks import _build_modidx

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;display:flex;color:#222;line-height:1.5}
#quarto-sidebar{width:250px;min-height:100vh;background:#f7f7f9;border-right:1px solid #ddd;padding:1rem;box-sizing:border-box;flex-shrink:0}
#quarto-sidebar a{display:block;color:#2a6ebb;text-decoration:none;padding:.2rem 0}
#quarto-sidebar a.active{font-weight:bold;color:#111}
#quarto-sidebar .site-title{font-size:1.3rem;font-weight:bold;margin-bottom:1rem}
main{padding:1.5rem 2.5rem;max-width:980px;min-width:0}
pre{background:#f6f8fa;padding:.6rem;overflow-x:auto;border-radius:4px}
.jp-OutputArea pre, .output pre{border-left:2px solid lightsalmon;background:none}
img{max-width:100%} table{border-collapse:collapse} td,th{border:1px solid #ddd;padding:.2rem .5rem}
.description{font-style:italic;font-size:125%;opacity:.7}
"""

def sidebar(nbs:Path)->list:
    "Notebook paths in the order of nbs/sidebar.yml."
    y = yaml.safe_load((nbs/'sidebar.yml').read_text())
    out = []
    def walk(items):
        for it in items:
            if isinstance(it, str): out.append(it)
            elif isinstance(it, dict):
                if 'contents' in it: walk(it['contents'])
                elif 'href' in it: out.append(it['href'])
    walk(y['website']['sidebar']['contents'])
    return out

def front_matter(nb)->dict:
    "The YAML front matter nbdev put in the first raw cell."
    for c in nb.cells:
        if c.cell_type == 'raw' and c.source.startswith('---'):
            return yaml.safe_load(c.source.strip().strip('-')) or {}
    return {}

DIRECTIVE = re.compile(r'^\s*#\|\s*([\w-]+)\s*:\s*(.*?)\s*$')

def apply_cell_options(nb):
    "Do what Quarto does with `#| echo/include/output` cell options, and drop the `#|` lines from shown code."
    cells = []
    for c in nb.cells:
        if c.cell_type == 'raw': continue
        if c.cell_type == 'code':
            lines, opts = c.source.splitlines(), {}
            while lines and DIRECTIVE.match(lines[0]):
                k, v = DIRECTIVE.match(lines.pop(0)).groups(); opts[k] = v.lower()
            if opts.get('include') == 'false': continue
            c.source = '\n'.join(lines)
            tags = set(c.metadata.get('tags', []))
            if opts.get('echo') == 'false' or not c.source.strip(): tags.add('remove_input')
            if opts.get('output') == 'false': tags.add('remove_output')
            c.metadata['tags'] = sorted(tags)
            if not c.get('outputs') and 'remove_input' in tags: continue
        cells.append(c)
    nb.cells = cells
    return nb

def inline_code(s:str)->str: return re.sub(r'`([^`]+)`', r'<code>\1</code>', html.escape(s))

def page(title, desc, body, nav, site, up=''):
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)} – {html.escape(site)}</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{CSS}</style></head>'
            f'<body><nav id="quarto-sidebar" class="sidebar"><div class="site-title"><a href="{up}index.html">{html.escape(site)}</a></div>{nav}</nav>'
            f'<main id="quarto-document-content"><h1 class="title">{inline_code(title)}</h1>'
            f'{f"<p class=description>{html.escape(desc)}</p>" if desc else ""}{body}</main></body></html>\n')

def main():
    cfg = get_config()
    nbs, out = Path(cfg.nbs_path), Path(cfg.doc_path)
    _build_modidx()
    proc = Path(proc_nbs(nbs, n_workers=int(os.environ.get('DOCS_WORKERS', '2'))))
    order = sidebar(nbs)
    pages, titles = [], {}
    for rel in order:
        nb = nbformat.read(proc/rel, as_version=4)
        fm = front_matter(nb)
        titles[rel] = fm.get('title', Path(rel).stem)
        pages.append((rel, nb, fm))
    if out.exists(): shutil.rmtree(out)
    out.mkdir(parents=True)
    from traitlets.config import Config
    c = Config(); c.TagRemovePreprocessor.enabled = True
    c.TagRemovePreprocessor.remove_input_tags = {'remove_input'}; c.TagRemovePreprocessor.remove_all_outputs_tags = {'remove_output'}
    exp = HTMLExporter(config=c, template_name='basic', exclude_input_prompt=True, exclude_output_prompt=True)
    for rel, nb, fm in pages:
        href = lambda r: str(Path(r).with_suffix('.html'))
        up = '../' * (len(Path(rel).parts) - 1)   # pages in subfolders (tutorials/) link back up
        nav = ''.join(f'<a class="sidebar-item{" active" if r == rel else ""}" href="{up}{href(r)}">{inline_code(titles[r])}</a>' for r in order)
        body, _ = exp.from_notebook_node(apply_cell_options(nb))
        body = re.sub(r'\{target="_blank"[^}]*\}', '', body)
        body = re.sub(r'href="([\w./-]+)\.ipynb(#[^"]*)?"', lambda m: f'href="{m.group(1)}.html{m.group(2) or ""}"', body)
        dest = out/href(rel); dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(page(titles[rel], fm.get('description', ''), body, nav, cfg.title, up), encoding='utf-8')
    (out/'sitemap.json').write_text(json.dumps({r: titles[r] for r in order}, indent=1))
    print(f"docs: {len(pages)} pages in {out}/ (index.html)")

if __name__ == '__main__': main()
