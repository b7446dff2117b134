"""Safety of ``download_checkpoint``: planted symlinks, concurrent writers, deadlines, size
caps, redirects. Everything runs against a loopback HTTP server with small byte payloads."""
import fcntl
import hashlib
import http.server
import multiprocessing
import os
import os.path as osp
import re
import socket
import stat
import threading
import time

import pytest

from mmunsup3d.__main__ import main as cli_main
from mmunsup3d.utils import zoo
from mmunsup3d.utils.zoo import DownloadError, download_checkpoint


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


PAYLOAD = b'\x80\x02 checkpoint-like bytes ' + bytes(range(256)) * 4
SHA = _sha256(PAYLOAD)
NAME = f'lifter_20260101-{SHA[:8]}.pth'  # OpenMMLab rule: <name>-<sha256[:8]>.pth
BAD = PAYLOAD[:-1] + b'!'  # same length, other hash
BAD_SHA = _sha256(BAD)
assert BAD_SHA[:8] != SHA[:8]
DRIP_INTERVAL = 0.5  # seconds per byte of the slow-drip response
SLOW_DELAY = 0.5  # seconds before the slow responses start


class _Handler(http.server.BaseHTTPRequestHandler):
    """``GET /<mode>/<file>``; ``mode`` picks the behaviour, the file name is ignored."""

    def log_message(self, *args):  # keep test output quiet
        pass

    def _headers(self, length=None):
        self.send_response(200)
        self.send_header('Content-Type', 'application/octet-stream')
        if length is not None:
            self.send_header('Content-Length', str(length))
        self.end_headers()

    def _body(self, body, delay=0.0):
        if delay and self.server.stop.wait(delay):
            return
        self._headers(len(body))
        self.wfile.write(body)

    def _redirect(self, location):
        self.send_response(302)
        self.send_header('Location', location)
        self.send_header('Content-Length', '0')
        self.end_headers()

    def do_GET(self):
        srv = self.server
        srv.requests.append(self.path)
        mode = self.path.split('/')[1]
        try:
            if mode == 'good':
                self._body(PAYLOAD)
            elif mode == 'slow':
                self._body(PAYLOAD, delay=SLOW_DELAY)
            elif mode == 'bad':
                self._body(BAD)
            elif mode == 'slowbad':
                self._body(BAD, delay=SLOW_DELAY)
            elif mode == 'bad-after-good-lands':
                # Another writer finishes the verified file while this bad transfer runs.
                with open(srv.plant, 'wb') as f:
                    f.write(PAYLOAD)
                self._body(BAD)
            elif mode == 'drip':
                self._headers(len(PAYLOAD))
                for i in range(len(PAYLOAD)):
                    if srv.stop.wait(DRIP_INTERVAL):
                        return
                    self.wfile.write(PAYLOAD[i:i + 1])
                    self.wfile.flush()
            elif mode == 'stall-headers':
                srv.stop.wait(10)
            elif mode == 'stall-body':
                self._headers(len(PAYLOAD))
                self.wfile.write(PAYLOAD[:10])
                self.wfile.flush()
                srv.stop.wait(10)
            elif mode == 'endless':
                self._headers()  # no Content-Length: HTTP/1.0 body ends at close
                block = b'\0' * 65536
                while not srv.stop.is_set():
                    self.wfile.write(block)
            elif mode == 'biglength':
                self._headers(2**31)
                self.wfile.write(PAYLOAD)
            elif mode == 'to-ftp':
                self._redirect(f'ftp://127.0.0.1:{srv.server_address[1]}/{NAME}')
            elif mode == 'to-file':
                self._redirect(srv.file_target)
            elif mode == 'to-http':
                self._redirect(f'/good/{NAME}')
            else:
                self.send_error(404)
        except OSError:
            pass  # the client hung up, as the deadline and size-cap tests make it do


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), _Handler)
    httpd.requests = []
    httpd.stop = threading.Event()
    thread = threading.Thread(target=httpd.serve_forever, kwargs=dict(poll_interval=0.05),
                              daemon=True)
    thread.start()
    httpd.base = f'http://127.0.0.1:{httpd.server_address[1]}'
    yield httpd
    httpd.stop.set()  # ends the dripping / stalling handlers
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path):
    for var in (zoo.ZOO_URL_ENV, zoo.DEADLINE_ENV, zoo.MAX_BYTES_ENV):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv(zoo.CACHE_DIR_ENV, str(tmp_path / 'default_cache'))


def _ls(path) -> list:
    return sorted(os.listdir(path)) if osp.isdir(path) else []


def _url(server, mode: str) -> str:
    return f'{server.base}/{mode}/{NAME}'


