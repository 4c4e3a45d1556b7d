#!/usr/bin/python3
"""The pages people use, in a real browser (Debian's chromium, driven by
python3-selenium through chromedriver).

    pages.py citizen|ops

Run by tests/integration/it_pages.c, which starts the service and the
emulated line, brings the requests where they must be and passes what the
pages must show in PAGES_* variables. Every check prints "ok" or "FAIL";
the exit status is 0 only when every check passed. Screenshots go to
PAGES_SCREENSHOTS (docs/screenshots), for the README.
"""
import datetime
import json
import os
import re
import shutil
import socket
import sys
import tempfile
import time
import urllib.request

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

ENV = os.environ
BASE = ENV["PAGES_BASE"].rstrip("/")
SHOTS = ENV.get("PAGES_SCREENSHOTS")
PHONE = (360, 780)
DESKTOP = (1280, 900)

AR_MONTHS = ["يناير", "فبراير", "مارس", "أبريل", "مايو", "يونيو", "يوليو", "أغسطس",
             "سبتمبر", "أكتوبر", "نوفمبر", "ديسمبر"]
EN_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
             "September", "October", "November", "December"]

failures = 0


def check(name, ok, detail=""):
    global failures
    if ok:
        print(f"ok   {name}", flush=True)
    else:
        failures += 1
        print(f"FAIL {name}{': ' + str(detail) if detail else ''}", flush=True)
    return ok


def wait_for(fn, timeout=20.0, step=0.2):
    """The first truthy value of fn() within timeout seconds, else None."""
    end = time.monotonic() + timeout
    while True:
        try:
            v = fn()
            if v:
                return v
        except WebDriverException:
            pass
        if time.monotonic() > end:
            return None
        time.sleep(step)


def browser():
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    profile = tempfile.mkdtemp(prefix="pages-chromium-")
    for a in ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
              "--disable-background-networking", "--disable-component-update", "--disable-sync",
              "--disable-dev-shm-usage", "--hide-scrollbars", "--lang=ar",
              "--user-data-dir=" + profile]:
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    d = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    d.set_page_load_timeout(30)
    d.profile_dir = profile
    d.seen_urls = []
    d.console = []
    return d


def collect_logs(d):
    """Moves the browser's console and network logs into d.console and d.seen_urls."""
    for entry in d.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg.get("method") == "Network.requestWillBeSent":
            p = msg["params"]
            d.seen_urls.append((p["request"]["url"], p.get("documentURL", "")))
    d.console.extend(d.get_log("browser"))


def viewport(d, size, full=False):
    w, h = size
    if full:
        h = max(h, d.execute_script("return document.documentElement.scrollHeight"))
    d.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                      {"width": w, "height": h, "deviceScaleFactor": 1, "mobile": w < 600})


def screenshot(d, name, size):
    if not SHOTS:
        return
    os.makedirs(SHOTS, exist_ok=True)
    viewport(d, size)
    time.sleep(0.3)
    viewport(d, size, full=True)
    time.sleep(0.3)
    d.save_screenshot(os.path.join(SHOTS, name))
    viewport(d, size)
    print(f"     screenshot {name}", flush=True)


def click(d, css):
    """Clicks the element; the dashboard redraws its tables every few
    seconds, so an element found just before a redraw is found again."""
    for _ in range(10):
        try:
            d.find_element(By.CSS_SELECTOR, css).click()
            return
        except StaleElementReferenceException:
            time.sleep(0.1)
    raise RuntimeError("cannot click " + css)


def settled(fn):
    """fn()'s value, read again when the dashboard redrew what it read
    (its tables are redrawn every few seconds); None if it never settles."""
    for _ in range(10):
        try:
            return fn()
        except (StaleElementReferenceException, AttributeError):
            time.sleep(0.1)
    return None


def row_text(d, sid):
    return settled(lambda: station_row(d, sid).text)


def text(d, css):
    els = d.find_elements(By.CSS_SELECTOR, css)
    return els[0].text if els else ""


def visible(d, css):
    els = d.find_elements(By.CSS_SELECTOR, css)
    return bool(els) and els[0].is_displayed()


def finish(d, allowed_errors):
    """Checks that no request left the page's origin and that the console
    holds no error but the answers the test asked for (allowed_errors:
    regular expressions over network error messages)."""
    collect_logs(d)
    # The browser's own pages (chrome://new-tab-page before the first
    # navigation) are not the pages' requests; every request a page of
    # ours makes, and every request over the network, goes to our origin.
    ours = [(u, doc) for u, doc in d.seen_urls if doc.startswith(BASE + "/")]
    foreign = [u for u, doc in d.seen_urls
               if (doc.startswith(BASE + "/") or re.match(r"(https?|wss?|ftp):", u))
               and not u.startswith(BASE + "/")]
    check("no request goes to another origin", not foreign and len(ours) > 3, foreign[:5])
    bad = []
    for e in d.console:
        if e.get("level") != "SEVERE":
            continue
        m = e.get("message", "")
        if e.get("source") == "network" and any(re.search(a, m) for a in allowed_errors):
            continue
        bad.append(m)
    check("no console errors", not bad, bad[:5])


