"""Build the docs site into _docs/.

Both builds start from nbdev's own processing of the notebooks (`proc_nbs`: show_doc entries, directives,
hidden cells, doclinks) into _proc/, run in this process so that two fixes apply:

- `show_doc` renders with `DocsRenderer`: a clean signature (exceptions as `class X(Base)`, zero-argument
  methods as `m()`, no docments inside the code), the docments as a table whose links work, and an anchor
  equal to the doclinks' (`#audioinspector.prev`);
- test statements (`test_eq`, `test_fail`, `assert`, ...) are taken out of the shown code, and a cell left
  with nothing to show is dropped, so a chapter reads as prose, example, result.

Then, where Quarto is installed, Quarto renders them as `nbdev_docs` does. Elsewhere the processed notebooks
become Markdown pages (outputs included) under _proc/_mkdocs/ and mkdocs-material builds the site: full-text
search, a contents list per page, highlighted code, the sections of nbs/sidebar.yml as sections. Doclinks
are site-root paths (settings.ini has no doc_host); both builds make them relative to each page.
"""
import ast, base64, html, inspect, json, os, re, shutil, subprocess, sys, time
from pathlib import Path, PurePosixPath
import yaml
from nbdev.config import get_config

# ---------------------------------------------------------------- show_doc

from fastcore.docments import docments
import nbdev.showdoc
from nbdev.doclinks import NbdevLookup

_P = inspect.Parameter

def _anno(a)->str:
    "An annotation as written in the source where it is a string (`from __future__ import annotations`), else short."
    if a is _P.empty: return ''
    if isinstance(a, str): return a.strip('\'"')
    if isinstance(a, type): return a.__qualname__
    return re.sub(r'\b(?:__main__|typing)\.', '', inspect.formatannotation(a))

def _default(d)->str:
    if inspect.isfunction(d) or inspect.isclass(d) or inspect.isbuiltin(d): return d.__name__
    r = repr(d)
    return f'<{type(d).__name__}>' if ' at 0x' in r else r   # no memory addresses in the docs

def _sig(sym):
    for eval_str in (False, True):   # unevaluated first: annotations as the source spells them
        try: return inspect.signature(sym, eval_str=eval_str)
        except (ValueError, TypeError, NameError): pass

def _params(sig, drop_self)->list:
    "`name:anno=default` strings, with `/`, `*`, `*args` and `**kwargs` where Python puts them."
    ps, out, star = list(sig.parameters.values()), [], False
    if drop_self and ps and ps[0].name in ('self', 'cls'): ps = ps[1:]
    for i, p in enumerate(ps):
        if p.kind == _P.KEYWORD_ONLY and not star: out.append('*')
        if p.kind in (_P.KEYWORD_ONLY, _P.VAR_POSITIONAL): star = True
        s = {_P.VAR_POSITIONAL: '*', _P.VAR_KEYWORD: '**'}.get(p.kind, '') + p.name
        if p.annotation is not _P.empty: s += ':' + _anno(p.annotation)
        if p.default is not _P.empty: s += '=' + _default(p.default)
        out.append(s)
        if p.kind == _P.POSITIONAL_ONLY and (i + 1 == len(ps) or ps[i + 1].kind != _P.POSITIONAL_ONLY): out.append('/')
    return out

def _cell(s)->str: return str(s).replace('|', '\\|').replace('\n', '<br>')

def _code_cell(s:str)->str:
    "Code in a table cell: backticks (so a lone symbol gets its doclink) unless it holds a `|`."
    return f'`{s}`' if '|' not in s and '`' not in s else _html_code(s)

def _html_code(s:str)->str: return '<code>' + html.escape(s, quote=False).replace('|', '&#124;') + '</code>'

def md_escape(s:str)->str: return re.sub(r'([_*\\`])', r'\\\1', s)   # `__call__` is not bold

