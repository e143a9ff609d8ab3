"The docs site opens in a real headless Chromium: title, sidebar and a rendered show_doc entry."
import shutil, subprocess, sys, tempfile
from pathlib import Path
import pytest
from conftest import ROOT

DOCS = ROOT/'_docs'
CHROME_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
                '--disable-component-update', '--disable-sync', '--no-first-run']

@pytest.fixture(scope='module')
def site():
    if not (DOCS/'index.html').exists():
        subprocess.run([sys.executable, str(ROOT/'.ci'/'build_docs.py')], cwd=ROOT, check=True, capture_output=True)
    return DOCS

def dump_dom(url:str)->str:
    chrome = shutil.which('chromium') or shutil.which('chromium-browser') or shutil.which('google-chrome')
    assert chrome, "chromium is not installed: run make install (it installs Debian's chromium)"
    with tempfile.TemporaryDirectory() as prof:
        r = subprocess.run([chrome, *CHROME_FLAGS, f'--user-data-dir={prof}', '--dump-dom', url],
                           capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout

def test_index_page(site):
    dom = dump_dom((site/'index.html').as_uri())
    assert '<title>audio_lm' in dom
    assert 'id="quarto-sidebar"' in dom
    for page in ['00_audio.html', '01_corpus.html', '11_cli.html']: assert f'href="{page}"' in dom

def test_api_page_has_show_doc(site):
    dom = dump_dom((site/'00_audio.html').as_uri())
    assert '<title>Audio in and out' in dom
    assert 'id="load_audio"' in dom, "the show_doc entry for load_audio is missing"
    i = dom.index('id="load_audio"')
    assert 'target_sr' in dom[i:i+3000], "load_audio's signature is not rendered"
    assert 'class="sidebar-item active"' in dom

def test_tutorial_page_links_back_up(site):
    "Pages in nbs/tutorials/ render, and their sidebar links reach the chapters one folder up."
    page = site/'tutorials'/'03_document.html'
    assert page.exists(), "the tutorials are missing from the docs site (nbs/sidebar.yml)"
    dom = dump_dom(page.as_uri())
    assert 'id="quarto-sidebar"' in dom and 'href="../00_audio.html"' in dom and 'href="../index.html"' in dom
    assert (site/'00_audio.html').exists()