def _raises(url, match, **kwargs) -> DownloadError:
    """Call download_checkpoint(url, **kwargs), expect DownloadError naming url; return it."""
    with pytest.raises(DownloadError) as info:
        download_checkpoint(url, **kwargs)
    msg = str(info.value)
    assert msg.startswith(f'Download of {url} failed: '), msg
    assert re.search(match, msg), msg
    assert isinstance(info.value, RuntimeError) and not isinstance(info.value, OSError)
    return info.value


def test_good_download_uses_unpredictable_exclusive_temp_names(server, tmp_path,
                                                               monkeypatch):
    made = []
    real_mkstemp = zoo.tempfile.mkstemp

    def recording_mkstemp(*args, **kwargs):
        fd, path = real_mkstemp(*args, **kwargs)
        made.append(path)
        return fd, path

    monkeypatch.setattr(zoo.tempfile, 'mkstemp', recording_mkstemp)
    paths = []
    for i in range(2):
        cache = tmp_path / f'cache{i}'
        paths.append(download_checkpoint(_url(server, 'good'), cache_dir=str(cache)))
        assert paths[-1] == str(cache / NAME)
        assert (cache / NAME).read_bytes() == PAYLOAD
        assert stat.S_IMODE(os.stat(paths[-1]).st_mode) == 0o644
        assert _ls(cache) == [NAME]  # no temporary or lock file left
    assert len(made) == 2
    names = [osp.basename(p) for p in made]
    for i, name in enumerate(names):
        assert osp.dirname(made[i]) == str(tmp_path / f'cache{i}')
        assert name.startswith(f'.{NAME}.') and name.endswith('.part')
        assert name != f'{NAME}.part' and len(name) > len(f'.{NAME}..part')
    random_parts = [n[len(f'.{NAME}.'):-len('.part')] for n in names]
    assert random_parts[0] != random_parts[1]
    # A cache hit makes no request and creates no temporary file.
    assert download_checkpoint(_url(server, 'good'), cache_dir=str(tmp_path / 'cache0')) \
        == paths[0]
    assert len(server.requests) == 2 and len(made) == 2


def _plant_victim(tmp_path):
    victim = tmp_path / 'victim.txt'
    victim.write_bytes(b'precious')
    os.chmod(victim, 0o600)
    return victim


def _victim_intact(victim):
    assert victim.read_bytes() == b'precious'
    assert stat.S_IMODE(os.stat(victim).st_mode) == 0o600


def test_planted_part_symlink_is_never_followed(server, tmp_path):
    victim = _plant_victim(tmp_path)
    cache = tmp_path / 'cache'
    cache.mkdir()
    trap = cache / f'{NAME}.part'  # the old, predictable partial-file name
    trap.symlink_to(victim)
    path = download_checkpoint(_url(server, 'good'), cache_dir=str(cache))
    assert open(path, 'rb').read() == PAYLOAD and not osp.islink(path)
    _victim_intact(victim)
    assert os.readlink(trap) == str(victim)
    assert _ls(cache) == sorted([NAME, f'{NAME}.part'])
    # A failing download leaves the planted link and its target alone as well.
    os.remove(path)
    _raises(_url(server, 'bad'), 'sha256 mismatch', cache_dir=str(cache))
    _victim_intact(victim)
    assert os.readlink(trap) == str(victim) and _ls(cache) == [f'{NAME}.part']


def test_planted_final_symlink_is_replaced_not_written_through(server, tmp_path):
    victim = _plant_victim(tmp_path)
    cache = tmp_path / 'cache'
    cache.mkdir()
    (cache / NAME).symlink_to(victim)  # does not verify, so it is a stale cache entry
    path = download_checkpoint(_url(server, 'good'), cache_dir=str(cache))
    assert not osp.islink(path) and open(path, 'rb').read() == PAYLOAD
    _victim_intact(victim)
    assert _ls(cache) == [NAME]


def test_planted_lock_symlink_is_refused(server, tmp_path):
    victim = _plant_victim(tmp_path)
    cache = tmp_path / 'cache'
    cache.mkdir()
    lock = cache / f'.{NAME}.lock'
    lock.symlink_to(victim)
    _raises(_url(server, 'good'), rf'cannot open the lock file {re.escape(str(lock))} '
            r'\(it is a symlink\)', cache_dir=str(cache))
    _victim_intact(victim)
    assert os.readlink(lock) == str(victim) and _ls(cache) == [f'.{NAME}.lock']
    assert server.requests == []  # refused before any transfer


