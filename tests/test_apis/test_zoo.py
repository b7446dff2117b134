"""Model zoo downloads against a real local HTTP server (and file:// mirrors)."""
import hashlib
import http.server
import os
import os.path as osp
import shutil
import subprocess
import sys
import threading

import numpy as np
import pytest
import torch
import yaml

from helpers import DEMO_CONFIG, REPO, committed_weights
from mmunsup3d.apis import download_checkpoint, init_lifter, lift_keypoints, resolve_model
from mmunsup3d.utils.checkpoint import UnsafeCheckpointError, safe_torch_load


def _entry():
    index = yaml.safe_load(open(osp.join(REPO, 'model-index.yml')))
    for rel in index['Import']:
        for entry in yaml.safe_load(open(osp.join(REPO, rel)))['Models']:
            if osp.isfile(committed_weights(entry)):
                return entry
    pytest.skip('no committed checkpoint')


def _all_entries():
    index = yaml.safe_load(open(osp.join(REPO, 'model-index.yml')))
    return [e for rel in index['Import'] for e in yaml.safe_load(open(osp.join(REPO, rel)))['Models']]


ENTRY = _entry()
NAME = ENTRY['Name']
SHA = ENTRY['Metadata']['sha256']
FILENAME = osp.basename(ENTRY['Weights'])
COMMITTED = committed_weights(ENTRY)


