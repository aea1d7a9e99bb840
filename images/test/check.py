"""check.py NOTEBOOK_URL DASHBOARD_URL: what smoke.sh checks from beside
the containers, as Zoe's proxy would reach them (the browser's Host and
Origin, the full path with the proxy's prefix).

NOTEBOOK_URL is Jupyter's address with its prefix, DASHBOARD_URL the
scheduler's pages' with theirs. Checks that Jupyter refuses requests without
its token (beside the containers), runs kernel.py in a notebook kernel
through Jupyter's REST and WebSocket API and prints its output; exits 1 at
the first failure.
"""

import http.cookiejar
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

from tornado import httpclient, ioloop, websocket

# The Host a browser sends to Zoe, and Zoe's proxy forwards; CHECK_HOST to
# check through a real Zoe. CHECK_AUTH is the Authorization header every
# request carries: beside the containers "token <ZOE_PROXY_TOKEN>", as Zoe's
# proxy presents it; through a real Zoe, Zoe's own ("Bearer zoe_..."), which
# the proxy replaces with the token.
HOST = os.environ.get("CHECK_HOST", "zoe.example.org")
ORIGIN = "http://" + HOST
AUTH = {"Authorization": os.environ["CHECK_AUTH"]} if os.environ.get("CHECK_AUTH") else {}
DIRECT = not AUTH["Authorization"].lower().startswith("bearer ") if AUTH else True
notebook, dashboard = sys.argv[1].rstrip("/"), sys.argv[2].rstrip("/")
jar = http.cookiejar.CookieJar()
opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # a redirect is an answer to look at, not to follow


# Without cookies or redirects: what anyone reaching the published port
# gets.
bare_opener = urllib.request.build_opener(NoRedirect)


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def request(url, method="GET", body=None, origin=ORIGIN, headers=None):
    h = {"Host": HOST, "Origin": origin, **AUTH, **(headers or {})}
    data = None if body is None else json.dumps(body).encode()
    if data is not None:
        h["Content-Type"] = "application/json"
    try:
        with opener.open(urllib.request.Request(url, data, h, method=method), timeout=60) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


def bare(url, method="GET", headers=None):
    """The status and Location of a request without CHECK_AUTH."""
    h = {"Host": HOST, "Origin": ORIGIN, **(headers or {})}
    data = b"{}" if method == "POST" else None
    try:
        with bare_opener.open(urllib.request.Request(url, data, h, method=method), timeout=60) as r:
            return r.status, r.headers.get("Location", "")
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Location", "")


def wait(url, what):
    deadline = time.time() + 300
    while True:
        try:
            status, body = request(url)
            if status == 200:
                return body
        except OSError as e:
            status, body = e, ""
        if time.time() > deadline:
            fail(f"{what} did not answer 200 on {url}: {status} {body[:200]}")
        time.sleep(2)


# Jupyter under its prefix, and only there.
api = json.loads(wait(notebook + "/api", "Jupyter"))
print("ok: Jupyter", api["version"], "answers on", urllib.parse.urlsplit(notebook).path + "/api")
if DIRECT:  # through Zoe, /api is Zoe's, and Zoe answers for what has no credentials
    root = urllib.parse.urlsplit(notebook)._replace(path="/api").geturl()
    status, _ = request(root)
    if status != 404:
        fail(f"Jupyter answers {status} on /api without the prefix")
    # The published port is open to others on the host: Jupyter itself
    # refuses whoever does not present the token (403 for the API, the
    # login page for pages), and never runs without one.
    for what, hdrs in (("no token", {}), ("a wrong token", {"Authorization": "token wrong"})):
        for method, path in (("GET", "/api/kernels"), ("POST", "/api/kernels"), ("GET", "/api/contents"),
                             ("GET", "/tree")):
            status, location = bare(notebook + path, method, hdrs)
            if status != 403 and not (status in (302, 303) and "/login" in location):
                fail(f"{method} {path} with {what}: {status} {location}, want 403 or a redirect to the login page")
    print("ok: requests without the token, or with a wrong one, refused")
status, page = request(notebook + "/tree")  # may also set the _xsrf cookie
if status != 200 or "<html" not in page:
    fail(f"the notebook's page: {status}")
print("ok: the notebook's page, with the token")
# Not needed by a token-authenticated request, sent all the same as a
# browser's page would.
xsrf = next((c.value for c in jar if c.name == "_xsrf"), "")

# Jupyter skips its origin and XSRF checks for token-authenticated requests,
# which a page of another site cannot make: behind Zoe, whose proxy adds the
# token, the proxy refuses requests its session cookie authenticates that
# come from another origin (core/proxy's tests).
status, body = request(notebook + "/api/kernels", "POST", {"name": "python3"}, headers={"X-XSRFToken": xsrf})
if status != 201:
    fail(f"starting a kernel: {status} {body[:300]}")
kernel = json.loads(body)["id"]
print("ok: a kernel started")


async def run(code):
    ws_url = urllib.parse.urlsplit(notebook)._replace(scheme="ws").geturl()
    req = httpclient.HTTPRequest(f"{ws_url}/api/kernels/{kernel}/channels",
                                 headers={"Host": HOST, "Origin": ORIGIN, **AUTH}, request_timeout=60)
    conn = await websocket.websocket_connect(req)
    msg_id = uuid.uuid4().hex
    await conn.write_message(json.dumps({
        "header": {"msg_id": msg_id, "username": "smoke", "session": uuid.uuid4().hex,
                   "msg_type": "execute_request", "version": "5.3", "date": ""},
        "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
        "content": {"code": code, "silent": False, "store_history": False, "user_expressions": {},
                    "allow_stdin": False, "stop_on_error": True},
    }))
    out = []
    # The reply (shell) may overtake the output (iopub); the kernel's idle
    # status comes after every output of the request.
    replied = idle = False
    while not (replied and idle):
        m = await conn.read_message()
        if m is None:
            fail("the kernel's WebSocket closed")
        m = json.loads(m)
        if m.get("parent_header", {}).get("msg_id") != msg_id:
            continue
        t = m["msg_type"]
        if t == "stream":
            out.append(m["content"]["text"])
        elif t == "error":
            fail("the kernel: " + "\n".join(m["content"]["traceback"]))
        elif t == "status":
            idle = idle or m["content"].get("execution_state") == "idle"
        elif t == "execute_reply":
            replied = True
    conn.close()
    return "".join(out)


with open("/smoke/kernel.py") as f:
    output = ioloop.IOLoop.current().run_sync(lambda: run(f.read()), timeout=600)
print(output, end="")
request(f"{notebook}/api/kernels/{kernel}", "DELETE", headers={"X-XSRFToken": xsrf})

# The scheduler's pages under their prefix, listing both workers.
body = wait(dashboard + "/health", "the scheduler's pages")
if body.strip() != "ok":
    fail(f"the scheduler's /health: {body[:200]}")
body = wait(dashboard + "/info/main/workers.html", "the scheduler's workers page")
if "worker0" not in body or "worker1" not in body:
    fail("the scheduler's workers page does not name worker0 and worker1")
print("ok: the scheduler's pages under", urllib.parse.urlsplit(dashboard).path)