def test_deadline_covers_waiting_for_the_lock(server, tmp_path):
    cache = tmp_path / 'cache'
    cache.mkdir()
    lock = cache / f'.{NAME}.lock'
    with open(lock, 'w') as held:  # another download of the same file holds the lock
        fcntl.flock(held, fcntl.LOCK_EX)
        t0 = time.monotonic()
        _raises(_url(server, 'good'), r'overall deadline of 0.5 s exceeded while waiting for '
                rf'another download of the same file \(lock {re.escape(str(lock))}\)$',
                cache_dir=str(cache), deadline=0.5)
        assert 0.45 < time.monotonic() - t0 < 2
        assert _ls(cache) == [f'.{NAME}.lock']  # the holder's lock file is left alone
    assert server.requests == []


def test_slow_drip_stops_at_the_deadline(server, tmp_path, monkeypatch, capsys):
    cache = tmp_path / 'cache'
    url = _url(server, 'drip')
    t0 = time.monotonic()
    err = _raises(url, rf'overall deadline of 2 s exceeded after (\d+) bytes of {len(PAYLOAD)}$',
                  cache_dir=str(cache), deadline=2)
    elapsed = time.monotonic() - t0
    assert 1.9 < elapsed < 3.5
    got = int(re.search(r'after (\d+) bytes', str(err)).group(1))
    assert 1 <= got <= 2 / DRIP_INTERVAL + 1  # one byte per interval arrived
    assert _ls(cache) == []
    # The environment variable sets the default deadline ...
    monkeypatch.setenv(zoo.DEADLINE_ENV, '0.5')
    t0 = time.monotonic()
    _raises(url, 'overall deadline of 0.5 s exceeded', cache_dir=str(cache))
    assert time.monotonic() - t0 < 2 and _ls(cache) == []
    # ... and the CLI flag overrides it.
    monkeypatch.setenv(zoo.DEADLINE_ENV, '300')
    t0 = time.monotonic()
    assert cli_main(['download', url, '--cache-dir', str(cache), '--deadline', '0.5']) == 1
    assert time.monotonic() - t0 < 2
    assert f'error: Download of {url} failed: overall deadline of 0.5 s exceeded' \
        in capsys.readouterr().err
    assert _ls(cache) == []


def test_stalled_headers_stop_at_the_deadline_not_the_read_timeout(server, tmp_path):
    cache = tmp_path / 'cache'
    t0 = time.monotonic()
    _raises(_url(server, 'stall-headers'),
            r'overall deadline of 1 s exceeded before the response arrived$',
            cache_dir=str(cache), timeout=30, deadline=1)
    assert time.monotonic() - t0 < 2.5 and _ls(cache) == []


def test_read_timeout_is_a_download_error(server, tmp_path):
    cache = tmp_path / 'cache'
    t0 = time.monotonic()
    err = _raises(_url(server, 'stall-body'),
                  rf'no data for 0.5 s \(read timeout\) after 10 bytes of {len(PAYLOAD)}$',
                  cache_dir=str(cache), timeout=0.5, deadline=20)
    assert not isinstance(err, TimeoutError)
    assert time.monotonic() - t0 < 2.5 and _ls(cache) == []


def test_endless_stream_is_cut_at_the_size_cap(server, tmp_path):
    cache = tmp_path / 'cache'
    # Reads are bounded by what is still allowed, so exactly one byte past the cap is read.
    _raises(_url(server, 'endless'), r'more data than the size cap of 100000 bytes after '
            r'100001 bytes$', cache_dir=str(cache), max_bytes=100_000)
    assert _ls(cache) == []


def test_content_length_over_the_cap_is_refused_before_reading(server, tmp_path, monkeypatch):
    cache = tmp_path / 'cache'
    url = _url(server, 'biglength')
    _raises(url, r'Content-Length 2147483648 exceeds the size cap of 1000 bytes$',
            cache_dir=str(cache), max_bytes=1000)
    _raises(url, r'Content-Length 2147483648 exceeds the size cap of 1073741824 bytes$',
            cache_dir=str(cache))  # the default cap: 1 GiB
    monkeypatch.setenv(zoo.MAX_BYTES_ENV, str(len(PAYLOAD) - 1))
    _raises(_url(server, 'good'), rf'Content-Length {len(PAYLOAD)} exceeds the size cap of '
            rf'{len(PAYLOAD) - 1} bytes$', cache_dir=str(cache))
    assert _ls(cache) == []


