"`pip install .` gives `import audio_lm` and a working `audio-lm --help` in a new venv."
import os, subprocess, sys, sysconfig, venv
from pathlib import Path
from conftest import ROOT

def test_wheel_installs_into_fresh_venv(tmp_path):
    wheels = tmp_path/'wheels'
    r = subprocess.run([sys.executable, '-m', 'pip', 'wheel', '--no-deps', '--no-build-isolation', '-q', '-w', str(wheels), str(ROOT)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    whl, = wheels.glob('audio_lm-*.whl')
    env_dir = tmp_path/'venv'
    venv.create(env_dir, with_pip=True)
    py = env_dir/'bin'/'python'
    # the dependencies come from the project's own venv (a .pth file), the package itself only from the wheel
    site = subprocess.run([str(py), '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])'], capture_output=True, text=True).stdout.strip()
    Path(site, 'deps.pth').write_text(sysconfig.get_paths()['purelib'] + '\n')
    r = subprocess.run([str(py), '-m', 'pip', 'install', '-q', '--no-deps', '--no-index', str(whl)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    out = subprocess.run([str(py), '-c', 'import audio_lm, audio_lm.audio; print(audio_lm.__file__)'],
                         capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert str(env_dir) in out.stdout, f"audio_lm was imported from {out.stdout}, not from the installed wheel"
    h = subprocess.run([str(env_dir/'bin'/'audio-lm'), '--help'], capture_output=True, text=True, cwd=tmp_path)
    assert h.returncode == 0, h.stderr[-3000:]
    assert 'corpus' in h.stdout and 'usage: audio-lm' in h.stdout