class DocsRenderer(nbdev.showdoc.BasicMarkdownRenderer):
    "`show_doc` for the docs site: clean signature, docstring, docments table, anchor as in the doclinks."
    def _signature(self)->str:
        sym, nm = self.sym, self.nm
        is_cls = inspect.isclass(sym)
        sig = _sig(sym)
        generic = sig is None or all(p.kind in (_P.VAR_POSITIONAL, _P.VAR_KEYWORD) for p in sig.parameters.values())
        if is_cls and (generic or issubclass(sym, BaseException) and '__init__' not in vars(sym)):
            bases = ', '.join(b.__name__ for b in sym.__bases__ if b is not object)
            return f'class {nm}({bases})' if bases else f'class {nm}'
        if sig is None: return nm
        ps = _params(sig, drop_self=not is_cls and '.' in nm)
        ret = '' if is_cls or sig.return_annotation is _P.empty else f' -> {_anno(sig.return_annotation)}'
        one = f'{nm}({", ".join(ps)}){ret}'
        if len(one) <= 88: return one
        return f'{nm}(\n' + ''.join(f'    {p},\n' for p in ps) + f'){ret}'

    def _table(self)->str:
        try: dm = docments(self.sym, full=True)
        except Exception: return ''
        dm = {k: v for k, v in dm.items() if k not in ('self', 'cls')}
        if not any(v.get('docment') for v in dm.values()): return ''
        rows = ['| | type | default | details |', '|---|---|---|---|']
        sig = _sig(self.sym)
        params = dict(sig.parameters) if sig else {}
        for k, v in dm.items():
            if k == 'return' or k not in params: continue
            p = params[k]
            star = {_P.VAR_POSITIONAL: '*', _P.VAR_KEYWORD: '**'}.get(p.kind, '')
            a, d = _anno(p.annotation), p.default
            rows.append(f'| <code>{html.escape(star + k, quote=False)}</code> | {_code_cell(a) if a else ""} | '
                        f'{"" if d is _P.empty else _html_code(_default(d))} | {_cell(v.get("docment") or "")} |')
        r = dm.get('return')
        if r and r.get('docment'):
            a = _anno(sig.return_annotation) if sig else ''
            rows.append(f'| **returns** | {_code_cell(a) if a else ""} | | {_cell(r["docment"])} |')
        return '\n'.join(rows)

    def _repr_markdown_(self):
        cfg = get_config()
        src = NbdevLookup().code(self.fn) if cfg.get('git_url') else None   # no repository, no source link
        out = ['---', '']
        if src: out += [f'[source]({src})', '']
        # `{#id}`: the doclinks' anchor, as Quarto/pandoc reads it (the mkdocs build makes the heading HTML)
        out += [f'{"#" * self.title_level} {md_escape(self.nm)} {{#{self.nm.lower()}}}', '', '```python', self._signature(), '```', '']
        if self.docs: out += [re.sub(r'^(\s*)(.+)', r'\1*\2*', self.docs, count=1), '']
        if t := self._table(): out += [t, '']
        return '\n'.join(out)

    def __repr__(self): return self._signature() + (f'\n"{self.docs}"' if self.docs else '')
    __str__ = __repr__

def use_docs_renderer(): nbdev.showdoc.BasicMarkdownRenderer = DocsRenderer

# ---------------------------------------------------------------- test statements out of the pages

from IPython.core.inputtransformer2 import TransformerManager

TEST_FUNCS = {'test_eq', 'test_ne', 'test_is', 'test_close', 'test_fail', 'test_eq_type', 'test_shuffled',
              'test_stdout', 'test_warns', 'test_fig_exists', 'test_sig', 'test', 'test_all_close'}
DIRECTIVE = re.compile(r'^\s*#\|\s*([\w-]+)\s*:?\s*(.*?)\s*$')

def is_test(st)->bool:
    "An `assert`, a call of a fastcore.test function, or a block holding only those."
    if isinstance(st, ast.Assert): return True
    if isinstance(st, ast.Expr) and isinstance(st.value, ast.Call):
        return isinstance(st.value.func, ast.Name) and st.value.func.id in TEST_FUNCS
    if isinstance(st, (ast.For, ast.With, ast.If, ast.While)):
        return all(map(is_test, st.body + getattr(st, 'orelse', [])))
    return False

def split_directives(src:str):
    lines = src.splitlines()
    n = 0
    while n < len(lines) and DIRECTIVE.match(lines[n]): n += 1
    return lines[:n], '\n'.join(lines[n:])