def test_zoo_entry_size_is_the_exact_cap(server, tmp_path, monkeypatch):
    cache = tmp_path / 'cache'
    url = _url(server, 'good')
    info = dict(name='lifter', sha256=SHA, filename=NAME, url=url, weights=NAME)
    monkeypatch.setattr(zoo, 'resolve_model', lambda name: dict(info, size=len(PAYLOAD) - 1))
    with pytest.raises(DownloadError, match=rf'^Download of {re.escape(url)} failed: '
                       rf'Content-Length {len(PAYLOAD)} exceeds the size cap of '
                       rf'{len(PAYLOAD) - 1} bytes$'):
        download_checkpoint('lifter', cache_dir=str(cache), max_bytes=10**6)
    assert _ls(cache) == []
    # The known size replaces max_bytes (which alone would refuse this file).
    monkeypatch.setattr(zoo, 'resolve_model', lambda name: dict(info, size=len(PAYLOAD)))
    assert download_checkpoint('lifter', cache_dir=str(cache), max_bytes=10) == \
        str(cache / NAME)
    assert _ls(cache) == [NAME]


def test_redirects_only_to_http(server, tmp_path):
    cache = tmp_path / 'cache'
    port = server.server_address[1]
    _raises(_url(server, 'to-ftp'), rf'redirect \(HTTP 302\) to ftp://127.0.0.1:{port}/'
            rf'{re.escape(NAME)} refused; only http:// and https:// redirects are followed$',
            cache_dir=str(cache))
    # A local file with the right bytes: the hash would pass, the redirect must not.
    local = tmp_path / 'local' / NAME
    local.parent.mkdir()
    local.write_bytes(PAYLOAD)
    server.file_target = f'file://{local}'
    _raises(_url(server, 'to-file'), rf'redirect \(HTTP 302\) to {re.escape(f"file://{local}")}'
            r' refused', cache_dir=str(cache))
    assert local.read_bytes() == PAYLOAD and _ls(cache) == []
    # Control: an http redirect is followed.
    assert download_checkpoint(_url(server, 'to-http'), cache_dir=str(cache)) == \
        str(cache / NAME)
    assert server.requests == [f'/to-ftp/{NAME}', f'/to-file/{NAME}', f'/to-http/{NAME}',
                               f'/good/{NAME}']
    assert _ls(cache) == [NAME]


def test_stale_cache_is_kept_until_a_verified_download_replaces_it(server, tmp_path):
    cache = tmp_path / 'cache'
    cache.mkdir()
    (cache / NAME).write_bytes(b'stale')
    _raises(_url(server, 'bad'), rf'sha256 mismatch, expected {SHA[:8]}\.\.\. \(prefix from '
            rf'the file name\), got {BAD_SHA}$', cache_dir=str(cache))
    assert _ls(cache) == [NAME] and (cache / NAME).read_bytes() == b'stale'  # not deleted
    download_checkpoint(_url(server, 'good'), cache_dir=str(cache))
    assert _ls(cache) == [NAME] and (cache / NAME).read_bytes() == PAYLOAD


def test_verified_file_is_never_replaced_by_bad_bytes(server, tmp_path):
    cache = tmp_path / 'cache'
    cache.mkdir()
    server.plant = str(cache / NAME)
    _raises(_url(server, 'bad-after-good-lands'), 'sha256 mismatch', cache_dir=str(cache))
    assert _ls(cache) == [NAME] and (cache / NAME).read_bytes() == PAYLOAD


def test_connection_refused_is_a_download_error(tmp_path):
    with socket.socket() as s:  # a port nobody listens on any more
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    cache = tmp_path / 'cache'
    _raises(f'http://127.0.0.1:{port}/x/{NAME}', 'Connection refused', cache_dir=str(cache))
    assert _ls(cache) == []


def test_bad_limits_are_value_errors(server, tmp_path, monkeypatch):
    cache = tmp_path / 'cache'
    url = _url(server, 'good')
    with pytest.raises(ValueError, match=r'^deadline must be a positive number, got 0$'):
        download_checkpoint(url, cache_dir=str(cache), deadline=0)
    with pytest.raises(ValueError, match=r'^timeout must be a positive number, got -1$'):
        download_checkpoint(url, cache_dir=str(cache), timeout=-1)
    with pytest.raises(ValueError, match=r'^max_bytes must be a positive integer, got 1.5$'):
        download_checkpoint(url, cache_dir=str(cache), max_bytes=1.5)
    monkeypatch.setenv(zoo.DEADLINE_ENV, 'soon')
    with pytest.raises(ValueError, match=r"^\$MMUNSUP3D_DOWNLOAD_DEADLINE must be a positive "
                       r"number, got 'soon'$"):
        download_checkpoint(url, cache_dir=str(cache))
    monkeypatch.delenv(zoo.DEADLINE_ENV)
    monkeypatch.setenv(zoo.MAX_BYTES_ENV, '1e9')
    with pytest.raises(ValueError, match=r"^\$MMUNSUP3D_DOWNLOAD_MAX_BYTES must be a positive "
                       r"integer, got '1e9'$"):
        download_checkpoint(url, cache_dir=str(cache))
    assert server.requests == [] and not cache.exists()


