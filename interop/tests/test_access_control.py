"""Users, vhosts, permissions and limits through pika, set up through the
management HTTP API (MANAGEMENT_URL; interop/run sets it for ferretmq, and
a RabbitMQ with its management plugin serves the same paths). Reply codes
and texts are RabbitMQ 3.10's; the suite passes against both."""
import base64
import json
import os
import threading
import urllib.error
import urllib.parse
import urllib.request
import uuid

import pika
import pytest

MANAGEMENT_URL = os.environ.get("MANAGEMENT_URL")
pytestmark = pytest.mark.skipif(not MANAGEMENT_URL, reason="MANAGEMENT_URL is not set")


def api(method, path, body=None, auth=None):
    u = urllib.parse.urlparse(MANAGEMENT_URL)
    req = urllib.request.Request(f"{u.scheme}://{u.hostname}:{u.port}{path}", method=method,
                                 data=None if body is None else json.dumps(body).encode())
    user, pw = auth or (u.username or "guest", u.password or "guest")
    req.add_header("Authorization", "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode())
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            text = r.read().decode()
            return r.status, json.loads(text) if text else None
    except urllib.error.HTTPError as e:
        text = e.read().decode()
        return e.code, json.loads(text) if text else None


def q(s):
    return urllib.parse.quote(s, safe="")


@pytest.fixture
def tenant(url):
    """A fresh vhost and user, deleted afterwards."""
    tag = uuid.uuid4().hex[:8]
    vhost, user = f"interop-v-{tag}", f"interop-u-{tag}"
    assert api("PUT", f"/api/vhosts/{q(vhost)}")[0] == 201
    assert api("PUT", f"/api/users/{q(user)}", {"password": "pw", "tags": ""})[0] == 201
    amqp = urllib.parse.urlparse(url)

    class Tenant:
        name, vhost_name = user, vhost

        def permit(self, configure, write, read, vhost=vhost):
            body = {"configure": configure, "write": write, "read": read}
            assert api("PUT", f"/api/permissions/{q(vhost)}/{q(user)}", body)[0] in (201, 204)

        def params(self, vhost=vhost, password="pw"):
            return pika.ConnectionParameters(
                host=amqp.hostname, port=amqp.port or 5672, virtual_host=vhost,
                credentials=pika.PlainCredentials(user, password))

        def connect(self, **kw):
            return pika.BlockingConnection(self.params(**kw))

    yield Tenant()
    api("DELETE", f"/api/vhosts/{q(vhost)}")
    api("DELETE", f"/api/users/{q(user)}")


def refused(t, what):
    return f"ACCESS_REFUSED - access to {what} in vhost '{t.vhost_name}' refused for user '{t.name}'"


def channel_error(t, op):
    c = t.connect()
    try:
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
            op(c.channel())
        return e.value.reply_code, e.value.reply_text
    finally:
        if c.is_open:
            c.close()


def test_each_operation_needs_its_permission(tenant):
    t = tenant
    t.permit("^a", "^b", "")
    assert channel_error(t, lambda ch: ch.queue_declare("bq")) == (403, refused(t, "queue 'bq'"))
    assert channel_error(t, lambda ch: ch.exchange_declare("bx", "fanout")) == (403, refused(t, "exchange 'bx'"))

    def publish_default(ch):
        ch.confirm_delivery()
        ch.basic_publish("", "aq", b"x")

    assert channel_error(t, publish_default) == (403, refused(t, "exchange 'amq.default'"))

    def declare_then(op):
        def run(ch):
            ch.queue_declare("aq")
            op(ch)
        return run

    assert channel_error(t, declare_then(lambda ch: ch.basic_get("aq"))) == (403, refused(t, "queue 'aq'"))
    assert channel_error(t, declare_then(lambda ch: ch.basic_consume("aq", lambda *a: None))) == (403, refused(t, "queue 'aq'"))
    assert channel_error(t, declare_then(lambda ch: ch.queue_purge("aq"))) == (403, refused(t, "queue 'aq'"))
    assert channel_error(t, declare_then(lambda ch: ch.queue_bind("aq", "amq.direct", "k"))) == (403, refused(t, "queue 'aq'"))
    c = t.connect()
    ch = c.channel()
    assert ch.queue_declare("").method.queue.startswith("amq.gen-")
    ch.queue_delete("aq")
    c.close()


def test_connecting_needs_permissions_in_an_existing_vhost_and_the_password(tenant):
    t = tenant
    with pytest.raises(pika.exceptions.ProbableAccessDeniedError) as e:
        t.connect()
    assert f"access to vhost '{t.vhost_name}' refused for user '{t.name}'" in str(e.value)
    t.permit(".*", ".*", ".*")
    with pytest.raises(pika.exceptions.ProbableAccessDeniedError) as e:
        t.connect(vhost="interop-no-such-vhost")
    assert "vhost interop-no-such-vhost not found" in str(e.value)
    with pytest.raises(pika.exceptions.ProbableAuthenticationError) as e:
        t.connect(password="wrong")
    assert "Login was refused using authentication mechanism PLAIN" in str(e.value)
    t.connect().close()


def test_topic_permissions_on_publish_and_bind(tenant):
    t = tenant
    t.permit(".*", ".*", ".*")
    body = {"exchange": "amq.topic", "write": "^x", "read": "^{username}\\."}
    assert api("PUT", f"/api/topic-permissions/{q(t.vhost_name)}/{q(t.name)}", body)[0] == 201

    def publish(key):
        def run(ch):
            ch.confirm_delivery()
            ch.basic_publish("amq.topic", key, b"x")
        return run

    c = t.connect()
    publish("xa")(c.channel())
    c.close()
    assert channel_error(t, publish("ya")) == (
        403, f"ACCESS_REFUSED - access to topic 'ya' in exchange 'amq.topic' in vhost '{t.vhost_name}' refused for user '{t.name}'")

    def bind(key):
        def run(ch):
            ch.queue_declare("tq")
            ch.queue_bind("tq", "amq.topic", key)
        return run

    c = t.connect()
    bind(f"{t.name}.1")(c.channel())
    c.close()
    assert channel_error(t, bind("other")) == (
        403, f"ACCESS_REFUSED - access to topic 'other' in exchange 'amq.topic' in vhost '{t.vhost_name}' refused for user '{t.name}'")


def test_connection_and_channel_limits(tenant):
    t = tenant
    t.permit(".*", ".*", ".*")
    assert api("PUT", f"/api/vhost-limits/{q(t.vhost_name)}/max-connections", {"value": 2})[0] == 204
    assert api("PUT", f"/api/user-limits/{q(t.name)}/max-channels", {"value": 2})[0] == 204
    a, b = t.connect(), t.connect()
    with pytest.raises(pika.exceptions.ProbableAccessDeniedError) as e:
        t.connect()
    assert (f"access to vhost '{t.vhost_name}' refused for user '{t.name}': "
            "connection limit (2) is reached") in str(e.value)
    a.channel(), a.channel()
    with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as e:
        a.channel()
    assert e.value.reply_code == 530
    assert e.value.reply_text == (f"NOT_ALLOWED - number of channels opened for user '{t.name}' "
                                  "has reached the maximum allowed user limit of (2)")
    b.close()


def test_deleting_a_vhost_closes_its_connections(tenant):
    t = tenant
    t.permit(".*", ".*", ".*")
    c = t.connect()
    c.channel().queue_declare("stays-not", durable=True)
    threading.Timer(0.2, lambda: api("DELETE", f"/api/vhosts/{q(t.vhost_name)}")).start()
    with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as e:
        for _ in range(300):
            c.process_data_events(time_limit=0.1)
    # RabbitMQ says "is deleted", or "is down" when its vhost supervisor
    # stops first (a race inside RabbitMQ); ferretmq always "is deleted".
    assert e.value.reply_code == 320
    assert e.value.reply_text in (f"CONNECTION_FORCED - vhost '{t.vhost_name}' is deleted",
                                  f"CONNECTION_FORCED - vhost '{t.vhost_name}' is down")


def test_a_user_imported_with_a_rabbitmq_hash_logs_in(tenant, url):
    t = tenant
    user = f"{t.name}-imported"
    # alice/secret, as RabbitMQ 3.10.8 exported her.
    defs = {"users": [{"name": user, "password_hash": "kdkc3piHkBMiqVlnsMt13KDfvkcrRTkG4MkztK7DAN9pM1Q3",
                       "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": ["management"]}],
            "permissions": [{"user": user, "vhost": t.vhost_name, "configure": ".*", "write": ".*", "read": ".*"}]}
    try:
        status, _ = api("POST", "/api/definitions", defs)
        assert status in (201, 204)
        amqp = urllib.parse.urlparse(url)
        p = pika.ConnectionParameters(host=amqp.hostname, port=amqp.port or 5672, virtual_host=t.vhost_name,
                                      credentials=pika.PlainCredentials(user, "secret"))
        pika.BlockingConnection(p).close()
        assert api("GET", "/api/whoami", auth=(user, "secret")) == (200, {"name": user, "tags": ["management"]})
    finally:
        api("DELETE", f"/api/users/{q(user)}")


def test_the_management_api_is_for_management_users_and_user_admin_for_administrators(tenant):
    t = tenant
    assert api("GET", "/api/whoami", auth=(t.name, "pw")) == (
        401, {"error": "not_authorised", "reason": "Not management user"})
    user = t.name
    assert api("PUT", f"/api/users/{q(user)}", {"password": "pw", "tags": "monitoring"})[0] == 204
    assert api("GET", "/api/whoami", auth=(user, "pw"))[0] == 200
    assert api("GET", "/api/users", auth=(user, "pw")) == (
        401, {"error": "not_authorised", "reason": "Not administrator user"})
    assert api("GET", "/api/whoami", auth=(user, "bad")) == (
        401, {"error": "not_authorized", "reason": "Login failed"})


def test_deleting_or_purging_a_queue_over_http_needs_permissions_on_it(tenant, url):
    t = tenant
    t.permit("^a", ".*", "^b")
    assert api("PUT", f"/api/users/{q(t.name)}", {"password": "pw", "tags": "management"})[0] == 204
    assert api("PUT", f"/api/permissions/{q(t.vhost_name)}/guest", {"configure": ".*", "write": ".*", "read": ".*"})[0] in (201, 204)
    amqp = urllib.parse.urlparse(url)
    g = pika.BlockingConnection(pika.ConnectionParameters(host=amqp.hostname, port=amqp.port or 5672, virtual_host=t.vhost_name,
                                                          credentials=pika.PlainCredentials("guest", "guest")))
    g.channel().queue_declare("zq", durable=True)
    g.close()
    refused = (401, {"error": "not_authorised", "reason": "Access refused."})
    assert api("DELETE", f"/api/queues/{q(t.vhost_name)}/zq", auth=(t.name, "pw")) == refused
    assert api("DELETE", f"/api/queues/{q(t.vhost_name)}/zq/contents", auth=(t.name, "pw")) == refused
    assert api("DELETE", f"/api/queues/{q(t.vhost_name)}/zq")[0] == 204
