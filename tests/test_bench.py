"""bench/: kv-bench's framing (text, resp), its load loop and options against
real servers and lying fakes, and compare.py's formatting on canned numbers.

The servers are kvserver in-process (``start_server``), redis-server when
installed (``redis_server_port``), and small fakes defined here. Expected
bytes are written out by hand, not produced by the code under test.
"""

from __future__ import annotations

import io
import json
import re
import socket
import subprocess
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from kvbench import compare, load, progress, resp, text
from kvbench.cli import main as kv_bench
from kvbench.load import Workload, make_value, percentile, requests, run_load

ROOT = Path(__file__).resolve().parent.parent
BENCH_LINE = re.compile(
    r"^clients=(\d+) operations_per_client=(\d+) total_commands=(\d+) "
    r"elapsed_seconds=\d+\.\d\d throughput_cmds_per_sec=\d+ failures=(\d+)$"
)


def run_bench(capsys, *args: object) -> tuple[int, str, str]:
    """kv-bench in this process: (exit status, stdout, stderr)."""
    with pytest.raises(SystemExit) as exited:
        kv_bench.main([str(a) for a in args], standalone_mode=False)
    out = capsys.readouterr()
    return exited.value.code, out.out, out.err


def line_figures(out: str) -> tuple[int, int, int, int]:
    """(clients, operations_per_client, total_commands, failures) of the one line."""
    assert out.count("\n") == 1, out
    match = BENCH_LINE.match(out.strip())
    assert match, out
    return tuple(int(g) for g in match.groups())  # type: ignore[return-value]


# -- fake servers ------------------------------------------------------------------------


@pytest.fixture
def fake_server() -> Iterator:
    """``fake_server(handle)`` -> port; ``handle(conn)`` runs per connection."""
    listeners: list[socket.socket] = []

    def start(handle) -> int:
        listener = socket.create_server(("127.0.0.1", 0))
        listeners.append(listener)

        def accept() -> None:
            while True:
                try:
                    conn, _ = listener.accept()
                except OSError:
                    return
                threading.Thread(target=handle, args=(conn,), daemon=True).start()

        threading.Thread(target=accept, daemon=True).start()
        return listener.getsockname()[1]

    yield start
    for listener in listeners:
        try:
            listener.shutdown(socket.SHUT_RDWR)  # wakes the accept
        except OSError:
            pass
        listener.close()


def resp_commands(reader) -> Iterator[list[bytes]]:
    """The commands in a stream of RESP arrays of bulk strings."""
    while header := reader.readline():
        assert header[:1] == b"*", header
        args = []
        for _ in range(int(header[1:])):
            size = int(reader.readline()[1:])
            args.append(reader.read(size + 2)[:-2])
        yield args


def bulk(value: bytes | None) -> bytes:
    return b"$-1\r\n" if value is None else b"$%d\r\n%s\r\n" % (len(value), value)


def answer(store: dict, args: list[bytes]) -> bytes:
    """What a correct server answers to kv-bench's SET and GET."""
    if args[0] == b"SET":
        store[args[1]] = args[2]
        return b"+OK\r\n"
    return bulk(store.get(args[1]))


def batch_server(size: int, reverse: bool = False):
    """A RESP server that answers nothing until it holds ``size`` requests,
    then answers all of them, in order or (``reverse``) backwards."""

    def handle(conn: socket.socket) -> None:
        store: dict = {}
        pending: list[bytes] = []
        with conn, conn.makefile("rb") as reader:
            for args in resp_commands(reader):
                pending.append(answer(store, args))
                if len(pending) == size:
                    conn.sendall(b"".join(reversed(pending) if reverse else pending))
                    pending.clear()

    return handle


def last_write_server(conn: socket.socket) -> None:
    """Answers each GET with the last value SET on this connection, whatever the key."""
    last = None
    with conn, conn.makefile("rb") as reader:
        for args in resp_commands(reader):
            if args[0] == b"SET":
                last = args[2]
                conn.sendall(b"+OK\r\n")
            else:
                conn.sendall(bulk(last))