def _removable(body)->list:
    "Test statements in `body` and in the blocks of its statements, where their block keeps something else."
    out = []
    for st in body:
        if is_test(st): out.append(st); continue
        blocks = [getattr(st, f, []) for f in ('body', 'orelse', 'finalbody')] + [h.body for h in getattr(st, 'handlers', [])]
        for blk in blocks:
            if blk and not all(map(is_test, blk)): out += _removable(blk)
    return out

def strip_tests(code:str, keep_if_stream:bool=False):
    "`code` without its test statements; None when nothing but tests (and comments) is left."
    py = TransformerManager().transform_cell(code)   # IPython magics (`!cmd`) as Python
    try: body = ast.parse(py).body
    except SyntaxError: return code
    if body and all(map(is_test, body)): return None
    tests = _removable(body)
    if not tests: return code
    kept = [n for st in body for n in ast.walk(st) if isinstance(n, ast.stmt) and not any(n is t for t in tests)]
    if keep_if_stream and not any(isinstance(n, ast.Call) for st in kept if not isinstance(st, (ast.For, ast.While, ast.If, ast.With, ast.Try)) for n in ast.walk(st)):
        return code   # the printed output can only come from inside a test call: keep the cell as it ran
    lines, same = code.splitlines(), [a == b for a, b in zip(code.splitlines(), py.splitlines())]
    for st in sorted(tests, key=lambda s: (s.lineno, s.col_offset), reverse=True):
        a, b = st.lineno - 1, st.end_lineno - 1
        if not all(same[a:b + 1]) or any(l is None for l in lines[a:b + 1]): continue   # a line a magic rewrote
        head, tail = lines[a][:st.col_offset], re.sub(r'^\s*;\s*', '', lines[b][st.end_col_offset:])
        head = re.sub(r'\s*;\s*$', '', head)
        if not head.strip(): rest = tail if tail.strip() and not tail.lstrip().startswith('#') else ''
        elif tail.strip() and not tail.lstrip().startswith('#'): rest = head.rstrip() + (' ' if head.rstrip().endswith(':') else '; ') + tail.lstrip()
        else: rest = head.rstrip()
        lines[a:b + 1] = [rest if rest.strip() else None] + [None] * (b - a)
    # comment lines that introduced a removed test go with it
    for i in range(len(lines) - 1, -1, -1):
        if lines[i] is not None and lines[i].lstrip().startswith('#') and i + 1 < len(lines) and lines[i + 1] is None:
            lines[i] = None
    out = re.sub(r'\n{3,}', '\n\n', '\n'.join(l for l in lines if l is not None)).strip('\n')
    try: ast.parse(TransformerManager().transform_cell(out))
    except SyntaxError: return code   # never show code that would not run
    return out or None

def hide_tests(nb)->int:
    "Take test statements out of the shown code of `nb`'s cells; drop cells left empty. Returns lines removed."
    cells, removed = [], 0
    for c in nb['cells']:
        if c['cell_type'] == 'code':
            dirs, code = split_directives(''.join(c['source']))
            outs = [o for o in c.get('outputs', []) if o.get('output_type') != 'display_data' or set(o.get('data', {})) - {'text/plain', 'application/vnd.jupyter.widget-view+json'}]
            new = strip_tests(code, keep_if_stream=any(o['output_type'] == 'stream' for o in outs))
            if new is None and not outs: removed += len(code.splitlines()); continue
            if new is not None and new != code:
                removed += len(code.splitlines()) - len(new.splitlines())
                c['source'] = '\n'.join(dirs + [new])
        cells.append(c)
    nb['cells'] = cells
    return removed

# ---------------------------------------------------------------- nbdev's processing

