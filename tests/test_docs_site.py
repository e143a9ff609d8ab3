"""The docs site (`make docs` into _docs/), served over HTTP and opened in a real headless Chromium.

Run by `make docs-test` (AUDIO_LM_DOCS_TEST=1). Chromium is driven over the DevTools protocol on a pipe
(`--remote-debugging-pipe`), so the tests type into the search box, click links and see every request the
pages make, with nothing but the standard library.
"""
import ast, html, json, os, re, shutil, subprocess, sys, tempfile, threading, time, importlib.util
from functools import partial
from http.server import ThreadingHTTPServer, SimpleHTTPRequestHandler
from pathlib import Path
from urllib.parse import urlsplit, unquote
import pytest, yaml
from conftest import ROOT

DOCS = ROOT/'_docs'
CHROME_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
                '--disable-component-update', '--disable-sync', '--no-first-run']

pytestmark = pytest.mark.skipif(not os.environ.get('AUDIO_LM_DOCS_TEST'),
                                reason='opens the built docs site in Chromium: run `make docs-test`')

class Chromium:
    "Headless Chromium driven over the DevTools protocol on a pipe: no websocket, no extra package."
    def __init__(self, flags=CHROME_FLAGS):
        chrome = shutil.which('chromium') or shutil.which('chromium-browser') or shutil.which('google-chrome')
        assert chrome, "chromium is not installed: run make install (it installs Debian's chromium)"
        self.prof = tempfile.mkdtemp()
        r_in, w_in = os.pipe(); r_out, w_out = os.pipe()   # Chromium reads commands on fd 3, answers on fd 4
        def fds(): os.dup2(r_in, 3); os.dup2(w_out, 4)
        self.proc = subprocess.Popen([chrome, *flags, f'--user-data-dir={self.prof}', '--remote-debugging-pipe', 'about:blank'],
                                     pass_fds=(3, 4), preexec_fn=fds, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(r_in); os.close(w_out)
        self.w, self.r = os.fdopen(w_in, 'wb', buffering=0), os.fdopen(r_out, 'rb', buffering=0)
        self.buf, self.n, self.events = b'', 0, []
        tid = next(t['targetId'] for t in self.send('Target.getTargets')['targetInfos'] if t['type'] == 'page')
        self.sid = self.send('Target.attachToTarget', targetId=tid, flatten=True)['sessionId']
        self.page('Page.enable'); self.page('Network.enable')

    def _message(self):
        while b'\0' not in self.buf:
            chunk = self.r.read(1 << 16)
            if not chunk: raise RuntimeError('chromium closed the DevTools pipe')
            self.buf += chunk
        msg, self.buf = self.buf.split(b'\0', 1)
        return json.loads(msg)

    def send(self, method, session=None, **params):
        self.n += 1
        self.w.write(json.dumps({'id': self.n, 'method': method, 'params': params,
                                 **({'sessionId': session} if session else {})}).encode() + b'\0')
        while True:
            msg = self._message()
            if msg.get('id') == self.n:
                if 'error' in msg: raise RuntimeError(f'{method}: {msg["error"]}')
                return msg['result']
            self.events.append(msg)

    def page(self, method, **params): return self.send(method, session=self.sid, **params)

    def js(self, expr):
        r = self.page('Runtime.evaluate', expression=expr, returnByValue=True, awaitPromise=True)
        if 'exceptionDetails' in r: raise RuntimeError(f'{expr}: {r["exceptionDetails"]}')
        return r['result'].get('value')

    def wait(self, expr, timeout=30):
        t0 = time.time()
        while time.time() - t0 < timeout:
            try:
                if v := self.js(expr): return v
            except RuntimeError: pass   # the page is navigating: its context is gone until the next one loads
            time.sleep(0.1)
        raise TimeoutError(f'waited {timeout} s for: {expr}')

    def goto(self, url):
        self.js('window.__left = true')
        self.page('Page.navigate', url=url)
        self.wait("!window.__left && document.readyState === 'complete'")

    def type(self, text):
        for ch in text:
            self.page('Input.dispatchKeyEvent', type='keyDown', key=ch, text=ch)
            self.page('Input.dispatchKeyEvent', type='keyUp', key=ch)

    def requests(self): return [e['params']['request']['url'] for e in self.events if e.get('method') == 'Network.requestWillBeSent']

    def close(self):
        try: self.send('Browser.close')
        except Exception: pass
        try: self.proc.wait(10)
        except subprocess.TimeoutExpired: self.proc.kill()
        shutil.rmtree(self.prof, ignore_errors=True)

@pytest.fixture(scope='module')
def site():
    if not (DOCS/'index.html').exists():
        subprocess.run([sys.executable, str(ROOT/'.ci'/'build_docs.py')], cwd=ROOT, check=True, capture_output=True)
    return DOCS

@pytest.fixture(scope='module')
def base(site):
    "The site served on localhost (mkdocs-material's search runs in a web worker, which file:// pages cannot start)."
    srv = ThreadingHTTPServer(('127.0.0.1', 0), partial(type('Quiet', (SimpleHTTPRequestHandler,), {'log_message': lambda *a: None}), directory=str(site)))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f'http://127.0.0.1:{srv.server_address[1]}/'
    srv.shutdown()

@pytest.fixture(scope='module')
def browser():
    b = Chromium()
    yield b
    b.close()

def pages(site): return sorted(p.relative_to(site).as_posix() for p in site.rglob('*.html') if p.name != '404.html')

def sym_page(name:str)->str:
    "Where the doclinks put `name`'s entry (`models.html#listeninglm`), from audio_lm/_modidx.py."
    ns = {}; exec((ROOT/'audio_lm'/'_modidx.py').read_text(), ns)
    hits = [loc for mod in ns['d']['syms'].values() for k, (loc, _) in mod.items() if k.endswith('.' + name)]
    assert hits, f'{name} is not in audio_lm/_modidx.py'
    return hits[0].lstrip('/')

def sidebar_sections()->list:
    y = yaml.safe_load((ROOT/'nbs'/'sidebar.yml').read_text())
    return [it['section'] for it in y['website']['sidebar']['contents'] if isinstance(it, dict) and 'section' in it]

PAGE_FACTS = """(() => {
  const q = s => [...document.querySelectorAll(s)];
  const h1 = document.querySelector('article h1');
  const hl = document.querySelector('.md-typeset .headerlink');
  const code = document.querySelector('.md-typeset pre > code');
  return {
    title: document.title, h1: h1 ? h1.textContent : null,
    subtitle: q('article .subtitle').map(e => e.textContent).join(' '),
    toc: q('.md-nav--secondary a.md-nav__link').length,
    highlighted: q('.md-typeset .highlight code span[class]').length,
    sections: q('.md-nav--primary .md-nav__item--section > .md-nav__link').map(e => e.textContent.trim()),
    text: document.querySelector('article').innerText,
    codes: q('.md-typeset .highlight code').map(e => e.textContent),
    headerlink_opacity: hl ? getComputedStyle(hl).opacity : '0',
    code_overflow: code ? getComputedStyle(code).overflowX : 'auto',
  };
})()"""

def test_every_page(site, base, browser):
    "Each page: a title and subtitle without raw markdown, a contents list, highlighted code, the sidebar's sections."
    sections, seen = sidebar_sections(), pages(site)
    assert {'index.html', 'tutorials/listening.html', sym_page('ListeningLM').split('#')[0]} <= set(seen)
    for p in seen:
        browser.goto(base + p)
        f = browser.js(PAGE_FACTS)
        assert f['h1'] and '`' not in f['h1'] and '`' not in f['title'] and '`' not in f['subtitle'], (p, f['title'], f['subtitle'])
        assert f['toc'] >= 1, f'{p} has no contents list'
        assert f['highlighted'] >= 3, f'{p} has no highlighted code'
        assert all(s in f['sections'] for s in sections), (p, f['sections'], sections)
        assert 'VAR_POSITIONAL' not in f['text'] and 'VAR_KEYWORD' not in f['text'], p
        assert f['headerlink_opacity'] == '0', f'{p}: the heading permalinks show without hovering'
        assert f['code_overflow'] in ('auto', 'scroll'), f'{p}: long code lines are clipped'
        for c in f['codes']:
            assert not re.search(r'\[`?[\w.]+`?\]\((?:https?:|/|\.\./|[\w/]+\.html)', c), f'{p}: a markdown link inside code: {c[:200]}'
            assert not re.search(r'\(\s*\n\s*\n\s*\)', c), f'{p}: an empty multi-line signature: {c[:200]}'

def test_no_network(site, base, browser):
    "Nothing loads from outside the site: no CDN fonts, scripts or styles (after every page has been opened above)."
    for p in ['index.html', 'tutorials/listening.html']: browser.goto(base + p)
    outside = [u for u in browser.requests() if not u.startswith((base, 'data:', 'blob:', 'about:'))]
    assert not outside, outside

def test_search_finds_api_entry(base, browser):
    "Typing `ListeningLM` into the search box lists its API entry."
    browser.goto(base + 'index.html')
    browser.wait("document.querySelector('.md-search__input') !== null")
    browser.js("document.querySelector('.md-search__input').focus()")
    browser.type('ListeningLM')
    hrefs = browser.wait("(() => { const a = [...document.querySelectorAll('.md-search-result__item a')].map(a => a.href); return a.length ? a : null })()")
    want = sym_page('ListeningLM')
    assert any(urlsplit(h).path.lstrip('/') + '#' + urlsplit(h).fragment == want for h in hrefs), (want, hrefs)

def test_tutorial_symbol_link_lands_on_entry(base, browser):
    "A symbol link in tutorial 1 leads to that symbol's entry, within the site."
    browser.goto(base + 'tutorials/listening.html')
    href = browser.js("(() => { const a = [...document.querySelectorAll('article a')].find(a => a.textContent === 'ListeningLM'); return a && a.href })()")
    assert href and href.startswith(base), href
    assert urlsplit(href).path.lstrip('/') + '#' + urlsplit(href).fragment == sym_page('ListeningLM'), href
    browser.js("[...document.querySelectorAll('article a')].find(a => a.textContent === 'ListeningLM').click()")
    browser.wait(f"location.href === {json.dumps(href)} && document.readyState === 'complete'")
    entry = browser.js("""(() => { const h = document.getElementById(decodeURIComponent(location.hash.slice(1)));
        if (!h) return null; let n = h.nextElementSibling; while (n && !n.querySelector('code')) n = n.nextElementSibling;
        return {tag: h.tagName, sig: n ? n.textContent : ''} })()""")
    assert entry and entry['tag'] == 'H3' and entry['sig'].lstrip().startswith('ListeningLM('), entry

def _ids(page:Path)->set: return set(re.findall(r'\sid="([^"]+)"', page.read_text(encoding='utf-8')))

def test_links_stay_in_the_site(site):
    "Every link inside the site resolves (file and anchor); the only links out are those the notebooks' prose makes."
    prose = ' '.join(p.read_text(encoding='utf-8') for p in (ROOT/'nbs').rglob('*.ipynb'))
    ids, bad, out = {}, [], set()
    for p in pages(site):
        s = (site/p).read_text(encoding='utf-8')
        assert 'audio-lm.github.io' not in s and 'github.com/audio-lm' not in s, p
        assert not re.search(r'<(?:script|link|img|audio|source)\b[^>]*\s(?:src|href)="(?:https?:)?//', s), f'{p} loads something from the network'
        for url in re.findall(r'<a\b[^>]*\shref="([^"]*)"', s):
            if re.match(r'[a-z]+:', url):
                if url.startswith('http'): out.add(url.replace('&amp;', '&'))
                continue
            path, _, anchor = url.partition('#')
            target = (site/p).parent/unquote(path.split('?')[0]) if path else site/p
            target = target.resolve()
            if target.is_dir(): target = target/'index.html'
            if not target.exists(): bad.append(f'{p}: {url}'); continue
            if anchor and target.suffix == '.html':
                if target not in ids: ids[target] = _ids(target)
                if unquote(anchor) not in ids[target]: bad.append(f'{p}: {url}')
    assert not bad, bad[:20]
    assert not [u for u in out if u not in prose], sorted(u for u in out if u not in prose)

def _load_build():
    spec = importlib.util.spec_from_file_location('build_docs', ROOT/'.ci'/'build_docs.py')
    m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)
    return m