# -- framing: requests out, replies split -------------------------------------------------


def test_text_requests():
    assert text.set_request(b"k:1", b"v1") == b"SET k:1 v1\r\n"
    assert text.get_request(b"k:1") == b"GET k:1\r\n"
    assert (text.value_reply(b"v1"), text.value_reply(None)) == (b"v1", b"nil")


def test_resp_requests():
    assert resp.set_request(b"k:1", b"v1") == b"*3\r\n$3\r\nSET\r\n$3\r\nk:1\r\n$2\r\nv1\r\n"
    assert resp.get_request(b"k:1") == b"*2\r\n$3\r\nGET\r\n$3\r\nk:1\r\n"
    assert (resp.value_reply(b"v1"), resp.value_reply(None)) == (b"$2\r\nv1\r\n", b"$-1\r\n")


def split_replies(reader, data: bytes, step: int | None) -> list[bytes]:
    """Feed ``data`` whole (step None) or ``step`` bytes at a time; every reply out."""
    out = []
    step = step or len(data)
    for start in range(0, len(data), step):
        reader.feed(data[start : start + step])
        while (reply := reader.next_reply()) is not None:
            out.append(reply)
    return out


@pytest.mark.parametrize("step", [None, 1, 3])
def test_text_reader_splits_lines(step):
    data = b"OK mini-redis ready\r\nOK\r\nnil\nv12\r\n" + b"x" * 5000 + b"\r\npartial"
    replies = split_replies(text.ReplyReader(), data, step)
    assert replies == [b"OK mini-redis ready", b"OK", b"nil", b"v12", b"x" * 5000]


RESP_FRAMES = [
    b"+OK\r\n",
    b"-ERR wrong number of arguments for 'get' command\r\n",
    b":42\r\n",
    b"$-1\r\n",
    b"$0\r\n\r\n",
    b"$8\r\nv\r\n1\r\n23\r\n",  # a bulk may hold CRLF
    b"*2\r\n$1\r\na\r\n*1\r\n:1\r\n",
    b"*-1\r\n",
    b"%1\r\n+k\r\n$1\r\nv\r\n",
    b"_\r\n",
]


@pytest.mark.parametrize("step", [None, 1, 5])
def test_resp_reader_returns_each_frame_whole(step):
    data = b"".join(RESP_FRAMES) + b"$10\r\nabc"  # and the start of one more
    assert split_replies(resp.ReplyReader(), data, step) == RESP_FRAMES


@pytest.mark.parametrize("data", [b"OK\r\n", b"$abc\r\n", b"$2\r\nabcd\r\n"])
def test_resp_reader_refuses_what_is_not_resp(data):
    reader = resp.ReplyReader()
    reader.feed(data)
    with pytest.raises(ValueError):
        reader.next_reply()


def test_values_have_the_requested_size():
    assert make_value(12, None) == b"v12"
    assert make_value(12, 6) == b"xxxv12"
    assert make_value(12345, 3) == b"345"
    assert all(len(make_value(n, 100)) == 100 for n in (0, 7, 10**9))


def test_sequential_keys_are_new_for_every_pair():
    work = Workload("127.0.0.1", 1, 1, 3, run_id="r1")
    assert list(requests(work, 4)) == [
        (b"SET kvbench:r1:4:0 v0\r\n", b"OK"),
        (b"GET kvbench:r1:4:0\r\n", b"v0"),
        (b"SET kvbench:r1:4:1 v1\r\n", b"OK"),
        (b"GET kvbench:r1:4:1\r\n", b"v1"),
        (b"SET kvbench:r1:4:2 v2\r\n", b"OK"),
        (b"GET kvbench:r1:4:2\r\n", b"v2"),
    ]


