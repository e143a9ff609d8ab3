"`audio-lm corpus synth` as a user runs it."
import csv
from pathlib import Path

def test_corpus_synth(cli, tmp_path):
    r = cli('corpus', 'synth', tmp_path/'c', '--n', '5', '--kind', 'digits', '--seed', '3')
    assert r.returncode == 0, r.stderr
    assert 'wrote 5 clips' in r.stdout and 'train' in r.stdout
    assert 'espeak-ng' not in r.stderr and '\r' not in r.stderr, r.stderr   # stderr is a pipe here: no progress bar in it
    rows = list(csv.DictReader(open(tmp_path/'c'/'metadata.csv')))
    assert len(rows) == 5
    for row in rows:
        assert (tmp_path/'c'/row['file']).exists()
        assert (tmp_path/'c'/row['file']).with_suffix('.txt').read_text().strip() == row['transcript']

def test_corpus_synth_user_error_is_one_line_exit_2(cli, tmp_path):
    r = cli('corpus', 'synth', tmp_path/'c', '--n', '-2')
    assert r.returncode == 2
    assert r.stderr.strip() == 'audio-lm: error: synth_corpus needs n >= 0 clips, got -2.'
    assert not (tmp_path/'c').exists()

def test_no_command_prints_help_exit_2(cli):
    r = cli()
    assert r.returncode == 2 and 'usage: audio-lm' in r.stdout