def test_pages_show_no_test_only_code(site, base, browser):
    "Test statements are not shown: no code block on any page is only `test_eq`/`assert`/... calls (without output)."
    is_test = _load_build().is_test
    blocks = """[...document.querySelectorAll('article > .highlight')].map(e => {
        const n = e.nextElementSibling; return [e.textContent, !!(n && n.classList.contains('nb-output'))] })"""
    for p in pages(site):
        browser.goto(base + p)
        for code, has_output in browser.js(blocks):
            try: body = ast.parse(code).body
            except SyntaxError: continue
            # a test call whose own output is shown stays: it is the example (`test_eq(main([...]), 0)` and what it printed)
            assert has_output or not (body and all(map(is_test, body))), f'{p}: {code[:300]}'

def test_strip_tests():
    "The build's rule for test statements, on small cells."
    strip = _load_build().strip_tests
    assert strip("test_eq(f(1), 2)\nassert g()") is None
    assert strip("x = f(1)\ntest_eq(x, 2)\nx") == "x = f(1)\nx"
    assert strip("x = f(); test_eq(x, 2); y = g(x)") == "x = f(); y = g(x)"
    assert strip("for c in cs:\n    w = load(c)\n    test_eq(w.sr, 16000)\nw") == "for c in cs:\n    w = load(c)\nw"
    assert strip("!ls x\n# the count\ntest_eq(n, 2)\nn") == "!ls x\nn"
    # output printed by a test call itself keeps the cell as it ran
    assert strip("test_eq(main(['synth']), 0)\nn = 2", keep_if_stream=True) == "test_eq(main(['synth']), 0)\nn = 2"

def test_show_doc_entries(site):
    "show_doc entries: exceptions as classes with their bases, zero-argument methods as `m()`, signatures without links."
    sigs = []
    for p in pages(site):
        s = (site/p).read_text(encoding='utf-8')
        for m in re.finditer(r'<h3 id="([^"]+)"[^>]*>((?:(?!</h3>).)*)</h3>\s*<div class="[^"]*highlight"><pre><span></span><code>(.*?)</code>', s, re.S):
            assert not re.search(r'<(strong|em)>|\{#', m.group(2)), f'{p}: a mangled entry title: {m.group(2)}'
            sigs.append((p, m.group(1), html.unescape(re.sub(r'<[^>]+>', '', m.group(3)))))
    assert len(sigs) > 100, len(sigs)
    for p, anchor, sig in sigs:
        assert 'VAR_POSITIONAL' not in sig and '](' not in sig and not re.search(r'\(\s*\n\s*\n', sig), (p, anchor, sig)
    assert any(sig.startswith('class ') and '(' in sig for _, _, sig in sigs), 'no exception rendered as `class X(Base)`'
    assert any(re.match(r'[\w.]+\(\)( -> |$)', sig) for _, _, sig in sigs), 'no zero-argument method rendered as `m()`'