def test_keyspace_expectations_follow_a_dict_model():
    """Every GET expects what a plain dict holds after the requests before it."""
    work = Workload("127.0.0.1", 1, 1, 300, resp=True, keyspace=5, run_id="r2")
    store: dict = {}
    keys, nils = set(), 0
    for request, expected in requests(work, 0):
        (args,) = resp_commands(io.BytesIO(request))
        keys.add(args[1])
        if args[0] == b"GET" and args[1] not in store:
            nils += 1
        assert expected == answer(store, args), args
    assert len(keys) == 5  # drawn from the keyspace, so keys come back
    assert nils >= 1  # a key read before this client wrote it: nil


# -- the load loop against real servers ------------------------------------------------


def test_resp_against_kvserver(start_server, capsys):
    server = start_server()
    status, out, err = run_bench(capsys, server.resp_port, 3, 50, "--resp")
    assert status == 0
    assert line_figures(out) == (3, 50, 300, 0)
    assert re.search(r"latency_ms p50=\S+ p99=\S+ p99\.9=\S+", err), err


def test_resp_against_redis_server(redis_server_port, capsys):
    status, out, _ = run_bench(capsys, redis_server_port, 3, 50, "--resp", "--pipeline", "8", "--keyspace", "4")
    assert status == 0
    assert line_figures(out) == (3, 50, 300, 0)


@pytest.mark.parametrize("protocol", ["text", "resp"])
def test_pipeline_and_keyspace_against_kvserver(start_server, capsys, protocol):
    server = start_server()
    port, flags = (server.resp_port, ["--resp"]) if protocol == "resp" else (server.port, [])
    status, out, _ = run_bench(
        capsys, port, 4, 100, "--pipeline", "16", "--keyspace", "7", "--data-size", "300", *flags
    )
    assert status == 0
    assert line_figures(out) == (4, 100, 800, 0)


def test_pipeline_keeps_n_requests_in_flight(fake_server, capsys):
    # The fake answers only once it holds 16 requests: without 16 in flight
    # kv-bench would wait for ever. Replies in order: all correct.
    port = fake_server(batch_server(16))
    status, out, _ = run_bench(capsys, port, 2, 40, "--resp", "--pipeline", "16")
    assert status == 0
    assert line_figures(out) == (2, 40, 160, 0)


def test_pipeline_checks_replies_in_order(fake_server, capsys):
    # Every batch of 16 answered backwards: SET k0, GET k0, ..., GET k7 gets
    # GET k7's value first and SET k0's OK last, so each reply is misplaced.
    port = fake_server(batch_server(16, reverse=True))
    status, out, _ = run_bench(capsys, port, 1, 16, "--resp", "--pipeline", "16")
    assert status == 1
    assert line_figures(out) == (1, 16, 32, 32)


def test_keyspace_catches_a_server_that_mixes_up_keys(fake_server):
    port = fake_server(last_write_server)
    work = Workload("127.0.0.1", port, 1, 200, resp=True, keyspace=3, run_id="r3")
    last = None
    wrong = 0  # GETs where "the last value written, any key" is not that key's value
    for request, expected in requests(work, 0):
        (args,) = resp_commands(io.BytesIO(request))
        if args[0] == b"SET":
            last = args[2]
        elif bulk(last) != expected:
            wrong += 1
    result = run_load(work)
    assert wrong > 0
    assert result.failures == wrong


def test_json_has_every_figure(start_server, capsys):
    server = start_server()
    status, out, _ = run_bench(capsys, server.port, 2, 30, "--json")
    assert status == 0
    figures = json.loads(out)
    assert set(figures) == {
        "clients", "operations_per_client", "total_commands", "elapsed_seconds",
        "throughput_cmds_per_sec", "failures", "latency_ms", "protocol", "host", "port",
        "pipeline", "data_size", "keyspace", "duration_seconds", "procs",
    }  # fmt: skip
    assert (figures["clients"], figures["operations_per_client"], figures["total_commands"]) == (2, 30, 120)
    assert (figures["failures"], figures["protocol"], figures["procs"]) == (0, "text", 1)
    latency = figures["latency_ms"]
    assert list(latency) == ["p50", "p99", "p99.9", "max"]
    assert 0 < latency["p50"] <= latency["p99"] <= latency["p99.9"] <= latency["max"]