def process(cfg)->Path:
    "nbdev's `proc_nbs` in this process (so `DocsRenderer` applies), then test statements out: _proc/."
    from nbdev.doclinks import _build_modidx
    from nbdev.serve import proc_nbs
    use_docs_renderer()
    _build_modidx()
    cache = cfg.config_path/'_proc'
    if cache.exists() and cache.stat().st_mtime < Path(__file__).stat().st_mtime: shutil.rmtree(cache)   # this build changed
    proc = Path(proc_nbs(cfg.nbs_path, n_workers=0))
    hidden = 0
    for f in sorted(proc.rglob('*.ipynb')):
        if any(p.startswith('_') for p in f.relative_to(proc).parts): continue
        nb = json.loads(f.read_text(encoding='utf-8'))
        nb.get('metadata', {}).pop('widgets', None)   # live widget state: needs a widget manager from a CDN
        hidden += hide_tests(nb)
        f.write_text(json.dumps(nb, indent=1, ensure_ascii=False), encoding='utf-8')
    if hidden: print(f'docs: {hidden} lines of test code left out of the pages')
    return proc

# ---------------------------------------------------------------- links

def front_matter(nb)->dict:
    "The YAML front matter nbdev put in the first raw cell."
    for c in nb['cells']:
        if c['cell_type'] == 'raw' and ''.join(c['source']).startswith('---'):
            return yaml.safe_load(''.join(c['source']).strip().strip('-')) or {}
    return {}

def page_path(rel:PurePosixPath, fm:dict)->PurePosixPath:
    "Where nbdev (and so Quarto and the doclinks) put a notebook's page: `01_corpus.ipynb` -> `corpus.html`."
    return rel.with_name(fm.get('output-file') or re.sub(r'^\d+[a-zA-Z0-9]*_', '', rel.name.lower())).with_suffix('.html')

def relpath(target:str, frm:PurePosixPath)->str:
    up = len(frm.parent.parts)
    return '../' * up + target

def entry_anchor(anchor:str, ids:set):
    "The anchor a doclink should use: its own entry, else its class's (`speechcodec.from_config` -> `speechcodec`), else None."
    while anchor:
        if anchor in ids: return anchor
        anchor = anchor.rpartition('.')[0]

def relink_html(site:Path):
    "Quarto build: make the doclinks' site-root paths (`/corpus.html#clip`) relative to each page."
    files = {p.relative_to(site).as_posix(): p for p in site.rglob('*.html')}
    ids = {k: set(re.findall(r'\sid="([^"]+)"', p.read_text(encoding='utf-8'))) for k, p in files.items()}
    def sub(m, rel):
        page, anchor = m.group(1), m.group(2)
        if page not in files: return m.group(0)
        a = entry_anchor(anchor, ids[page]) if anchor else None
        return f'href="{relpath(page, rel)}{"#" + a if a else ""}"'
    for k, p in files.items():
        s = p.read_text(encoding='utf-8')
        new = re.sub(r'href="/([^"#?]+\.html)(?:#([^"]*))?"', lambda m: sub(m, PurePosixPath(k)), s)
        if new != s: p.write_text(new, encoding='utf-8')

# ---------------------------------------------------------------- notebooks -> Markdown pages

def plain(md:str)->str:
    "Markdown title text as plain text (for the nav, <title> and search)."
    return re.sub(r'\[([^\]]*)\]\([^)]*\)', r'\1', md).replace('`', '').replace('*', '')

ANSI = re.compile(r'\x1b\[[0-9;]*[A-Za-z]')

def text_out(s:str)->str:
    "Terminal text as it would look: ANSI codes out, carriage-return progress lines collapsed."
    s = ANSI.sub('', s).replace('\r\n', '\n')
    return '\n'.join(l.rsplit('\r', 1)[-1] for l in s.split('\n'))

def fence(code:str, lang:str='python')->str:
    ticks = '`' * max(3, max((len(m) for m in re.findall(r'`{3,}', code)), default=0) + 1)
    return f'{ticks}{lang}\n{code}\n{ticks}'

def html_block(s:str, cls:str)->str:
    "Raw HTML that Markdown keeps as it is (`markdown=\"0\"`: nothing inside is read as Markdown)."
    return f'<div class="{cls}" markdown="0">\n{s.strip()}\n</div>'