def _sha256(path):
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Static files, plus ``/truncated/<file>`` (short body) and ``/error/<file>`` (HTTP 500)."""

    def log_message(self, *args):  # keep test output quiet
        pass

    def do_GET(self):
        self.server.requests.append(self.path)
        if self.path.startswith('/error/'):
            self.send_error(500, 'Internal Server Error')
            return
        if self.path.startswith('/truncated/'):
            body = b'\x80\x02' + b'x' * 1000
            self.send_response(200)
            self.send_header('Content-Type', 'application/octet-stream')
            self.send_header('Content-Length', str(len(body) * 10))
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()
            self.close_connection = True
            return
        super().do_GET()


@pytest.fixture(scope='module')
def server(tmp_path_factory):
    """Serves ``good/`` (the committed checkpoint) and ``corrupt/`` (a tampered copy)."""
    root = tmp_path_factory.mktemp('www')
    (root / 'good').mkdir()
    (root / 'corrupt').mkdir()
    shutil.copy(COMMITTED, root / 'good' / FILENAME)
    data = bytearray(open(COMMITTED, 'rb').read())
    data[len(data) // 2] ^= 0xFF
    (root / 'corrupt' / FILENAME).write_bytes(bytes(data))

    def handler(*args, **kwargs):
        return _Handler(*args, directory=str(root), **kwargs)

    httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    httpd.requests = []
    httpd.root = root
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    httpd.base = f'http://127.0.0.1:{httpd.server_address[1]}'
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path):
    monkeypatch.delenv('MMUNSUP3D_ZOO_URL', raising=False)
    monkeypatch.setenv('MMUNSUP3D_CACHE_DIR', str(tmp_path / 'default_cache'))


def _leftovers(cache):
    return sorted(os.listdir(cache)) if osp.isdir(cache) else []


def test_resolve_model_committed_and_mirror(monkeypatch):
    info = resolve_model(NAME)
    assert info['sha256'] == SHA and info['filename'] == FILENAME
    assert osp.isfile(info['config'])
    assert info['url'] == 'file://' + osp.abspath(COMMITTED)
    monkeypatch.setenv('MMUNSUP3D_ZOO_URL', 'https://mirror.example/zoo/')
    assert resolve_model(NAME)['url'] == f'https://mirror.example/zoo/{FILENAME}'


def test_unknown_name_lists_known_names(tmp_path):
    with pytest.raises(KeyError, match=NAME):
        download_checkpoint('no_such_model', cache_dir=str(tmp_path))
    with pytest.raises(KeyError, match='Unknown model "no_such_model"'):
        init_lifter('no_such_model')


def test_good_download_then_cache_hit(server, monkeypatch, tmp_path):
    monkeypatch.setenv('MMUNSUP3D_ZOO_URL', server.base + '/good')
    cache = tmp_path / 'cache'
    before = len(server.requests)
    path = download_checkpoint(NAME, cache_dir=str(cache))
    assert path == str(cache / FILENAME) and _sha256(path) == SHA
    assert len(server.requests) == before + 1
    assert _leftovers(cache) == [FILENAME]
    # Second call: verified from the cache, no request.
    assert download_checkpoint(NAME, cache_dir=str(cache)) == path
    assert len(server.requests) == before + 1
    # A plain URL is checked against the hash prefix in its name.
    url_cache = tmp_path / 'url_cache'
    path2 = download_checkpoint(f'{server.base}/good/{FILENAME}', cache_dir=str(url_cache))
    assert _sha256(path2) == SHA


def test_tampered_cache_is_redownloaded(server, monkeypatch, tmp_path):
    monkeypatch.setenv('MMUNSUP3D_ZOO_URL', server.base + '/good')
    cache = tmp_path / 'cache'
    cache.mkdir()
    (cache / FILENAME).write_bytes(b'not a checkpoint')
    before = len(server.requests)
    path = download_checkpoint(NAME, cache_dir=str(cache))
    assert _sha256(path) == SHA and len(server.requests) == before + 1


def test_hash_mismatch_leaves_nothing(server, monkeypatch, tmp_path):
    monkeypatch.setenv('MMUNSUP3D_ZOO_URL', server.base + '/corrupt')
    cache = tmp_path / 'cache'
    with pytest.raises(RuntimeError, match=f'sha256 mismatch.*expected {SHA}, got [0-9a-f]{{64}}'):
        download_checkpoint(NAME, cache_dir=str(cache))
    assert _leftovers(cache) == []
    # Same for a plain URL (prefix check).
    with pytest.raises(RuntimeError, match='sha256 mismatch'):
        download_checkpoint(f'{server.base}/corrupt/{FILENAME}', cache_dir=str(cache))
    assert _leftovers(cache) == []


def test_truncated_transfer_leaves_nothing(server, monkeypatch, tmp_path):
    cache = tmp_path / 'cache'
    monkeypatch.setenv('MMUNSUP3D_ZOO_URL', server.base + '/truncated')
    with pytest.raises(RuntimeError, match='truncated|interrupted'):
        download_checkpoint(NAME, cache_dir=str(cache))
    assert _leftovers(cache) == []


def test_http_error_names_status(server, monkeypatch, tmp_path):
    cache = tmp_path / 'cache'
    monkeypatch.setenv('MMUNSUP3D_ZOO_URL', server.base + '/error')
    with pytest.raises(RuntimeError, match='HTTP 500'):
        download_checkpoint(NAME, cache_dir=str(cache))
    assert _leftovers(cache) == []
    with pytest.raises(RuntimeError, match='HTTP 404'):
        download_checkpoint(f'{server.base}/good/missing_20260101-deadbeef.pth',
                            cache_dir=str(cache))
    assert _leftovers(cache) == []


def test_unsupported_scheme_and_unverifiable_url(tmp_path):
    with pytest.raises(ValueError, match='Unsupported URL scheme "ftp"'):
        download_checkpoint(f'ftp://example.com/{FILENAME}', cache_dir=str(tmp_path))
    with pytest.raises(ValueError, match='-<first 8 hex of sha256>.pth'):
        download_checkpoint('http://127.0.0.1:9/model.pth', cache_dir=str(tmp_path))


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f'touch {self.marker}', )


def test_malicious_pickle_is_refused(server, tmp_path):
    marker = tmp_path / 'PWNED'
    evil = tmp_path / 'evil.pth'
    torch.save({'state_dict': {}, 'meta': _Payload(str(marker))}, str(evil))
    sha = _sha256(str(evil))
    name = f'evil_20261125-{sha[:8]}.pth'
    shutil.copy(evil, server.root / 'good' / name)
    url = f'{server.base}/good/{name}'
    cache = tmp_path / 'cache'
    path = download_checkpoint(url, cache_dir=str(cache))  # the hash is fine ...
    assert _sha256(path) == sha
    with pytest.raises(UnsafeCheckpointError):  # ... but the content is refused
        safe_torch_load(path)
    with pytest.raises(UnsafeCheckpointError):
        init_lifter(DEMO_CONFIG, url)
    assert not marker.exists()
    # Control: the payload is live, plain unpickling would have run it.
    control = tmp_path / 'CONTROL'
    torch.save({'meta': _Payload(str(control))}, str(tmp_path / 'control.pth'))
    torch.load(str(tmp_path / 'control.pth'), weights_only=False)
    assert control.exists()


def test_file_mirror_and_offline_init_lifter(monkeypatch, tmp_path):
    mirror = tmp_path / 'mirror'
    mirror.mkdir()
    shutil.copy(COMMITTED, mirror / FILENAME)
    monkeypatch.setenv('MMUNSUP3D_ZOO_URL', 'file://' + str(mirror))
    cache = tmp_path / 'default_cache'
    assert resolve_model(NAME)['url'] == f'file://{mirror}/{FILENAME}'
    model = init_lifter(NAME)  # config and weights from the zoo name, no network
    assert _leftovers(cache) == [FILENAME] and _sha256(str(cache / FILENAME)) == SHA
    ref = init_lifter(DEMO_CONFIG, COMMITTED)
    kpts = np.random.default_rng(0).uniform(200, 800, (8, 17, 2)).astype(np.float32)
    np.testing.assert_allclose(lift_keypoints(model, kpts), lift_keypoints(ref, kpts),
                               atol=1e-6)
    # The checkpoint argument accepts a zoo name too.
    model2 = init_lifter(DEMO_CONFIG, NAME)
    np.testing.assert_allclose(lift_keypoints(model2, kpts), lift_keypoints(ref, kpts),
                               atol=1e-6)


def test_cli_download_and_list(server, tmp_path):
    env = dict(os.environ, MMUNSUP3D_ZOO_URL=server.base + '/good')
    cache = tmp_path / 'cli_cache'
    proc = subprocess.run([sys.executable, '-m', 'mmunsup3d', 'download', NAME, '--cache-dir',
                           str(cache)], cwd=str(tmp_path), env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    path = proc.stdout.strip().splitlines()[-1]
    assert path == str(cache / FILENAME) and _sha256(path) == SHA
    empty = dict(env, MMUNSUP3D_CACHE_DIR=str(tmp_path / 'empty_cache'))
    proc = subprocess.run([sys.executable, '-m', 'mmunsup3d', 'list'], cwd=str(tmp_path),
                          env=empty, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and NAME in proc.stdout.split()
    # The table: name, alias, the metafile's N-MPJPE and "cached" for the verified download.
    row = next(line for line in proc.stdout.splitlines() if line.startswith(NAME))
    cells = row.replace(' (recommended)', '').split()
    metrics = ENTRY['Results'][0]['Metrics']
    alias = ENTRY['Alias'] if isinstance(ENTRY['Alias'], str) else ','.join(ENTRY['Alias'])
    assert cells[:4] == [NAME, alias, f"{metrics['N-MPJPE']:.1f}", f"{metrics['P-MPJPE']:.1f}"]
    assert cells[4:] == ['no', 'yes']  # not in the (empty) default cache; committed
    proc = subprocess.run([sys.executable, '-m', 'mmunsup3d', 'list', '--cache-dir', str(cache)],
                          cwd=str(tmp_path), env=env, capture_output=True, text=True,
                          timeout=300)
    row = next(line for line in proc.stdout.splitlines() if line.startswith(NAME))
    assert row.split()[-2:] == ['yes', 'yes']
    proc = subprocess.run([sys.executable, '-m', 'mmunsup3d', 'list', '--names'],
                          cwd=str(tmp_path), env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.stdout.split() == [m['Name'] for m in _all_entries()]
    proc = subprocess.run([sys.executable, '-m', 'mmunsup3d', 'download', 'nope'],
                          cwd=str(tmp_path), env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 1 and NAME in proc.stderr