def test_duration_runs_for_that_long(start_server, capsys):
    server = start_server()
    status, out, _ = run_bench(capsys, server.port, 2, 1, "--duration", "0.4", "--json")
    assert status == 0
    figures = json.loads(out)
    assert 0.4 <= figures["elapsed_seconds"] < 2.0
    # OPS (1) is ignored: the figures are the pairs actually done.
    assert figures["total_commands"] > 4
    assert figures["operations_per_client"] == figures["total_commands"] // 2 // 2
    assert figures["failures"] == 0


def test_procs_spread_clients_and_merge_results(start_server, capsys):
    server = start_server()
    status, out, _ = run_bench(capsys, server.port, 4, 25, "--procs", "2", "--json")
    assert status == 0
    figures = json.loads(out)
    assert (figures["procs"], figures["total_commands"], figures["failures"]) == (2, 200, 0)
    assert figures["latency_ms"]["p99"] is not None


def test_procs_report_a_refused_connection(capsys):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(Exception, match="cannot connect"):
        kv_bench.main([str(port), "2", "1", "--procs", "2"], standalone_mode=False)


def test_progress_bar_when_forced(start_server, capsys, monkeypatch):
    monkeypatch.setattr(progress, "DELAY_S", 0.0)
    monkeypatch.setattr(progress, "REDRAW_S", 0.01)
    server = start_server()
    status, out, err = run_bench(capsys, server.port, 2, 200, "--progress")
    assert status == 0
    assert line_figures(out)[3] == 0  # the bar never reaches stdout
    assert "[" + "#" * progress.WIDTH + "] 100% 800/800 replies" in err


def test_progress_render():
    assert progress.render(0.5, 400, 1234.4, 800) == "[" + "#" * 15 + "." * 15 + "]  50% 400/800 replies 1,234/s"
    assert progress.render(1.7, 9, 0, None).startswith("[" + "#" * 30 + "] 100% 9 replies")


def test_percentile_is_nearest_rank():
    values = [float(v) for v in range(1, 1001)]
    assert [percentile(values, p) for p in (50, 99, 99.9, 100)] == [500.0, 990.0, 999.0, 1000.0]
    assert percentile([], 50) is None


def test_the_default_line_is_unchanged():
    work = Workload("127.0.0.1", 1, 8, 1000)
    result = load.Result(work, elapsed_seconds=0.72, answered=16000, failures=0, latencies=[])
    assert result.line() == (
        "clients=8 operations_per_client=1000 total_commands=16000 elapsed_seconds=0.72 "
        "throughput_cmds_per_sec=22222 failures=0"
    )


# -- compare.py on canned numbers ----------------------------------------------------------


def canned_rows() -> list[compare.Row]:
    return [
        compare.Row("SET -c 50", compare.Measure(45000, 21.5, 2.5), compare.Measure(90000, 8.25, 0.55)),
        compare.Row("GET -c 50 -P 16", compare.Measure(30000, 5.0, 12.0), compare.Measure(1_000_000, 1.0, 0.8)),
        compare.Row("1,000 connections × 5 pairs", compare.Measure(15000, 70.0, 101.4), None),
    ]


def test_markdown_table():
    assert compare.markdown_table(canned_rows()) == "\n".join(
        [
            "| load | kvserver req/s | redis req/s | ratio | kvserver CPU µs/req | redis CPU µs/req"
            " | kvserver p99 ms | redis p99 ms |",
            "|---|---|---|---|---|---|---|---|",
            "| SET -c 50 | 45,000 | 90,000 | 0.50 | 21.5 | 8.2 | 2.50 | 0.55 |",
            "| GET -c 50 -P 16 | 30,000 | 1,000,000 | 0.030 | 5.0 | 1.0 | 12.00 | 0.80 |",
            "| 1,000 connections × 5 pairs | 15,000 | – | – | 70.0 | – | 101.40 | – |",
        ]
    )