class PageWriter:
    "One processed notebook as a Markdown page for mkdocs, its output images beside it."
    def __init__(self, docs:Path, pages:dict, entries:dict):
        self.docs, self.pages = docs, pages   # pages: notebook path -> page path (.html), relative to nbs/
        self.entries = entries                # page path -> the anchors of its show_doc entries

    def links(self, md:str, here:PurePosixPath)->str:
        "Doclinks (`/corpus.html#clip`) and links to notebooks (`01_corpus.ipynb`) as relative links to the pages' sources."
        by_html = {v.as_posix(): v for v in self.pages.values()}
        def to_md(page:PurePosixPath, anchor:str)->str: return relpath(page.with_suffix('.md').as_posix(), here) + anchor
        def sub(m):
            target, anchor = m.group(2), m.group(3) or ''
            if target.startswith('/') and target[1:] in by_html:   # a doclink
                page = by_html[target[1:]]
                if anchor and not (a := entry_anchor(anchor[1:], self.entries[page])):
                    return m.group(1)[1:-1]   # no entry to land on (a private name): the name, unlinked
                return f'{m.group(1)}({to_md(page, "#" + a if anchor else "")})'
            if target.endswith('.ipynb') and not re.match(r'\w+:', target):
                nb = PurePosixPath(os.path.normpath((here.parent/target).as_posix()))
                if nb in self.pages: return f'{m.group(1)}({to_md(self.pages[nb], anchor)})'
            return m.group(0)
        md = re.sub(r'\{target="_blank"[^}]*\}', '', md)
        return re.sub(r'(\[[^\]\n]*\])\(([^)\s#]+)(#[^)\s]*)?\)', sub, md)

    def outputs(self, c, here:PurePosixPath, n:int)->list:
        out = []
        for k, o in enumerate(c.get('outputs', [])):
            t = o['output_type']
            if t == 'stream': out.append(html_block(f'<pre>{html.escape(text_out("".join(o["text"])).rstrip())}</pre>', f'nb-output nb-{o["name"]}'))
            elif t == 'error': out.append(html_block(f'<pre>{html.escape(text_out(chr(10).join(o["traceback"])))}</pre>', 'nb-output nb-error'))
            elif t in ('execute_result', 'display_data'):
                d = o.get('data', {})
                if 'text/markdown' in d:
                    # an entry's heading as HTML with its id: Python-Markdown would read `__x__` inside `{#...}` as bold
                    md = re.sub(r'^(#+) (.*) \{#([^}\s]+)\}\s*$', lambda m: f'<h{len(m.group(1))} id="{html.escape(m.group(3))}" '
                                f'markdown="span">{m.group(2)}</h{len(m.group(1))}>', ''.join(d['text/markdown']).strip(), flags=re.M)
                    out.append(self.links(md, here))
                elif 'text/html' in d: out.append(html_block(''.join(d['text/html']), 'nb-output nb-html'))
                elif img := next((m for m in ('image/png', 'image/jpeg', 'image/svg+xml') if m in d), None):
                    name = f'{here.stem}_files/output_{n}_{k}.{img.split("/")[1].split("+")[0]}'
                    dest = self.docs/here.parent/name
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    data = ''.join(d[img])
                    dest.write_bytes(data.encode() if img == 'image/svg+xml' else base64.b64decode(data))
                    alt = plain(''.join(d.get('text/plain', 'output'))).strip("<>") or 'output'
                    out.append(f'<p class="nb-output nb-image" markdown="0"><img src="{name}" alt="{html.escape(alt)}"></p>')
                elif 'application/vnd.jupyter.widget-view+json' in d: continue   # a live widget: nothing to show on a static page
                elif 'text/plain' in d: out.append(html_block(f'<pre>{html.escape(text_out("".join(d["text/plain"])))}</pre>', 'nb-output'))
        return out

    def write(self, nb_rel:PurePosixPath, nb:dict)->dict:
        fm = front_matter(nb)
        here = self.pages[nb_rel].with_suffix('.md')
        title, desc = fm.get('title', nb_rel.stem), fm.get('description', '')
        parts = [f'# {title}']
        if desc: parts.append(f'{desc}\n{{ .subtitle }}')
        for n, c in enumerate(nb['cells']):
            src = ''.join(c['source'])
            if c['cell_type'] == 'markdown':
                if src.strip().startswith(':::'): continue   # Quarto fenced divs
                parts.append(self.links(src, here))
            elif c['cell_type'] == 'code':
                dirs, code = split_directives(src)
                opts = {m.group(1): m.group(2).lower() for m in map(DIRECTIVE.match, dirs)}
                if opts.get('include') == 'false': continue
                if opts.get('echo') != 'false' and code.strip():
                    parts.append(fence(code, 'python'))
                if opts.get('output') != 'false': parts += self.outputs(c, here, n)
        meta = yaml.safe_dump({'title': plain(title), 'description': plain(desc)}, allow_unicode=True, width=1000)
        dest = self.docs/here
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(f'---\n{meta}---\n\n' + '\n\n'.join(p.strip('\n') for p in parts if p.strip()) + '\n', encoding='utf-8')
        return {'md': here.as_posix(), 'title': plain(title)}