def headers_check(path, want_type):
    with urllib.request.urlopen(BASE + path, timeout=10) as r:
        h = r.headers
        body = r.read()
    csp = h.get("Content-Security-Policy", "")
    check(f"{path}: served as {want_type}", h.get("Content-Type", "").startswith(want_type)
          and len(body) > 0, h.get("Content-Type"))
    check(f"{path}: CSP without inline script or style, no framing",
          "script-src 'self'" in csp and "style-src 'self'" in csp and "unsafe-inline" not in csp
          and "frame-ancestors 'none'" in csp and "default-src 'none'" in csp, csp)
    check(f"{path}: nosniff, no referrer",
          h.get("X-Content-Type-Options") == "nosniff" and h.get("Referrer-Policy") == "no-referrer",
          dict(h))
    return body


def riyadh_hhmm(rfc3339):
    t = datetime.datetime.strptime(rfc3339, "%Y-%m-%dT%H:%M:%SZ")
    return (t + datetime.timedelta(hours=3)).strftime("%H:%M")


# ---- the citizen's page ----

def track(d, no, nid):
    d.find_element(By.ID, "request_no").clear()
    d.find_element(By.ID, "request_no").send_keys(no)
    d.find_element(By.ID, "national_id").clear()
    d.find_element(By.ID, "national_id").send_keys(nid)
    d.execute_script("document.getElementById('message').dataset.kind='';"
                     "document.getElementById('result').hidden=true;")
    d.find_element(By.ID, "submit").click()
    return wait_for(lambda: visible(d, "#result") and "result" or
                    d.find_element(By.ID, "message").get_attribute("data-kind"), 15)