def _worker(url, cache, delay, queue):
    """Child process: one download; reports ('ok', path) or ('err', type name, message)."""
    time.sleep(delay)
    try:
        queue.put(('ok', download_checkpoint(url, cache_dir=cache, deadline=20)))
    except BaseException as e:  # report anything, the parent asserts on it
        queue.put(('err', type(e).__name__, str(e)))


def _run_concurrently(urls, delays, cache):
    # fork: the children reuse the imported package (a spawn would re-import torch & co.)
    ctx = multiprocessing.get_context('fork')
    queue = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(url, str(cache), delay, queue))
             for url, delay in zip(urls, delays)]
    for proc in procs:
        proc.start()
    results = [queue.get(timeout=30) for _ in procs]
    for proc in procs:
        proc.join(10)
        assert proc.exitcode == 0
    return results


@pytest.mark.parametrize('num, stagger', [(2, 0.0), (2, 0.2), (4, 0.0), (4, 0.15)])
def test_concurrent_downloads_share_one_verified_transfer(server, tmp_path, num, stagger):
    cache = tmp_path / 'cache'
    url = _url(server, 'slow')
    results = _run_concurrently([url] * num, [i * stagger for i in range(num)], cache)
    assert results == [('ok', str(cache / NAME))] * num
    assert (cache / NAME).read_bytes() == PAYLOAD and _ls(cache) == [NAME]
    # The lock serialises the writers and each re-checks the cache: a single transfer.
    assert server.requests == [f'/slow/{NAME}']


@pytest.mark.parametrize('num, stagger', [(2, 0.0), (4, 0.0), (4, 0.15)])
def test_concurrent_bad_writer_never_wins(server, tmp_path, num, stagger):
    cache = tmp_path / 'cache'
    urls = [_url(server, 'slowbad' if i % 2 else 'slow') for i in range(num)]
    results = _run_concurrently(urls, [i * stagger for i in range(num)], cache)
    oks = [r for r in results if r[0] == 'ok']
    errors = [r for r in results if r[0] == 'err']
    # Every good writer succeeds; a bad one either finds the verified file or fails clearly.
    assert len(oks) >= num // 2 and all(r == ('ok', str(cache / NAME)) for r in oks)
    for err in errors:
        assert err[1] == 'DownloadError', err
        assert re.fullmatch(rf'Download of {re.escape(server.base)}/slowbad/{re.escape(NAME)} '
                            rf'failed: sha256 mismatch, .*got {BAD_SHA}', err[2]), err
    assert (cache / NAME).read_bytes() == PAYLOAD and _ls(cache) == [NAME]


def test_file_url_of_a_fifo_is_refused_at_once(tmp_path):
    """A FIFO under the checkpoint's name would block ``open()`` past any deadline."""
    fifo = tmp_path / 'ckpt_20260101-0123abcd.pth'
    os.mkfifo(fifo)
    started = time.monotonic()
    with pytest.raises(DownloadError, match='is not a regular file'):
        download_checkpoint(f'file://{fifo}', cache_dir=str(tmp_path / 'cache'), deadline=30)
    assert time.monotonic() - started < 10
    assert not (tmp_path / 'cache').exists() or os.listdir(tmp_path / 'cache') == []


def test_file_url_of_another_host_is_refused(tmp_path):
    with pytest.raises(DownloadError, match='must name a local file'):
        download_checkpoint('file://example.org/x-0123abcd.pth', cache_dir=str(tmp_path))


def test_parts_left_by_killed_downloads_are_removed_and_nothing_else(server, tmp_path):
    cache = tmp_path / 'cache'
    cache.mkdir()
    name = NAME
    stale = cache / f'.{name}.abcd_123.part'
    stale.write_bytes(b'half a download')
    outside = tmp_path / 'outside'
    outside.write_bytes(b'keep')
    (cache / f'.{name}.zzzz_999.part').symlink_to(outside)
    others = [cache / f'.{name}.notours', cache / f'.other.pth.abcd_123.part']
    for path in others:
        path.write_bytes(b'not ours')
    download_checkpoint(_url(server, 'good'), cache_dir=str(cache))
    assert not stale.exists() and outside.read_bytes() == b'keep'
    assert (cache / f'.{name}.zzzz_999.part').is_symlink()
    assert all(p.read_bytes() == b'not ours' for p in others)
