"""The web UI in headless Chromium: log in with the broker's users, see
what AMQP declared, publish through the UI and consume over AMQP, watch a
rate chart move, declare and delete through forms. A screenshot of every
page is kept (SCREENSHOTS). ui/run-tests starts the broker and sets
UI_URL, AMQP_URL and CHROMIUM."""
import json
import re
import os
import threading
import time
import uuid

import pika
import pytest
from playwright.sync_api import expect, sync_playwright

UI_URL = os.environ["UI_URL"]
AMQP_URL = os.environ["AMQP_URL"]
SHOTS = os.environ.get("SCREENSHOTS", "/tmp/ui-screenshots")
# Generous: the broker samples rates every 0.5 s, the page polls every 1 s.
PATIENCE_MS = 15_000


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=os.environ["CHROMIUM"], headless=True,
                              args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


@pytest.fixture
def page(browser):
    ctx = browser.new_context(viewport={"width": 1400, "height": 900}, accept_downloads=True)
    ctx.add_init_script("localStorage.setItem('ferretmq.refresh', '1000')")
    pg = ctx.new_page()
    errors = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    yield pg
    ctx.close()
    assert errors == [], f"JavaScript errors: {errors}"


def shot(page, name):
    page.screenshot(path=os.path.join(SHOTS, f"{name}.png"), full_page=True)


def login(page, user="guest", password="guest", expect_success=True):
    page.goto(UI_URL)
    page.fill("#username", user)
    page.fill("#password", password)
    page.click("#login button[type=submit]")
    if expect_success:
        # Navigating while the login request is in flight would race it.
        expect(page.locator("#who")).to_have_text(user)


@pytest.fixture
def amqp():
    conn = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    yield conn.channel()
    conn.close()


def test_login_refuses_a_wrong_password_and_accepts_the_right_one(page):
    page.goto(UI_URL)
    expect(page.locator("#login")).to_be_visible()
    shot(page, "login")
    login(page, "guest", "wrong", expect_success=False)
    expect(page.locator("#login-error")).to_contain_text("Login failed")
    login(page)
    expect(page.locator("#total-queues")).to_be_visible()
    expect(page.locator("#who")).to_have_text("guest")


def test_the_overview_lists_the_nodes(page):
    login(page)
    row = page.locator("#nodes tr.node")
    expect(row).to_have_count(1)
    expect(row.locator("td").nth(1)).to_have_text("running")
    expect(row.locator("td").nth(2)).to_have_text("not clustered")
    expect(row.locator("td").nth(0)).to_have_text(page.locator("#node dd").first.inner_text())


def test_a_queue_declared_over_amqp_is_listed_and_shown(page, amqp):
    name = f"ui.seen.{uuid.uuid4().hex[:6]}"
    amqp.queue_declare(name, durable=True)
    try:
        login(page)
        page.goto(UI_URL + "#/queues")
        expect(page.locator("#list-queues")).to_contain_text(name)
        page.fill("#filter", name)
        expect(page.locator("#list-queues tr")).to_have_count(2)
        shot(page, "queues")
        page.click(f"text={name}")
        expect(page.locator("#queue-props")).to_contain_text("classic")
    finally:
        amqp.queue_delete(name)


def test_a_deep_link_opened_before_login_is_shown_after_it(page, amqp):
    name = f"ui.deep.{uuid.uuid4().hex[:6]}"
    amqp.queue_declare(name)
    try:
        page.goto(UI_URL + f"#/queue/%2F/{name}")
        expect(page.locator("#login")).to_be_visible()
        page.fill("#username", "guest")
        page.fill("#password", "guest")
        page.click("#login button[type=submit]")
        expect(page.locator("main h1")).to_contain_text(f"Queue {name}")
        expect(page.locator("#queue-props")).to_be_visible()
    finally:
        amqp.queue_delete(name)


def test_the_page_of_a_queue_deleted_elsewhere_says_it_is_gone(page, amqp):
    name = f"ui.gone.{uuid.uuid4().hex[:6]}"
    amqp.queue_declare(name)
    login(page)
    page.goto(UI_URL + f"#/queue/%2F/{name}")
    expect(page.locator("#queue-props")).to_be_visible()
    amqp.queue_delete(name)
    expect(page.locator("#gone")).to_have_text("Not found")


def test_a_message_published_in_the_ui_is_consumed_over_amqp(page, amqp):
    name = f"ui.pub.{uuid.uuid4().hex[:6]}"
    amqp.queue_declare(name)
    try:
        login(page)
        page.goto(UI_URL + f"#/queue/%2F/{name}")
        expect(page.locator("#queue-props")).to_be_visible()
        page.fill("#pub-payload", "hello from the UI")
        page.click("#publish button[type=submit]")
        expect(page.locator("#toast")).to_have_text("message published")
        body = None
        deadline = time.time() + PATIENCE_MS / 1000
        while body is None and time.time() < deadline:
            method, _, body = amqp.basic_get(name, auto_ack=True)
        assert body == b"hello from the UI"

        amqp.basic_publish("", name, b"fetch me")
        page.click("#get button[type=submit]")
        expect(page.locator("#got")).to_contain_text("fetch me")
        shot(page, "queue")
        page.click("#purge")
        expect(page.locator("[data-key=Ready]")).to_have_text("0", timeout=PATIENCE_MS)
    finally:
        amqp.queue_delete(name)


