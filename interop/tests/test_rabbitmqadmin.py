"""RabbitMQ's own management CLI, rabbitmqadmin, unmodified, against the
broker's management API (MANAGEMENT_URL). RABBITMQADMIN names the script
(interop/run finds it; .ci/run installs it from Debian's rabbitmq-server
package). Passes against RabbitMQ 3.10.8 and ferretmq."""
import json
import os
import shutil
import subprocess
import uuid
from urllib.parse import urlparse

import pytest

MANAGEMENT_URL = os.environ.get("MANAGEMENT_URL")
ADMIN = os.environ.get("RABBITMQADMIN") or shutil.which("rabbitmqadmin")

pytestmark = pytest.mark.skipif(
    not (MANAGEMENT_URL and ADMIN) and not os.environ.get("CI"),
    reason="MANAGEMENT_URL or rabbitmqadmin not available",
)


def admin(*args, check=True):
    u = urlparse(MANAGEMENT_URL)
    cmd = ["python3", ADMIN, "-H", u.hostname, "-P", str(u.port or 15672),
           "-u", u.username or "guest", "-p", u.password or "guest", *args]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    if check:
        assert r.returncode == 0, f"{args}: {r.stdout} {r.stderr}"
    return r


def listed(*args):
    return json.loads(admin("-f", "raw_json", "list", *args).stdout)


@pytest.fixture
def tag():
    return uuid.uuid4().hex[:8]


def test_declare_publish_get_and_delete(tag):
    q, x = f"adm.q.{tag}", f"adm.x.{tag}"
    admin("declare", "queue", f"name={q}", "durable=true")
    admin("declare", "exchange", f"name={x}", "type=topic")
    admin("declare", "binding", f"source={x}", f"destination={q}", "routing_key=orders.*")
    try:
        assert any(e["name"] == q and e["durable"] for e in listed("queues", "name", "durable"))
        assert any(e["name"] == x and e["type"] == "topic" for e in listed("exchanges", "name", "type"))
        bindings = [b for b in listed("bindings") if b["source"] == x]
        assert [(b["destination"], b["routing_key"]) for b in bindings] == [(q, "orders.*")]

        out = admin("publish", f"exchange={x}", "routing_key=orders.created", "payload=hello").stdout
        assert "Message published" in out
        out = admin("publish", f"exchange={x}", "routing_key=nowhere", "payload=lost").stdout
        assert "not routed" in out.lower()
        got = json.loads(admin("-f", "raw_json", "get", f"queue={q}", "ackmode=ack_requeue_true").stdout)
        assert [(m["payload"], m["routing_key"], m["redelivered"]) for m in got] == [
            ("hello", "orders.created", False)]
        got = json.loads(admin("-f", "raw_json", "get", f"queue={q}", "ackmode=ack_requeue_false").stdout)
        assert got[0]["redelivered"] is True
        got = json.loads(admin("-f", "raw_json", "get", f"queue={q}", "ackmode=ack_requeue_false").stdout)
        assert got == []

        admin("publish", f"exchange={x}", "routing_key=orders.paid", "payload=again")
        admin("purge", "queue", f"name={q}")
        [entry] = [e for e in listed("queues", "name", "messages") if e["name"] == q]
        assert entry.get("messages", 0) == 0

        admin("delete", "binding", f"source={x}", "destination_type=queue",
              f"destination={q}", "properties_key=orders.*")
        assert [b for b in listed("bindings") if b["source"] == x] == []
    finally:
        admin("delete", "queue", f"name={q}", check=False)
        admin("delete", "exchange", f"name={x}", check=False)
    assert not any(e["name"] == q for e in listed("queues", "name"))


def test_errors_are_reported_as_rabbitmq_reports_them(tag):
    q = f"adm.q.{tag}"
    admin("declare", "queue", f"name={q}", "durable=true")
    try:
        r = admin("declare", "queue", f"name={q}", "durable=false", check=False)
        assert r.returncode != 0
        assert "inequivalent arg 'durable'" in r.stdout + r.stderr
        r = admin("delete", "exchange", "name=amq.direct", check=False)
        assert r.returncode != 0
        assert "Access refused" in r.stdout + r.stderr
    finally:
        admin("delete", "queue", f"name={q}", check=False)


def test_users_vhosts_permissions_and_parameters(tag):
    v, u = f"adm-v-{tag}", f"adm-u-{tag}"
    admin("declare", "vhost", f"name={v}")
    admin("declare", "user", f"name={u}", "password=secret", "tags=management")
    admin("declare", "permission", f"vhost={v}", f"user={u}", "configure=.*", "write=.*", "read=.*")
    try:
        assert any(e["name"] == v for e in listed("vhosts", "name"))
        assert any(e["name"] == u for e in listed("users", "name"))
        assert any(p["vhost"] == v and p["user"] == u for p in listed("permissions"))
        nodes = listed("nodes")
        assert len(nodes) == 1 and nodes[0]["running"] is True
        assert isinstance(listed("parameters"), list)
        assert isinstance(listed("operator_policies"), list)
        overview = json.loads(admin("-f", "raw_json", "show", "overview").stdout)
        assert overview[0]["object_totals"]["queues"] >= 0
    finally:
        admin("delete", "user", f"name={u}", check=False)
        admin("delete", "vhost", f"name={v}", check=False)
    assert not any(e["name"] == v for e in listed("vhosts", "name"))


def test_export_and_import_definitions(tag, tmp_path):
    q = f"adm.q.{tag}"
    admin("declare", "queue", f"name={q}", "durable=true")
    path = tmp_path / "defs.json"
    admin("export", str(path))
    defs = json.loads(path.read_text())
    assert any(e["name"] == q for e in defs["queues"])
    admin("delete", "queue", f"name={q}")
    # Import only what this test made: a shared RabbitMQ has more.
    mine = {"queues": [e for e in defs["queues"] if e["name"] == q]}
    path.write_text(json.dumps(mine))
    admin("import", str(path))
    try:
        assert any(e["name"] == q for e in listed("queues", "name"))
    finally:
        admin("delete", "queue", f"name={q}", check=False)
