"""pika over TLS (amqps): PLAIN inside TLS, and EXTERNAL with a client
certificate whose CN is the user. AMQPS_URL and TLS_CA name the listener
and its CA (interop/run makes both for ferretmq); TLS_CLIENT_CERT and
TLS_CLIENT_KEY a certificate for CN=guest."""
import os
import ssl
import urllib.parse
import uuid

import pika
import pytest

AMQPS_URL = os.environ.get("AMQPS_URL")
pytestmark = pytest.mark.skipif(not (AMQPS_URL and os.environ.get("TLS_CA")), reason="AMQPS_URL / TLS_CA not set")


def params(client_cert=False, external=False):
    u = urllib.parse.urlparse(AMQPS_URL)
    ctx = ssl.create_default_context(cafile=os.environ["TLS_CA"])
    if client_cert:
        ctx.load_cert_chain(os.environ["TLS_CLIENT_CERT"], os.environ["TLS_CLIENT_KEY"])
    creds = pika.credentials.ExternalCredentials() if external else pika.PlainCredentials(u.username, u.password)
    return pika.ConnectionParameters(host=u.hostname, port=u.port, credentials=creds,
                                     ssl_options=pika.SSLOptions(ctx, server_hostname=u.hostname))


def round_trip(c):
    ch = c.channel()
    q = ch.queue_declare(f"interop.tls.{uuid.uuid4().hex[:8]}", exclusive=True).method.queue
    ch.confirm_delivery()
    ch.basic_publish("", q, b"over tls")
    for _ in range(100):
        method, _, body = ch.basic_get(q, auto_ack=True)
        if method:
            return body
        c.process_data_events(0.05)
    return None


def test_plain_login_and_messages_over_tls():
    c = pika.BlockingConnection(params())
    assert round_trip(c) == b"over tls"
    c.close()


@pytest.mark.skipif(not os.environ.get("TLS_CLIENT_CERT"), reason="no client certificate")
def test_external_logs_in_as_the_certificates_common_name():
    c = pika.BlockingConnection(params(client_cert=True, external=True))
    assert round_trip(c) == b"over tls"
    c.close()


def test_the_certificate_is_checked_against_the_ca():
    u = urllib.parse.urlparse(AMQPS_URL)
    ctx = ssl.create_default_context()  # the system's CAs: ours is not among them
    p = pika.ConnectionParameters(host=u.hostname, port=u.port, ssl_options=pika.SSLOptions(ctx, server_hostname=u.hostname),
                                  credentials=pika.PlainCredentials(u.username, u.password), connection_attempts=1)
    with pytest.raises((pika.exceptions.AMQPConnectionError, ssl.SSLError)):
        pika.BlockingConnection(p)