def test_the_overview_rate_chart_moves_with_traffic(page, amqp):
    name = f"ui.rate.{uuid.uuid4().hex[:6]}"
    amqp.queue_declare(name)
    stop = threading.Event()

    def publish():
        c = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
        ch = c.channel()
        while not stop.is_set():
            for _ in range(50):
                ch.basic_publish("", name, b"tick")
            c.sleep(0.05)
        c.close()

    t = threading.Thread(target=publish, daemon=True)
    t.start()
    try:
        login(page)
        chart = page.locator(".chart[data-title='Message rates']")
        expect(chart).to_be_visible()
        # The chart has drawn samples, and its latest publish rate is above zero.
        page.wait_for_function(
            """() => { const c = document.querySelector(".chart[data-title='Message rates']");
                       return c && Number(c.dataset.points) >= 3 && JSON.parse(c.dataset.last || "[0]")[0] > 0; }""",
            timeout=PATIENCE_MS)
        expect(page.locator("#rate-publish .n")).not_to_have_text("0/s")
        expect(chart.locator("canvas")).to_have_count(1)
        shot(page, "overview")
    finally:
        stop.set()
        t.join()
        amqp.queue_delete(name)


def test_declare_and_delete_through_the_forms(page, amqp):
    q, x = f"ui.form.{uuid.uuid4().hex[:6]}", f"ui.x.{uuid.uuid4().hex[:6]}"
    login(page)
    page.goto(UI_URL + "#/queues")
    page.fill("#q-name", q)
    page.select_option("#q-durable", "true")
    page.fill("#q-args", '{"x-max-length": 5}')
    page.click("#add-queue button[type=submit]")
    expect(page.locator("#toast")).to_have_text("queue declared")
    ok = amqp.queue_declare(q, passive=True)
    assert ok.method.queue == q
    page.goto(UI_URL + "#/exchanges")
    page.fill("#x-name", x)
    page.select_option("#x-type", "fanout")
    page.click("#add-exchange button[type=submit]")
    expect(page.locator("#list-exchanges")).to_contain_text(x)
    shot(page, "exchanges")
    amqp.exchange_declare(x, "fanout", passive=True)

    page.goto(UI_URL + f"#/queue/%2F/{q}")
    page.fill("#bind-x", x)
    page.click("#bind button[type=submit]")
    expect(page.locator("#queue-bindings")).to_contain_text(x)
    page.once("dialog", lambda d: d.accept())
    page.click("#delete")
    expect(page.locator("h1")).to_have_text("Queues")
    with pytest.raises(pika.exceptions.ChannelClosedByBroker):
        amqp.queue_declare(q, passive=True)
    amqp.connection.channel().exchange_delete(x)


def test_every_page_renders(page, amqp):
    amqp.queue_declare("ui.pages", durable=True)
    amqp.basic_consume("ui.pages", lambda *a: None)
    login(page)
    for kind, table in [("connections", "#list-connections"), ("channels", "#list-channels"),
                        ("consumers", "#list-consumers"), ("users", "#list-users"),
                        ("vhosts", "#list-vhosts"), ("policies", "#list-policies")]:
        page.goto(UI_URL + f"#/{kind}")
        expect(page.locator(f"{table} th").first).to_be_visible()
        shot(page, kind)
    page.goto(UI_URL + "#/connections")
    expect(page.locator("#list-connections")).to_contain_text("guest")
    page.goto(UI_URL + "#/consumers")
    expect(page.locator("#list-consumers")).to_contain_text("ui.pages")
    page.goto(UI_URL + "#/exchange/%2F/amq.direct")
    expect(page.locator("h1")).to_contain_text("amq.direct")
    shot(page, "exchange")
    page.goto(UI_URL + "#/admin")
    with page.expect_download() as d:
        page.click("#export")
    defs = json.loads(open(d.value.path()).read())
    assert any(q["name"] == "ui.pages" for q in defs["queues"])
    shot(page, "definitions")
    amqp.queue_delete("ui.pages")


def test_ten_thousand_queues_are_paged_and_filtered(page, amqp):
    names = [f"ui.many.{i:05d}" for i in range(10_000)]
    for n in names:
        amqp.queue_declare(n)
    try:
        login(page)
        page.goto(UI_URL + "#/queues")
        expect(page.locator("#count")).to_have_text(re.compile(r"^10,\d{3} of 10,\d{3}$"))
        page.fill("#filter", "ui.many.0999")
        expect(page.locator("#count")).to_have_text(re.compile(r"^10 of 10,\d{3}$"))
        expect(page.locator("#list-queues tr")).to_have_count(11)
        page.fill("#filter", "ui.many.")
        expect(page.locator(".pager")).to_contain_text("Page 1 of 200")
        page.click(".pager >> text=Next")
        expect(page.locator(".pager")).to_contain_text("Page 2 of 200")
        expect(page.locator("#list-queues tr").nth(1)).to_contain_text("ui.many.00050")
        shot(page, "queues-10k")
        page.goto(UI_URL + "#/")
        expect(page.locator("#total-queues .n")).to_have_text(re.compile(r"^10,\d{3}$"))
    finally:
        for n in names:
            amqp.queue_delete(n)
