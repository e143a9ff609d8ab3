"The same tiny training under torchrun with 2 CPU processes (gloo) and in one process, at the same global batch."
import os, shutil, subprocess, sys
from pathlib import Path
import torch
from safetensors.torch import load_file

HERE = Path(__file__).parent

def test_torchrun_two_processes_matches_one(tmp_path):
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'PYTHONPATH': str(HERE.parent)}
    one = subprocess.run([sys.executable, str(HERE/'dist_train_script.py'), str(tmp_path/'one'), '4'],
                         capture_output=True, text=True, env=env, timeout=300)
    assert one.returncode == 0, one.stderr[-3000:]
    torchrun = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', '2', '--master_port', '29517']
    two = subprocess.run([*torchrun, str(HERE/'dist_train_script.py'), str(tmp_path/'two'), '2'],
                         capture_output=True, text=True, env=env, timeout=300)
    assert two.returncode == 0, two.stderr[-3000:]
    a, b = load_file(tmp_path/'one'/'weights.safetensors'), load_file(tmp_path/'two'/'weights.safetensors')
    assert a.keys() == b.keys() and len(a) > 5
    assert 'world_size 1' in one.stdout and 'world_size 2' in two.stdout
    for k in a: torch.testing.assert_close(a[k], b[k], atol=1e-5, rtol=1e-4)
    # and the runs really trained: a one-process run at micro-batch 2 (another global batch) ends elsewhere
    other = subprocess.run([sys.executable, str(HERE/'dist_train_script.py'), str(tmp_path/'other'), '2'],
                           capture_output=True, text=True, env=env, timeout=300)
    c = load_file(tmp_path/'other'/'weights.safetensors')
    assert max((a[k] - c[k]).abs().max().item() for k in a) > 1e-3
