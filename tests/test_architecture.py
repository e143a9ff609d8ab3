"""The package's shape: imports go from later chapters to earlier ones only, and no module outside the recipe
chapters and the registries switches on a modality."""
import ast, json, re
from pathlib import Path
from conftest import ROOT

PKG = ROOT/'audio_lm'

def chapter_order()->dict:
    "module -> (position in reading order, notebook), from the `default_exp` of each chapter in nbs/."
    order = {}
    for i, nb in enumerate(sorted((ROOT/'nbs').glob('*.ipynb'))):
        for c in json.loads(nb.read_text())['cells']:
            m = re.search(r'#\|\s*default_exp\s+(\S+)', ''.join(c['source']))
            if m: order[m.group(1)] = (i, nb.name); break
    return order

def imported(path:Path)->set:
    "The audio_lm modules that `path` imports: at the top, inside functions, or named in an 'audio_lm.x:fn' string."
    out = set()
    for n in ast.walk(ast.parse(path.read_text())):
        if isinstance(n, ast.ImportFrom):
            if n.level: out |= {n.module.split('.')[0]} if n.module else {a.name for a in n.names}
            elif n.module == 'audio_lm': out |= {a.name for a in n.names}
            elif n.module and n.module.startswith('audio_lm.'): out.add(n.module.split('.')[1])
        elif isinstance(n, ast.Import):
            out |= {a.name.split('.')[1] for a in n.names if a.name.startswith('audio_lm.')}
        elif isinstance(n, ast.Constant) and isinstance(n.value, str):
            m = re.fullmatch(r'audio_lm\.(\w+)(:\w+)?', n.value)
            if m: out.add(m.group(1))
    return out

def graph()->dict:
    mods = {p.stem for p in PKG.glob('*.py') if not p.stem.startswith('_')}
    return {m: (imported(PKG/f'{m}.py') & mods) - {m} for m in mods}

def test_every_module_is_a_chapter():
    order = chapter_order()
    assert set(graph()) <= set(order), f"modules without a chapter: {set(graph()) - set(order)}"

def test_imports_go_to_earlier_chapters_only():
    order, bad = chapter_order(), []
    for m, deps in graph().items():
        bad += [f"{m} ({order[m][1]}) imports {d} ({order[d][1]})" for d in deps if order[d][0] >= order[m][0]]
    assert not bad, "imports of later chapters:\n" + '\n'.join(sorted(bad))

def test_no_import_cycle():
    g, seen, stack = graph(), set(), []
    def visit(m):
        if m in stack: raise AssertionError(f"import cycle: {' -> '.join(stack[stack.index(m):] + [m])}")
        if m in seen: return
        stack.append(m)
        for d in sorted(g[m]): visit(d)
        stack.pop(); seen.add(m)
    for m in sorted(g): visit(m)

def test_imported_finds_lazy_and_string_imports(tmp_path):
    "The checker itself: imports inside functions and 'module:builder' strings count."
    f = tmp_path/'m.py'
    f.write_text("def f():\n    from audio_lm.speak import x\n    import audio_lm.listen\nR = {'a': 'audio_lm.run:load_base'}\nfrom .train import fit\n")
    assert imported(f) == {'speak', 'listen', 'run', 'train'}

RECIPE_CHAPTERS = {'bases', 'modality', 'listen', 'speak', 'audio_language', 'run'}   # the registries and the three recipes
NOT_MODALITIES = {'cli'}   # its table's keys are command names ('speak', 'train'), not modalities
_M = r"'(?:listen|speak|audio-language)'"
SWITCHES = [re.compile(p) for p in (rf"(?:==|!=)\s*{_M}", rf"{_M}\s*(?:==|!=)", rf"\bin\s*\(\s*{_M}", rf"^\s*\(?{_M}\s*(?:,\s*\w+\))?\s*:",
                                    rf"[{{,]\s*{_M}\s*:", r"\bmodality\s*(?:==|!=|in\b)", r"(?<!RECIPES)\[\s*\w*\.?modality\s*\]")]

def modality_switches(text:str)->list:
    return [l.strip() for l in text.splitlines() if any(p.search(l) for p in SWITCHES)]

def test_modality_switches_only_in_recipes():
    found = {p.name: s for p in sorted(PKG.glob('*.py')) if p.stem not in RECIPE_CHAPTERS | NOT_MODALITIES and not p.stem.startswith('_')
             and (s := modality_switches(p.read_text()))}
    assert not found, f"modality switches outside the recipe chapters: {found}"

def test_the_switch_finder_finds_switches():
    for line in ["if spec.modality == 'listen':", "EXPORTERS = {'audio-language': f, 'listen': g}", "if modality in ('listen', 'x'):",
                 "EXPORT_NAMES[spec.modality]", "kind = 'a' if m != 'speak' else 'b'", " ('speak', True): '''x"]:
        assert modality_switches(line), line
    assert not modality_switches("labels:str='audio',  # the label mode") and not modality_switches("x = {'type': 'audio'}")
