"""Download step: mirror first, then upstream URLs; content checksums; nothing partial left behind.

A threaded HTTP server on 127.0.0.1 (random port) serves good and bad files.
"""
from __future__ import annotations

import gzip
import hashlib
import http.server
import socket
import threading
import zipfile
from pathlib import Path

import pytest
import yaml

from conftest import REPO, require_mirror
from dlgm.cli import main
from dlgm.data.download import DownloadError, content_digest, download

PAYLOAD = b"".join(b"line %d of the payload\n" % i for i in range(5000))
GZ = gzip.compress(PAYLOAD, mtime=0)
ENTRY = {"urls": [], "content": "gzip", "sha256": hashlib.sha256(PAYLOAD).hexdigest(), "bytes": len(PAYLOAD)}
HTML = b"<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body>Please log in</body></html>\n"


class Server:
    """Routes: path -> (status, content type, body). Counts the requests per path."""

    def __init__(self):
        self.routes: dict[str, tuple[int, str, bytes]] = {}
        self.hits: dict[str, int] = {}
        self.fail_first: dict[str, int] = {}  # path -> how many 503s before the route answers
        routes, hits, fail_first = self.routes, self.hits, self.fail_first

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                hits[self.path] = hits.get(self.path, 0) + 1
                if fail_first.get(self.path, 0) >= hits[self.path]:
                    self.send_error(503, "busy")
                    return
                if self.path not in routes:
                    self.send_error(404, "Not Found")
                    return
                status, kind, body = routes[self.path]
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def serve(self, path, body, kind="application/octet-stream", status=200):
        self.routes[path] = (status, kind, body)
        return self.url + path


@pytest.fixture
def server():
    srv = Server()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def fetch(entry, out, mirror="", **kw):
    return download("ds", "f.gz", entry, out, mirror=mirror, attempts=kw.pop("attempts", 2), backoff=0, timeout=5, **kw)


def assert_nothing_left(folder: Path):
    assert not folder.exists() or list(folder.iterdir()) == []


def test_mirror_url_prefix_first(server, tmp_path):
    server.serve("/m/ds/f.gz", GZ)
    upstream = server.serve("/up/f.gz", GZ)
    out = tmp_path / "raw" / "f.gz"
    source = fetch({**ENTRY, "urls": [upstream]}, out, mirror=server.url + "/m/")
    assert source == server.url + "/m/ds/f.gz"
    assert out.read_bytes() == GZ
    assert "/up/f.gz" not in server.hits


def test_local_mirror_folder(tmp_path):
    (tmp_path / "mirror" / "ds").mkdir(parents=True)
    (tmp_path / "mirror" / "ds" / "f.gz").write_bytes(GZ)
    out = tmp_path / "raw" / "f.gz"
    assert fetch(ENTRY, out, mirror=str(tmp_path / "mirror")) == str(tmp_path / "mirror" / "ds" / "f.gz")
    assert out.read_bytes() == GZ


def test_recompressed_copy_still_verifies(server, tmp_path):
    """The digest is of the decompressed bytes, so another gzip level / header does not matter."""
    other = gzip.compress(PAYLOAD, compresslevel=1, mtime=12345)
    assert other != GZ
    url = server.serve("/f.gz", other)
    fetch({**ENTRY, "urls": [url]}, tmp_path / "raw" / "f.gz")
    assert (tmp_path / "raw" / "f.gz").read_bytes() == other


def test_checksum_mismatch_names_file_url_and_both_digests(server, tmp_path):
    wrong = PAYLOAD.replace(b"line 7 ", b"line 8 ")
    url = server.serve("/f.gz", gzip.compress(wrong))
    with pytest.raises(DownloadError) as err:
        fetch({**ENTRY, "urls": [url]}, tmp_path / "raw" / "f.gz")
    message = str(err.value)
    assert "checksum mismatch" in message and "f.gz" in message and url in message
    assert ENTRY["sha256"] in message and hashlib.sha256(wrong).hexdigest() in message
    assert_nothing_left(tmp_path / "raw")


@pytest.mark.parametrize("kind", ["text/html; charset=utf-8", "application/octet-stream"])
def test_html_page_instead_of_data(server, tmp_path, kind):
    url = server.serve("/f.gz", HTML, kind=kind)
    with pytest.raises(DownloadError, match="HTML page") as err:
        fetch({**ENTRY, "urls": [url]}, tmp_path / "raw" / "f.gz")
    assert url in str(err.value)
    assert_nothing_left(tmp_path / "raw")