def test_ratio_svg_draws_a_bar_per_ratio():
    rows = [*canned_rows(), compare.Row("<odd & label>", compare.Measure(300), compare.Measure(200))]
    svg = compare.ratio_svg(rows, "kvserver vs redis-server")
    root = ET.fromstring(svg)  # well-formed, labels escaped
    ns = {"s": "http://www.w3.org/2000/svg"}
    bars = root.findall("s:rect", ns)[1:]  # the first is the background
    assert len(bars) == 3  # the row without redis has no ratio, so no bar
    widths = [float(bar.get("width")) for bar in bars]
    assert widths[0] / widths[2] == pytest.approx(0.5 / 1.5, rel=0.01)
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert "<odd & label>" in texts and "0.50" in texts and "1.50" in texts
    assert "1.0 = redis-server" in texts


def test_results_section():
    info = compare.RunInfo(
        date="2026-11-25 10:00",
        commit="abc1234",
        invocation="python bench/compare.py --quick",
        machine="2 CPUs",
        commands=["redis-benchmark -p 1 -t set -n 20000 -c 50 --csv"],
        notes=["redis-server is not installed"],
    )
    section = compare.results_section(info, "| table |", "charts/ratios.svg")
    assert section.startswith("## 2026-11-25 10:00 — `make bench` (commit abc1234)\n")
    assert "`python bench/compare.py --quick` on 2 CPUs" in section
    assert "\n| table |\n" in section
    assert "![kvserver / redis-server throughput ratios](charts/ratios.svg)" in section
    assert "- redis-server is not installed\n" in section
    assert "```\nredis-benchmark -p 1 -t set -n 20000 -c 50 --csv\n```" in section


def test_parse_ready_line():
    line = (
        "2026-11-25 09:48:04.449 INFO kvserver.server: kvserver 0.1.0 (pid 19903) ready to accept "
        "connections on 127.0.0.1 port 38309 (text) and port 42829 (RESP), log a.aof, appendfsync everysec"
    )
    assert compare.parse_ready(line) == (38309, 42829)
    assert compare.parse_ready("DB loaded from append only file") is None


def test_parse_benchmark_csv():
    output = (
        '"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms",'
        '"p99_latency_ms","max_latency_ms"\n'
        '"SET","50000.00","0.065","0.016","0.063","0.095","0.167","0.367"\n'
    )
    assert compare.parse_benchmark_csv(output) == {"SET": (50000.0, 0.167)}


def test_parse_cpu_seconds_from_proc_stat():
    stat = "4242 (python -m (x)) S 1 4242 4242 0 -1 4194560 900 0 0 0 250 50 0 0 20 0 5 0 100 0 0"
    assert compare.parse_cpu_seconds(stat, 100) == 3.0  # (250 + 50) ticks / 100


def test_make_bench_runs_compare_with_bench_args():
    result = subprocess.run(
        ["make", "-n", "bench", "BENCH_ARGS=--quick"], cwd=ROOT, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0
    assert re.search(r"python bench/compare\.py --quick$", result.stdout, re.M), result.stdout


# -- bench/floor.py: the design's skeletons -----------------------------------------------


@pytest.mark.parametrize("design", ["handoff", "single"])
def test_floor_skeleton_answers_every_pipelined_ping(design):
    """The skeletons that bound what the design can reach (bench/floor.py)
    must answer one +PONG per PING however the requests are split, or the
    figures they give are not of the same work."""
    from kvbench import floor

    skeleton = floor.Skeleton(design)
    try:
        requests = b"*1\r\n$4\r\nPING\r\n" * 100
        with socket.create_connection(("127.0.0.1", skeleton.port), timeout=10) as sock:
            for start in range(0, len(requests), 7):  # splits inside requests and line ends
                sock.sendall(requests[start : start + 7])
            received = b""
            while len(received) < 100 * len(floor.PONG):
                chunk = sock.recv(65536)
                assert chunk, f"closed after {received!r}"
                received += chunk
        assert received == floor.PONG * 100
    finally:
        skeleton.stop()