def nav(items, md:dict)->list:
    "nbs/sidebar.yml's `contents` as an mkdocs nav: sections stay sections."
    out = []
    def page(path):
        if PurePosixPath(path) not in md: sys.exit(f'nbs/sidebar.yml lists {path}, which is not a notebook in nbs/: fix the sidebar')
        return md[PurePosixPath(path)]
    for it in items:
        if isinstance(it, str):
            p = page(it)
            out.append({'Home' if p['md'] == 'index.md' else p['title']: p['md']})
        elif isinstance(it, dict) and 'contents' in it:
            out.append({it.get('section') or it.get('text') or 'Section': nav(it['contents'], md)})
        elif isinstance(it, dict) and 'href' in it:
            p = page(it['href'])
            out.append({it.get('text') or p['title']: p['md']})
    return out

EXTRA_CSS = """
.md-typeset .subtitle{font-size:1.15em;color:var(--md-default-fg-color--light);margin-top:-.6em}
.md-typeset .nb-output{margin:-.4em 0 1em;overflow-x:auto}
.md-typeset .nb-output > pre{margin:0;padding:.6em .9em;border-left:3px solid var(--md-accent-fg-color--transparent, #ffd8c2);
  background:none;font-size:.8em;line-height:1.4;white-space:pre;overflow-x:auto}
.md-typeset .nb-stderr > pre{border-left-color:#f4b183;color:var(--md-default-fg-color--light)}
.md-typeset .nb-image img{max-width:100%}
.md-typeset .nb-html table{font-size:.8em}
.md-typeset h3[id]{font-family:var(--md-code-font-family);font-size:1.05em}
/* show_doc parameter tables: names and types on one line, defaults broken at spaces only, room for the details */
.md-typeset table:has(thead th:first-child:empty) td code{word-break:normal}
.md-typeset table:has(thead th:first-child:empty) td:nth-child(-n+2) code{white-space:nowrap}
.md-typeset table:has(thead th:first-child:empty) td:last-child{min-width:16em}
"""