def test_truncated_gzip(server, tmp_path):
    url = server.serve("/f.gz", GZ[: len(GZ) // 2])
    with pytest.raises(DownloadError, match="truncated gzip") as err:
        fetch({**ENTRY, "urls": [url]}, tmp_path / "raw" / "f.gz")
    assert url in str(err.value)
    assert_nothing_left(tmp_path / "raw")


def test_unreachable_mirror_falls_through_to_next_url(server, tmp_path):
    dead = closed_port_url()
    upstream = server.serve("/up/f.gz", GZ)
    out = tmp_path / "raw" / "f.gz"
    assert fetch({**ENTRY, "urls": [upstream]}, out, mirror=dead) == upstream
    assert out.read_bytes() == GZ


def test_missing_mirror_file_falls_through(server, tmp_path):
    upstream = server.serve("/up/f.gz", GZ)
    out = tmp_path / "raw" / "f.gz"
    assert fetch({**ENTRY, "urls": [upstream]}, out, mirror=server.url + "/m") == upstream
    assert server.hits[("/m/ds/f.gz")] == 1  # a 404 is not retried
    (tmp_path / "emptymirror" / "ds").mkdir(parents=True)
    out.unlink()
    assert fetch({**ENTRY, "urls": [upstream]}, out, mirror=str(tmp_path / "emptymirror")) == upstream
    out.unlink()
    with pytest.raises(DownloadError, match="mirror folder .*nowhere does not exist"):
        fetch(ENTRY, out, mirror=str(tmp_path / "nowhere"))


def test_passing_server_error_is_retried(server, tmp_path):
    url = server.serve("/f.gz", GZ)
    server.fail_first["/f.gz"] = 2
    fetch({**ENTRY, "urls": [url]}, tmp_path / "f.gz", attempts=3)
    assert server.hits["/f.gz"] == 3
    server.fail_first["/f.gz"] = 10
    with pytest.raises(DownloadError, match="HTTP 503 .*after 2 tries"):
        fetch({**ENTRY, "urls": [url]}, tmp_path / "g.gz", attempts=2)
    assert not (tmp_path / "g.gz").exists()


def test_all_sources_fail_lists_each_url_and_why(server, tmp_path):
    dead = closed_port_url()
    html = server.serve("/html/f.gz", HTML, kind="text/html")
    short = server.serve("/short/f.gz", GZ[:100])
    missing = server.url + "/nothing/f.gz"
    with pytest.raises(DownloadError) as err:
        fetch({**ENTRY, "urls": [html, short, missing]}, tmp_path / "raw" / "f.gz", mirror=dead)
    message = str(err.value)
    for source, why in [(f"{dead}/ds/f.gz", "after 2 tries"), (html, "HTML"), (short, "truncated gzip"),
                        (missing, "HTTP 404")]:
        line = next(line for line in message.splitlines() if source in line)
        assert why in line, line
    assert_nothing_left(tmp_path / "raw")


def test_no_source_at_all_says_how_to_set_the_mirror(tmp_path):
    with pytest.raises(DownloadError, match="DLGM_DATA_MIRROR"):
        fetch(ENTRY, tmp_path / "f.gz")


def test_zip_digest_is_the_member_manifest(tmp_path):
    members = {"b/two.txt": b"second\n", "a/one.txt": b"first\n"}
    with zipfile.ZipFile(tmp_path / "x.zip", "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    manifest = "".join(f"{hashlib.sha256(members[n]).hexdigest()}  {n}\n" for n in sorted(members))
    assert content_digest(tmp_path / "x.zip", "zip") == (hashlib.sha256(manifest.encode()).hexdigest(), 13)
    (tmp_path / "cut.zip").write_bytes((tmp_path / "x.zip").read_bytes()[:-30])
    with pytest.raises(DownloadError, match="not a valid zip"):
        content_digest(tmp_path / "cut.zip", "zip")


def test_catalogue_matches_every_mirror_file():
    """Each entry of config/datasets.yaml verifies against the mirror (sha256 and size of the content)."""
    mirror = require_mirror()
    catalogue = yaml.safe_load((REPO / "config" / "datasets.yaml").read_text())
    assert set(catalogue) >= {"mnist", "conll2000", "conll2003", "ptb_pos", "fsdd", "timit_meta"}
    for dataset, spec in catalogue.items():
        for name, entry in spec["files"].items():
            assert (entry["sha256"], entry["bytes"]) == content_digest(mirror / dataset / name, entry["content"]), name
            for url in entry["urls"]:
                assert url.startswith("https://") or url.startswith("http://yann.lecun.com/"), url


def test_zip_manifest_digest_agrees_with_the_mirrors_manifest_file():
    mirror = require_mirror()
    manifest = (mirror / "ptb_pos" / "treebank.contents.sha256").read_bytes()
    digest, _ = content_digest(mirror / "ptb_pos" / "treebank.zip", "zip")
    assert digest == hashlib.sha256(manifest).hexdigest()


def test_cli_download_reads_the_catalogue(tmp_path, monkeypatch):
    mirror = require_mirror()
    monkeypatch.chdir(REPO)
    monkeypatch.setenv("DLGM_DATA_MIRROR", str(mirror))
    out = tmp_path / "raw" / "timit_meta" / "test_spk.list"
    main(["data", "download", "--dataset", "timit_meta", "--file", "test_spk.list", "--out", str(out)])
    assert out.read_bytes() == (mirror / "timit_meta" / "test_spk.list").read_bytes()
    with pytest.raises(SystemExit):
        main(["data", "download", "--dataset", "timit_meta", "--file", "nope.txt", "--out", str(tmp_path / "x")])
    assert not (tmp_path / "x").exists()