def citizen():
    html = headers_check("/", "text/html")
    check("the page names its own script and style sheet only",
          b'src="/track.js"' in html and b"<style" not in html and b"style=" not in html)
    headers_check("/track.js", "text/javascript")
    headers_check("/style.css", "text/css")

    no, nid = ENV["PAGES_REQUEST"], ENV["PAGES_NATIONAL_ID"]
    collect = datetime.date.fromisoformat(ENV["PAGES_COLLECT_BY"])
    d = browser()
    try:
        viewport(d, PHONE)
        d.get(BASE + "/")
        root = d.find_element(By.TAG_NAME, "html")
        check("Arabic first: lang=ar, dir=rtl",
              root.get_attribute("lang") == "ar" and root.get_attribute("dir") == "rtl")
        check("the phone width needs no sideways scrolling",
              d.execute_script("return document.documentElement.scrollWidth") <= PHONE[0])
        got = track(d, no, nid)
        check("tracking answers (Arabic)", got == "result", got)
        check("status in words, Arabic", text(d, "#r-status") == "جاهزة للاستلام من الفرع",
              text(d, "#r-status"))
        steps = d.find_elements(By.CSS_SELECTOR, "#timeline li")
        statuses = [s.get_attribute("data-status") for s in steps]
        check("timeline: every step from queued to ready for collection",
              statuses[:3] == ["queued", "in_production", "produced"]
              and "dispatched" in statuses and statuses.count("delivery_failed") >= 1
              and statuses[-1] == "ready_for_collection", statuses)
        first = steps[0].text if steps else ""
        check("timeline in Arabic, times in Riyadh time",
              "تم استلام الطلب" in first and riyadh_hhmm(ENV["PAGES_QUEUED_AT"]) in first, first)
        check("attempts", text(d, "#r-attempts") == "محاولتان", text(d, "#r-attempts"))
        check("window shown", "2026" in text(d, "#r-window"), text(d, "#r-window"))
        check("branch in both languages (Arabic page)",
              visible(d, "#branch") and text(d, "#b-name-ar") == ENV["PAGES_BRANCH_AR"]
              and text(d, "#b-name-en") == ENV["PAGES_BRANCH_EN"],
              (text(d, "#b-name-ar"), text(d, "#b-name-en")))
        check("branch city", text(d, "#b-city") != "", text(d, "#b-city"))
        c = text(d, "#b-collect")
        check("last day to collect, Arabic",
              str(collect.day) in c and AR_MONTHS[collect.month - 1] in c and str(collect.year) in c,
              c)
        href = d.find_element(By.ID, "b-map").get_attribute("href")
        lat, lon = float(ENV["PAGES_BRANCH_LAT"]), float(ENV["PAGES_BRANCH_LON"])
        check("map link from the branch's coordinates",
              f"mlat={lat:.6f}" in href and f"mlon={lon:.6f}" in href, href)
        screenshot(d, "track-ar-phone.png", PHONE)
        screenshot(d, "track-ar-desktop.png", DESKTOP)
        viewport(d, PHONE)

        d.find_element(By.ID, "lang").click()
        root = d.find_element(By.TAG_NAME, "html")
        check("English one click away: lang=en, dir=ltr",
              root.get_attribute("lang") == "en" and root.get_attribute("dir") == "ltr")
        check("status in words, English",
              text(d, "#r-status") == "Ready for collection at the branch", text(d, "#r-status"))
        got = track(d, no, nid)
        check("tracking answers (English)", got == "result", got)
        first = text(d, "#timeline li")
        check("timeline in English, times in Riyadh time",
              "Request received" in first and riyadh_hhmm(ENV["PAGES_QUEUED_AT"]) in first, first)
        c = text(d, "#b-collect")
        check("last day to collect, English",
              str(collect.day) in c and EN_MONTHS[collect.month - 1] in c, c)
        check("labels in English", text(d, "#branch h3") == "Collection branch"
              and "Last day to collect" in text(d, "#b-collect-row"), text(d, "#branch h3"))
        check("attempts, English", text(d, "#r-attempts") == "2 attempts", text(d, "#r-attempts"))
        screenshot(d, "track-en-phone.png", PHONE)
        screenshot(d, "track-en-desktop.png", DESKTOP)
        viewport(d, PHONE)

        got = track(d, no, ENV["PAGES_OTHER_NATIONAL_ID"])
        check("a wrong ID: the not-found text", got == "not_found"
              and "No request matches" in text(d, "#message"), (got, text(d, "#message")))
        check("a wrong ID shows nothing of the request", not visible(d, "#result"))
        d.find_element(By.ID, "lang").click()
        check("not-found text in Arabic", "لم نجد طلبًا" in text(d, "#message"), text(d, "#message"))
        # The service allows three failed look-ups in five minutes here.
        kinds = []
        for _ in range(4):
            kinds.append(track(d, no, ENV["PAGES_OTHER_NATIONAL_ID"]))
            if kinds[-1] == "wait":
                break
        msg = text(d, "#message")
        check("too many tries: the wait text, Arabic", kinds[-1] == "wait" and "الانتظار" in msg
              and ("دقائق" in msg or "دقيقة" in msg), (kinds, msg))
        screenshot(d, "track-wait-ar-phone.png", PHONE)
        d.find_element(By.ID, "lang").click()
        msg = text(d, "#message")
        m = re.search(r"wait (\d+) minutes?", msg)
        check("too many tries: wait N minutes, from Retry-After", m and 1 <= int(m.group(1)) <= 5,
              msg)
        got = track(d, no, nid)
        check("while blocked, even the right ID waits", got == "wait", got)
        finish(d, [r"/v1/track .*(404|429)"])
    finally:
        d.quit()
        shutil.rmtree(d.profile_dir, ignore_errors=True)


# ---- the operators' dashboard ----

def printer(line):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(ENV["PAGES_PRINTER_CONTROL"])
    s.sendall((line + "\n").encode())
    reply = s.recv(600).decode()
    s.close()
    return reply.strip()


def station_row(d, sid):
    rows = d.find_elements(By.CSS_SELECTOR, f'#stations tr[data-station="{sid}"]')
    return rows[0] if rows else None


def station_is(d, sid, state, reason=None):
    r = station_row(d, sid)
    return r is not None and r.get_attribute("data-state") == state and \
        (reason is None or r.get_attribute("data-reason") == reason)


def summary_value(d, key):
    els = d.find_elements(By.CSS_SELECTOR, f'#summary div[data-key="{key}"]')
    return int(els[0].get_attribute("data-value")) if els else None