def build_mkdocs(cfg, proc:Path, site:Path):
    "The processed notebooks as Markdown pages, then mkdocs-material into `site`."
    work = proc/'_mkdocs'
    if work.exists(): shutil.rmtree(work)
    docs = work/'docs'
    docs.mkdir(parents=True)
    nbs = sorted(PurePosixPath(f.relative_to(proc).as_posix()) for f in proc.rglob('*.ipynb')
                 if not any(p.startswith(('_', '.')) for p in f.relative_to(proc).parts))
    loaded = {r: json.loads((proc/r).read_text(encoding='utf-8')) for r in nbs}
    pages = {r: page_path(r, front_matter(loaded[r])) for r in nbs}
    entries = {pages[r]: {a for c in loaded[r]['cells'] for o in c.get('outputs', [])
                          for a in re.findall(r'^#+ .*\{#([^}\s]+)\}\s*$', ''.join(o.get('data', {}).get('text/markdown', '')), re.M)}
               for r in nbs}
    w = PageWriter(docs, pages, entries)
    md = {r: w.write(r, loaded[r]) for r in nbs}
    sidebar = yaml.safe_load((cfg.nbs_path/'sidebar.yml').read_text(encoding='utf-8'))
    (docs/'stylesheets').mkdir()
    (docs/'stylesheets'/'extra.css').write_text(EXTRA_CSS, encoding='utf-8')
    conf = {
        'site_name': cfg.title, 'site_description': cfg.get('description', ''),
        'docs_dir': 'docs', 'site_dir': str(site.resolve()), 'use_directory_urls': False,
        'nav': nav(sidebar['website']['sidebar']['contents'], md),
        'theme': {'name': 'material', 'font': False, 'language': 'en',
                  'features': ['navigation.sections', 'navigation.top', 'navigation.footer', 'toc.follow',
                               'search.suggest', 'search.highlight', 'search.share', 'content.code.copy'],
                  'palette': [{'media': '(prefers-color-scheme: light)', 'scheme': 'default', 'primary': 'indigo',
                               'toggle': {'icon': 'material/brightness-7', 'name': 'Dark mode'}},
                              {'media': '(prefers-color-scheme: dark)', 'scheme': 'slate', 'primary': 'indigo',
                               'toggle': {'icon': 'material/brightness-4', 'name': 'Light mode'}}]},
        'extra': {'generator': False},
        'extra_css': ['stylesheets/extra.css'],
        # '.' separates words too: `embed` finds `ListeningLM.embed`
        'plugins': [{'search': {'separator': r'[\s\-.]+'}}],
        'markdown_extensions': ['tables', 'attr_list', 'md_in_html', 'admonition', 'pymdownx.details',
                                {'toc': {'permalink': True, 'toc_depth': 3}},
                                {'pymdownx.highlight': {'use_pygments': True}}, 'pymdownx.superfences', 'pymdownx.inlinehilite'],
        # with --strict: a notebook missing from nbs/sidebar.yml, a broken link or anchor fails the build
        'validation': {'omitted_files': 'warn', 'absolute_links': 'warn', 'unrecognized_links': 'warn', 'anchors': 'warn'},
    }
    (work/'mkdocs.yml').write_text(yaml.safe_dump(conf, sort_keys=False, allow_unicode=True), encoding='utf-8')
    if site.exists(): shutil.rmtree(site)
    # --strict: a broken link or anchor fails the build (-q would hide the warnings that --strict counts)
    r = subprocess.run([sys.executable, '-m', 'mkdocs', 'build', '--strict', '-f', str(work/'mkdocs.yml')],
                       cwd=work, capture_output=True, text=True, env={**os.environ, 'NO_MKDOCS_2_WARNING': '1'})
    if r.returncode: sys.exit(f'mkdocs build failed:\n' + '\n'.join(l for l in (r.stdout + r.stderr).splitlines() if not l.startswith('INFO')))
    return len(md)

# ---------------------------------------------------------------- main

def build_quarto(cfg, proc:Path):
    """`nbdev_docs` after the processing done here: Quarto renders _proc/ into _docs/, then relative doclinks.
    Unlike `nbdev_docs` it leaves README.md alone (written by hand here, not rendered from index.ipynb)."""
    from nbdev.quarto import _sprun
    _sprun(f'cd "{proc}" && quarto render --no-cache')
    shutil.rmtree(cfg.doc_path, ignore_errors=True)
    shutil.move(proc/cfg.doc_path.name, cfg.config_path)
    relink_html(cfg.doc_path)

def main():
    t0 = time.time()
    cfg = get_config()
    site = Path(cfg.doc_path)
    quarto = shutil.which('quarto') and not os.environ.get('AUDIO_LM_DOCS_NO_QUARTO')
    if quarto:   # as nbdev_docs does before processing: _quarto.yml and nbdev.yml from settings.ini, the sidebar
        from nbdev.quarto import refresh_quarto_yml, nbdev_sidebar
        refresh_quarto_yml(); nbdev_sidebar.__wrapped__(path=cfg.nbs_path)
    proc = process(cfg)
    if quarto: build_quarto(cfg, proc); how = 'Quarto'
    else:
        n = build_mkdocs(cfg, proc, site); how = f'mkdocs-material, {n} pages'
    print(f'docs: {site}/index.html ({how}) in {time.time() - t0:.0f} s')

if __name__ == '__main__': main()
