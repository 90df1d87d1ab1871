"""RabbitMQ's official Grafana "RabbitMQ-Overview" dashboard, query by query,
against a real Prometheus (Debian's `prometheus`) scraping the broker's
/metrics (PROMETHEUS_METRICS, host:port): every panel's query must come back
with a value while clients publish, confirm, consume, get and return. Passes
against RabbitMQ 3.10.8 with rabbitmq_prometheus and against ferretmq."""
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse
import urllib.request
import uuid

import pika
import pytest

METRICS = os.environ.get("PROMETHEUS_METRICS")
PROMETHEUS = os.environ.get("PROMETHEUS_BIN") or shutil.which("prometheus")
HERE = os.path.dirname(os.path.abspath(__file__))
QUERIES = json.load(open(os.path.join(HERE, "grafana", "rabbitmq-overview-queries.json")))

pytestmark = pytest.mark.skipif(
    not (METRICS and PROMETHEUS) and not os.environ.get("CI"),
    reason="PROMETHEUS_METRICS or the prometheus server not available",
)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def query(base, expr):
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=10) as r:
        doc = json.load(r)
    assert doc["status"] == "success", doc
    return doc["data"]["result"]


def wait_for(what, f, deadline_s=60):
    deadline = time.time() + deadline_s
    while True:
        v = f()
        if v:
            return v
        if time.time() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def prometheus():
    d = tempfile.mkdtemp()
    port = free_port()
    with open(os.path.join(d, "prometheus.yml"), "w") as f:
        f.write(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
            "scrape_configs:\n  - job_name: broker\n    metrics_path: /metrics\n"
            f"    static_configs:\n      - targets: ['{METRICS}']\n"
        )
    log = open(os.path.join(d, "log"), "w")
    p = subprocess.Popen(
        [PROMETHEUS, f"--config.file={d}/prometheus.yml", f"--storage.tsdb.path={d}/data",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"

    def ready():
        try:
            return query(base, 'up{job="broker"} == 1')
        except OSError:
            return None
    try:
        wait_for("Prometheus to scrape the broker", ready)
        yield base
    finally:
        p.terminate()
        p.wait(timeout=30)
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def traffic(url):
    """Clients doing everything the dashboard charts, until the test ends."""
    name = f"grafana.{uuid.uuid4().hex[:8]}"
    stop = threading.Event()
    errors = []

    def run():
        try:
            conn = pika.BlockingConnection(pika.URLParameters(url))
            pub = conn.channel()
            pub.confirm_delivery()
            pub.queue_declare(name)
            sub = conn.channel()
            sub.basic_qos(prefetch_count=1)
            sub.basic_consume(name, lambda ch, m, p, b: ch.basic_ack(m.delivery_tag))
            poll = conn.channel()
            poll.queue_declare(name + ".polled")
            while not stop.is_set():
                pub.basic_publish("", name, b"x")
                pub.basic_publish("", name + ".polled", b"y")
                pub.basic_publish("amq.direct", "nowhere", b"dropped")
                try:
                    pub.basic_publish("amq.direct", "nowhere", b"returned", mandatory=True)
                except pika.exceptions.UnroutableError:
                    pass
                poll.basic_get(name + ".polled", auto_ack=True)
                poll.basic_get(name + ".polled", auto_ack=True)  # empty
                conn.process_data_events(time_limit=0.1)
                short = pika.BlockingConnection(pika.URLParameters(url))
                short.channel().queue_declare("", exclusive=True)
                short.close()
            pub.queue_delete(name)
            pub.queue_delete(name + ".polled")
            conn.close()
        except Exception as e:  # reported by the test
            errors.append(e)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    yield name
    stop.set()
    t.join(timeout=30)
    assert errors == []


def test_every_query_of_the_overview_dashboard_has_an_answer(prometheus, traffic):
    # The dashboard's variables: namespace from identity_info's label (none
    # outside Kubernetes), then the cluster among that namespace's.
    ids = wait_for("rabbitmq_identity_info", lambda: query(prometheus, "rabbitmq_identity_info"))
    namespace = ids[0]["metric"].get("namespace", "")
    clusters = {r["metric"]["rabbitmq_cluster"] for r in query(
        prometheus, f'rabbitmq_identity_info{{namespace="{namespace}"}}')}
    assert len(clusters) == 1, clusters
    cluster = clusters.pop()
    exprs = [(q["panel"], q["expr"].replace("$rabbitmq_cluster", cluster)
              .replace("$namespace", namespace)) for q in QUERIES]
    # A rate needs two scrapes; wait until the slowest of them has them.
    missing = exprs
    deadline = time.time() + 60
    while missing and time.time() < deadline:
        missing = [(panel, e) for panel, e in missing if not query(prometheus, e)]
        if missing:
            time.sleep(0.5)
    assert missing == [], "panels without an answer: " + ", ".join(p or "(nodes table)" for p, _ in missing)
    answer = lambda e: float(query(prometheus, e)[0]["value"][1])  # noqa: E731
    by_panel = dict(exprs)
    # RabbitMQ refreshes some of these every collect_statistics_interval.
    wait_for("a connection", lambda: answer(by_panel["Connections"]) >= 1)
    wait_for("the two queues", lambda: answer(by_panel["Queues"]) >= 2)
    wait_for("a consumer", lambda: answer(by_panel["Consumers"]) >= 1)
    wait_for("a publish rate", lambda: answer(by_panel["Incoming messages / s"]) > 0)
    wait_for("a confirm rate",
             lambda: answer(by_panel["Messages confirmed to publishers / s"]) > 0)
    wait_for("a dropped-unroutable rate",
             lambda: answer(by_panel["Unroutable messages dropped / s"]) > 0)
    wait_for("a returned-unroutable rate",
             lambda: answer(by_panel["Unroutable messages returned to publishers / s"]) > 0)
    wait_for("an empty-get rate",
             lambda: answer(by_panel["Polling operations that yield no result / s"]) > 0)
    wait_for("a connections-closed rate", lambda: answer(by_panel["Connections closed / s"]) > 0)