def ops():
    headers_check("/ops/", "text/html")
    headers_check("/ops/ops.js", "text/javascript")
    sid, held, late = ENV["PAGES_STATION"], ENV["PAGES_HELD"], ENV["PAGES_LATE"]
    d = browser()
    try:
        viewport(d, DESKTOP)
        d.get(BASE + "/ops/")
        check("sign-in form first", visible(d, "#signin") and not visible(d, "#board"))
        d.find_element(By.ID, "token").send_keys("not-a-token")
        d.find_element(By.CSS_SELECTOR, "#signin button").click()
        check("a wrong token is refused", wait_for(lambda: visible(d, "#signin-error"), 10))
        d.find_element(By.ID, "token").send_keys(ENV["PAGES_OPERATOR_TOKEN"])
        d.find_element(By.CSS_SELECTOR, "#signin button").click()
        check("signed in: the board shows", wait_for(lambda: visible(d, "#board"), 15))
        check("the token is kept for the tab only",
              d.execute_script("return sessionStorage.getItem('cardd.operator_token') !== null"
                               " && localStorage.length === 0 && document.cookie === ''"))
        check("every station shown", wait_for(lambda: station_row(d, "st1") and station_row(d, "st2")))

        row = wait_for(lambda: [r.text for r in
                                d.find_elements(By.CSS_SELECTOR, f'#held tr[data-request="{held}"]')])
        check("the held request is listed with its reason", row and "spoil" in row[0].lower(), row)
        click(d, f'#held button[data-request="{held}"]')
        check("released from the page: it leaves the held list", wait_for(
            lambda: not d.find_elements(By.CSS_SELECTOR, f'#held tr[data-request="{held}"]'), 15))

        check("released from the page: produced, nothing waits or is in production", wait_for(
            lambda: all(summary_value(d, k) == 0 for k in ("waiting", "held", "in_production")), 60),
            text(d, "#summary"))
        check("the station is idle first", wait_for(lambda: station_is(d, sid, "idle"), 30),
              row_text(d, sid))
        check("printer reports ribbon out", printer("fault ribbon_out").startswith("ok"))
        check("the dashboard shows the station in error, ribbon_out, by itself",
              wait_for(lambda: station_is(d, sid, "error", "ribbon_out"), 30),
              row_text(d, sid))
        screenshot(d, "ops-desktop.png", DESKTOP)
        check("a new ribbon (emulator cleared)", printer("clear").startswith("ok"))
        click(d, f'#stations button[data-station="{sid}"][data-action="resume"]')
        check("after resume, the station is idle again",
              wait_for(lambda: station_is(d, sid, "idle") or station_is(d, sid, "busy"), 30),
              row_text(d, sid))

        click(d, '#stations button[data-station="st2"][data-action="pause"]')
        check("pause from the page: the station shows paused",
              wait_for(lambda: station_is(d, "st2", "paused"), 15),
              row_text(d, "st2"))
        click(d, '#stations button[data-station="st2"][data-action="resume"]')
        check("resume from the page: the station works again",
              wait_for(lambda: station_is(d, "st2", "idle") or station_is(d, "st2", "busy"), 15),
              row_text(d, "st2"))

        row = wait_for(lambda: [(r.get_attribute("data-overdue"), r.text) for r in
                                d.find_elements(By.CSS_SELECTOR, f'#atrisk tr[data-request="{late}"]')])
        check("at risk: the request whose window has passed", row and row[0][0] == "yes", row)
        check("at risk: not the request on time",
              not d.find_elements(By.CSS_SELECTOR, f'#atrisk tr[data-request="{ENV["PAGES_ON_TIME"]}"]'))
        rows = settled(lambda: [(r.get_attribute("data-adds-up"), r.text) for r in
                                d.find_elements(By.CSS_SELECTOR, "#stock tbody tr")])
        check("stock per batch, adding up", rows and all(a == "yes" for a, _ in rows), rows)
        bars, total = settled(lambda: (
            len(d.find_elements(By.CSS_SELECTOR, "#chart svg rect.bar-produced")),
            int(d.find_element(By.ID, "chart").get_attribute("data-total") or 0))) or (0, 0)
        check("cards an hour: 24 bars drawn, the cards made in them", bars == 24 and total >= 4,
              (bars, total))
        summary = text(d, "#summary")
        check("summary counts at risk", "At risk" in summary, summary)
        screenshot(d, "ops-phone.png", PHONE)
        d.find_element(By.ID, "signout").click()
        check("sign out forgets the token", d.execute_script(
            "return sessionStorage.getItem('cardd.operator_token') === null"))
        finish(d, [r"/v1/stations .*401", r"/v1/production/\S+ .*401", r"/v1/stock .*401"])
    finally:
        d.quit()
        shutil.rmtree(d.profile_dir, ignore_errors=True)


if __name__ == "__main__":
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    if mode not in ("citizen", "ops"):
        print("usage: pages.py citizen|ops", file=sys.stderr)
        sys.exit(2)
    try:
        citizen() if mode == "citizen" else ops()
    except Exception as e:  # a check that could not run is a failure
        import traceback
        traceback.print_exc()
        check(f"{mode} checks ran to the end", False, repr(e))
    print(f"{mode}: {failures} failed", flush=True)
    sys.exit(1 if failures else 0)
