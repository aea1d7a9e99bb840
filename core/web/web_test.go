package web_test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/zoe-project/zoe/internal/testutil"
)

// TestPages drives the pages of one daemon served under /zoe.
func TestPages(t *testing.T) {
	e := newEnv(t, "/zoe")

	t.Run("login", func(t *testing.T) {
		e := e.with(t)
		b := e.browser()
		a := b.get("/")
		if a.status != http.StatusSeeOther || a.location() != "/zoe/login" {
			t.Fatalf("home without a session: %d to %q, want 303 to /zoe/login", a.status, a.location())
		}
		a = b.login("alice", "wrong", "")
		if a.status != http.StatusUnauthorized || !strings.Contains(a.body, `id="login-error"`) || b.sessionCookie() != nil {
			t.Errorf("wrong password: %d, session %v\n%s", a.status, b.sessionCookie(), a.body)
		}
		a = b.login("alice", passwords["alice"], "/zoe/executions?status=running")
		if a.status != http.StatusSeeOther || a.location() != "/zoe/executions?status=running" {
			t.Fatalf("right password: %d to %q", a.status, a.location())
		}
		var raw string
		for _, c := range a.header.Values("Set-Cookie") {
			if strings.HasPrefix(c, "zoe_session=") {
				raw = c
			}
		}
		for _, want := range []string{"Path=/zoe", "HttpOnly", "SameSite=Lax", "Expires="} {
			if !strings.Contains(raw, want) {
				t.Errorf("session cookie %q lacks %s", raw, want)
			}
		}
		if strings.Contains(raw, "Secure") {
			t.Errorf("session cookie %q is Secure on plain HTTP (the browser would not send it)", raw)
		}
		if home := b.get("/"); home.status != 200 || !strings.Contains(home.body, "Welcome, alice") {
			t.Errorf("home: %d", home.status)
		}
	})

	t.Run("no open redirect", func(t *testing.T) {
		e := e.with(t)
		for _, next := range []string{"//evil.example/", "https://evil.example/", "/\\evil.example", "/other/path",
			"/zoe/../evil", "/zoe/../evil/", "/zoe/x/../../evil/", "/zoe//evil/", "javascript:alert(1)", "/zoe/api/v1/me", "\t//evil.example"} {
			a := e.browser().login("bob", passwords["bob"], next)
			if a.status != http.StatusSeeOther || a.location() != "/zoe/" {
				t.Errorf("next=%q: %d to %q, want /zoe/", next, a.status, a.location())
			}
		}
		// A service's address through the proxy, with its trailing slash,
		// is where the proxy's login link comes back to.
		for _, next := range []string{"/zoe/proxy/1/main0/8888/", "/zoe/proxy/1/main0/8888/lab/?x=1", "/zoe/executions"} {
			if a := e.browser().login("bob", passwords["bob"], next); a.status != http.StatusSeeOther || a.location() != next {
				t.Errorf("next=%q: %d to %q, want it kept", next, a.status, a.location())
			}
		}
	})

	t.Run("csrf", func(t *testing.T) {
		e := e.with(t)
		b := e.as("alice")
		ex := b.follow(b.startDemo(nil))
		action := regexp.MustCompile(`/zoe/executions/\d+/terminate`).FindString(ex.body)
		if action == "" {
			t.Fatalf("no terminate form:\n%s", ex.body)
		}
		for name, form := range map[string]url.Values{"missing": {}, "wrong": {"csrf": {"x" + csrf(t, ex.body, action)}}} {
			if a := b.do("POST", action, form); a.status != http.StatusForbidden || !strings.Contains(a.body, "security token") {
				t.Errorf("%s token: %d", name, a.status)
			}
		}
		// Another user's token is no token.
		bob := e.as("bob")
		other := csrf(t, bob.get("/").body, "/zoe/logout")
		if a := b.do("POST", action, url.Values{"csrf": {other}}); a.status != http.StatusForbidden {
			t.Errorf("bob's token on alice's form: %d", a.status)
		}
		// A cross-site form post is refused even with the token.
		b.header.Set("Sec-Fetch-Site", "cross-site")
		if a := b.do("POST", action, url.Values{"csrf": {csrf(t, ex.body, action)}}); a.status != http.StatusForbidden {
			t.Errorf("cross-site post: %d", a.status)
		}
		b.header.Del("Sec-Fetch-Site")
		// The login form without its token.
		if a := e.browser().post("/login", url.Values{"username": {"alice"}, "password": {passwords["alice"]}}); a.status != http.StatusForbidden {
			t.Errorf("login without a token: %d", a.status)
		}
		// With it, the form works.
		if a := b.do("POST", action, url.Values{"csrf": {csrf(t, ex.body, action)}}); a.status != http.StatusSeeOther {
			t.Errorf("terminate with the token: %d %s", a.status, a.body)
		}
	})

	t.Run("logout revokes the token", func(t *testing.T) {
		e := e.with(t)
		b := e.as("alice")
		tok := b.sessionCookie().Value
		_, bearer, _ := strings.Cut(tok, ".")
		if st := e.apiStatus(bearer, "GET", "/me", ""); st != 200 {
			t.Fatalf("the session's token before logout: %d", st)
		}
		a := b.post("/logout", url.Values{"csrf": {csrf(t, b.get("/").body, "/zoe/logout")}})
		if a.status != http.StatusSeeOther || !strings.HasPrefix(a.location(), "/zoe/login") {
			t.Errorf("logout: %d to %q", a.status, a.location())
		}
		if st := e.apiStatus(bearer, "GET", "/me", ""); st != http.StatusUnauthorized {
			t.Errorf("the session's token after logout: %d, want 401", st)
		}
		if b.sessionCookie() != nil {
			t.Error("the cookie is kept after logout")
		}
		// The old cookie, replayed, leads to the login page with a message.
		b2 := e.browser()
		u, _ := url.Parse(e.addr + "/zoe/")
		b2.c.Jar.SetCookies(u, []*http.Cookie{{Name: "zoe_session", Value: tok, Path: "/zoe"}})
		a = b2.get("/executions")
		if a.status != http.StatusSeeOther || a.location() != "/zoe/login?next=%2Fzoe%2Fexecutions&why=expired" {
			t.Errorf("revoked session: %d to %q", a.status, a.location())
		}
		if page := b2.follow(a); !strings.Contains(page.body, "Your session has ended") {
			t.Errorf("no message on the login page:\n%s", page.body)
		}
	})

	t.Run("guest", func(t *testing.T) {
		e := e.with(t)
		g := e.as("gus")
		a := g.startDemo(nil)
		if a.status != http.StatusSeeOther || !regexp.MustCompile(`^/zoe/executions/\d+$`).MatchString(a.location()) {
			t.Fatalf("a guest starting a shop entry: %d to %q\n%s", a.status, a.location(), a.body)
		}
		if page := g.follow(a); page.status != 200 || !strings.Contains(page.body, "demo run") {
			t.Errorf("the guest's execution page: %d", page.status)
		}
		_, bearer, _ := strings.Cut(g.sessionCookie().Value, ".")
		for _, path := range []string{"/me", "/executions", "/shop"} {
			if st := e.apiStatus(bearer, "GET", path, ""); st != http.StatusForbidden {
				t.Errorf("the guest's token on the API, GET %s: %d, want 403", path, st)
			}
		}
		if st := e.apiStatus(bearer, "POST", "/executions", `{"shop":{"id":"demo-0"}}`); st != http.StatusForbidden {
			t.Errorf("the guest's token starting through the API: %d, want 403", st)
		}
		if page := g.get("/upload"); page.status != http.StatusForbidden {
			t.Errorf("the upload page for a guest: %d", page.status)
		}
		up := g.post("/upload", url.Values{"csrf": {csrf(t, g.get("/").body, "/zoe/logout")}, "description": {demo}})
		if up.status != http.StatusForbidden || !strings.Contains(up.body, "guests may start shop entries only") {
			t.Errorf("a guest's own ZApp: %d\n%s", up.status, up.body)
		}
	})

	t.Run("users are isolated", func(t *testing.T) {
		e := e.with(t)
		alice := e.as("alice")
		loc := alice.startDemo(nil).location()
		bob := e.as("bob")
		for _, path := range []string{loc, loc + "/events"} {
			if a := bob.do("GET", path, nil); a.status != http.StatusNotFound {
				t.Errorf("bob GET %s: %d, want 404", path, a.status)
			}
		}
		svc := regexp.MustCompile(`/zoe/services/\d+/log`).FindString(alice.do("GET", loc, nil).body)
		if svc == "" {
			t.Fatal("no log link on the execution page")
		}
		for _, path := range []string{svc, svc + "/live"} {
			if a := bob.do("GET", path, nil); a.status != http.StatusNotFound {
				t.Errorf("bob GET %s: %d, want 404", path, a.status)
			}
		}
		if a := bob.do("POST", loc+"/terminate", url.Values{"csrf": {csrf(t, bob.get("/").body, "/zoe/logout")}}); a.status != http.StatusNotFound {
			t.Errorf("bob terminating alice's execution: %d, want 404", a.status)
		}
	})

	t.Run("bad parameter shown beside its field", func(t *testing.T) {
		e := e.with(t)
		a := e.as("alice").startDemo(url.Values{"p.THREADS": {"99"}})
		if a.status != http.StatusBadRequest {
			t.Fatalf("THREADS=99: %d", a.status)
		}
		doc, _ := html.Parse(strings.NewReader(a.body))
		var help string
		for n := range doc.Descendants() {
			if n.Type == html.ElementNode && n.Data == "input" && attr(n, "name") == "p.THREADS" {
				if attr(n, "aria-invalid") != "true" {
					t.Error("the field is not marked invalid")
				}
				help = attr(n, "aria-describedby")
			}
		}
		found := false
		for n := range doc.Descendants() {
			if n.Type == html.ElementNode && attr(n, "id") == help && help != "" {
				found = strings.Contains(text(n), "8")
				if !found {
					t.Errorf("the field's help says %q", text(n))
				}
			}
		}
		if !found {
			t.Errorf("no error beside the field:\n%s", a.body)
		}
		if !strings.Contains(a.body, `value="99"`) {
			t.Error("the value sent is not kept")
		}
	})

	t.Run("a number left empty keeps the default", func(t *testing.T) {
		e := e.with(t)
		if a := e.as("alice").startDemo(url.Values{"p.THREADS": {" "}}); a.status != http.StatusSeeOther {
			t.Fatalf("THREADS left empty: %d, want the execution started (303):\n%s", a.status, a.body)
		}
	})

	t.Run("services' memory and cores, and the quota at home", func(t *testing.T) {
		e := e.with(t)
		dora := e.as("dora")
		root := e.as("root")
		_, admin, _ := strings.Cut(root.sessionCookie().Value, ".")
		if st := e.apiStatus(admin, "POST", "/quotas", `{"name": "web-small", "concurrent_executions": 3, "cores": 4, "memory": 4294967296}`); st != http.StatusCreated {
			t.Fatalf("creating a quota: %d", st)
		}
		if st := e.apiStatus(admin, "PATCH", "/users/dora", `{"quota": "web-small"}`); st != http.StatusOK {
			t.Fatalf("giving dora the quota: %d", st)
		}

		// The fields, labelled, with the entry's values.
		page := dora.get("/shop/demo-0")
		checkPage(t, "start page with resources", page)
		mem, cores := input(t, page.body, "r.main.memory"), input(t, page.body, "r.main.cores")
		if mem == nil || cores == nil {
			t.Fatalf("no memory or cores field:\n%s", page.body)
		}
		if !strings.Contains(page.body, "The entry asks for 256MiB.") || !strings.Contains(page.body, "The entry asks for 0.5.") {
			t.Error("the fields' help does not say what the entry asks for")
		}
		if attr(mem, "value") != "256MiB" || attr(cores, "value") != "0.5" || attr(cores, "type") != "number" {
			t.Errorf("the fields' values: memory %q, cores %q", attr(mem, "value"), attr(cores, "value"))
		}

		// Started with them: the execution reserves what was asked.
		a := dora.startDemo(url.Values{"r.main.memory": {"1GiB"}, "r.main.cores": {"1.5"}})
		if a.status != http.StatusSeeOther {
			t.Fatalf("start with resources: %d\n%s", a.status, a.body)
		}
		if ex := dora.follow(a); !strings.Contains(ex.body, "1.5 cores, 1.0 GiB") {
			t.Errorf("the execution does not reserve 1.5 cores and 1 GiB:\n%s", ex.body)
		}

		// Wrong values, each beside its field, kept as sent.
		for _, c := range []struct {
			name, field, value, says string
			status                   int
		}{
			{"too little memory (the API)", "r.main.memory", "100", "at least 1024 bytes", http.StatusBadRequest},
			{"above the administrative limit (the API)", "r.main.cores", "17", "max_service_cores", http.StatusBadRequest},
			{"not a size (the page)", "r.main.memory", "lots", "not a size", http.StatusBadRequest},
			{"not a number (the page)", "r.main.cores", "many", "not a number of cores", http.StatusBadRequest},
		} {
			a := dora.startDemo(url.Values{c.field: {c.value}})
			if a.status != c.status {
				t.Errorf("%s: %d, want %d", c.name, a.status, c.status)
				continue
			}
			if msg := fieldError(t, a.body, c.field); !strings.Contains(msg, c.says) {
				t.Errorf("%s: beside the field: %q, want %q\n%s", c.name, msg, c.says, a.body)
			}
			if in := input(t, a.body, c.field); in == nil || attr(in, "value") != c.value {
				t.Errorf("%s: the value sent is not kept", c.name)
			}
			checkPage(t, c.name, a)
		}
		// More than the quota leaves: the form again, saying so.
		a = dora.startDemo(url.Values{"r.main.cores": {"3"}})
		if a.status != http.StatusConflict || !strings.Contains(a.body, "web-small") || input(t, a.body, "r.main.cores") == nil {
			t.Errorf("over quota: %d\n%s", a.status, a.body)
		}

		// Home: the limits and what is used, as meters.
		home := dora.get("/")
		checkPage(t, "home with a quota", home)
		for id, want := range map[string][2]string{
			"quota-executions": {"3", "1"}, "quota-cores": {"4", "1.5"}, "quota-memory": {"4294967296", "1073741824"},
		} {
			m := element(t, home.body, "meter", id)
			if m == nil || attr(m, "max") != want[0] || attr(m, "value") != want[1] || attr(m, "min") != "0" {
				t.Errorf("meter %s: %v, want max %s value %s\n%s", id, m, want[0], want[1], home.body)
			}
		}
		for _, s := range []string{"web-small", "1.5 of 4", "1 of 3", "1.0 GiB of 4.0 GiB"} {
			if !strings.Contains(home.body, s) {
				t.Errorf("home does not say %q", s)
			}
		}
		// A user without limits on cores and memory: no meter for them.
		bob := e.as("bob").get("/")
		if element(t, bob.body, "meter", "quota-cores") != nil || !strings.Contains(bob.body, "(no limit)") ||
			element(t, bob.body, "meter", "quota-executions") == nil {
			t.Errorf("bob's home (5 executions, no other limit):\n%s", bob.body)
		}

		// Guests: no fields, and a form made by hand is refused by the API.
		gus := e.as("gus")
		gpage := gus.get("/shop/demo-0")
		if input(t, gpage.body, "r.main.memory") != nil || input(t, gpage.body, "r.main.cores") != nil {
			t.Error("a guest's start page has resource fields")
		}
		a = gus.startDemo(url.Values{"r.main.cores": {"2"}})
		if a.status != http.StatusForbidden || !strings.Contains(a.body, "guests may not change the resources") {
			t.Errorf("a guest's resources: %d\n%s", a.status, a.body)
		}
		if m := element(t, gus.get("/").body, "meter", "quota-executions"); m == nil || attr(m, "max") != "1" {
			t.Errorf("the guest's home: no meter of 1 execution: %v", m)
		}
	})

	t.Run("upload lists problems by JSON path", func(t *testing.T) {
		e := e.with(t)
		b := e.as("alice")
		tok := csrf(t, b.get("/upload").body, "/zoe/upload")
		bad := strings.Replace(demo, `"image": "zoe/test:1"`, `"image": ""`, 1)
		bad = strings.Replace(bad, `"total_count": 1`, `"total_count": 0`, 1)
		a := b.post("/upload", url.Values{"csrf": {tok}, "description": {bad}, "name": {"mine"}})
		if a.status != http.StatusBadRequest {
			t.Fatalf("a bad ZApp: %d", a.status)
		}
		for _, path := range []string{"description.services[0].image", "description.services[0].total_count"} {
			if !strings.Contains(a.body, path) {
				t.Errorf("%s not listed:\n%s", path, a.body)
			}
		}
		a = b.post("/upload", url.Values{"csrf": {tok}, "description": {"{\n  \"name\": \"x\",\n  oops\n}"}})
		if a.status != http.StatusBadRequest || !strings.Contains(a.body, "line 3, column 3:") {
			t.Errorf("JSON that does not parse: %d\n%s", a.status, a.body)
		}
		a = b.post("/upload", url.Values{"csrf": {tok}, "description": {demo}, "name": {"mine"}})
		if a.status != http.StatusSeeOther {
			t.Errorf("a good ZApp: %d\n%s", a.status, a.body)
		}
		// As a file, the way the form sends it.
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		_ = mw.WriteField("csrf", tok)
		_ = mw.WriteField("name", "from a file")
		fw, _ := mw.CreateFormFile("file", "bad.json")
		_, _ = fw.Write([]byte(bad))
		_ = mw.Close()
		req, _ := http.NewRequest("POST", e.addr+"/zoe/upload", &body)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		resp, err := b.c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(page), "description.services[0].image") {
			t.Errorf("a bad ZApp as a file: %d\n%s", resp.StatusCode, page)
		}
	})

	t.Run("pages parse and load nothing from elsewhere", func(t *testing.T) {
		e := e.with(t)
		b := e.as("alice")
		ex := b.startDemo(nil).location()
		testutil.WaitFor(t, 30*time.Second, "the execution runs", func() (bool, string) {
			a := b.do("GET", ex, nil)
			return strings.Contains(a.body, `id="ex-status" class="badge ok">running`), ""
		})
		pages := map[string]answer{"login": e.browser().get("/login"), "missing": b.get("/nope")}
		for _, p := range []string{"/", "/shop", "/shop/demo-0", "/upload", "/executions", "/executions?status=running&name=demo"} {
			pages[p] = b.get(p)
		}
		pages["execution"] = b.do("GET", ex, nil)
		for name, a := range pages {
			checkPage(t, name, a)
		}
		page := pages["execution"].body
		id := strings.TrimPrefix(ex, "/zoe/executions/")
		if !strings.Contains(page, `href="/zoe/proxy/`+id+`/main0/8888/lab"`) {
			t.Errorf("no proxy link for port 8888:\n%s", page)
		}
		if strings.Contains(page, "/proxy/"+id+"/main0/22/") {
			t.Error("port 22 (not proxy) is linked through the proxy")
		}
		if logo := b.get("/shop/demo-0/logo"); logo.status != 200 || logo.header.Get("Content-Type") != "image/png" ||
			!strings.Contains(pages["/shop"].body, `src="/zoe/shop/demo-0/logo"`) {
			t.Errorf("the logo: %d %s", logo.status, logo.header.Get("Content-Type"))
		}
		custom := b.get("/upload?from=demo-0")
		checkPage(t, "upload from the shop", custom)
		if !strings.Contains(custom.body, "&#34;total_count&#34;: 1") {
			t.Errorf("the upload form is not filled with the entry's description:\n%s", custom.body)
		}
		shop := pages["/shop"].body + pages["/shop/demo-0"].body
		if strings.Contains(shop, "<script>alert") || strings.Contains(shop, "onerror") || strings.Contains(shop, "evil.example") {
			t.Errorf("the shop's README is not sanitised:\n%s", shop)
		}
		if strings.Count(shop, "<em>demo</em>") != 2 {
			t.Error("the shop's README is not rendered")
		}
	})

	t.Run("live events", func(t *testing.T) {
		e := e.with(t)
		b := e.as("alice")
		ex := b.startDemo(nil).location()
		ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
		defer cancel()
		lines := b.stream(ctx, t, ex+"/events?after=0")
		saw := map[string]bool{}
		for line := range lines {
			for _, st := range []string{"running", "terminated"} {
				if strings.HasPrefix(line, "data: ") && strings.Contains(line, `"to":"`+st+`"`) && !strings.Contains(line, `"service"`) {
					if st == "running" && !saw["running"] {
						// Terminate through the page; the stream must say so.
						page := b.do("GET", ex, nil)
						b.do("POST", ex+"/terminate", url.Values{"csrf": {csrf(t, page.body, ex+"/terminate")}})
					}
					saw[st] = true
				}
			}
			if saw["terminated"] {
				break
			}
		}
		if !saw["running"] || !saw["terminated"] {
			t.Errorf("the event stream showed %v", saw)
		}
	})

	t.Run("live log and download", func(t *testing.T) {
		e := e.with(t)
		b := e.as("alice")
		ex := b.startDemo(url.Values{"p.ZOE_SIM_LOG": {"first line|second line"}}).location()
		svc := regexp.MustCompile(`/zoe/services/\d+/log`).FindString(b.do("GET", ex, nil).body)
		ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
		defer cancel()
		got := false
		for line := range b.stream(ctx, t, svc+"/live") {
			if line == "data: second line" {
				got = true
				break
			}
		}
		if !got {
			t.Error("the live log never showed its line")
		}
		a := b.do("GET", svc, nil)
		if a.status != 200 || !strings.Contains(a.body, "second line") ||
			!regexp.MustCompile(`^attachment; filename="zoe-\d+-main0\.log"$`).MatchString(a.header.Get("Content-Disposition")) {
			t.Errorf("download: %d %q\n%s", a.status, a.header.Get("Content-Disposition"), a.body)
		}
	})

	t.Run("base path routing", func(t *testing.T) {
		e := e.with(t)
		b := e.browser()
		for _, tc := range []struct {
			path   string
			status int
			want   string
		}{
			{"/zoe", http.StatusMovedPermanently, ""},
			{"/zoe/api/v1/info", 200, `"deployment_name":"webtest"`},
			{"/zoe/api/v1/nope", 404, "no such API route"},
			{"/api/v1/info", 404, "served under /zoe/"},
			{"/", 404, "served under /zoe/"},
			{"//zoe/api/v1/info", 404, "plain form"},
			// The proxy, mounted by the daemon: log in first.
			{"/zoe/proxy/1/main/8888/", 401, "log in as its owner"},
			{"/zoe/static/zoe.css", 200, "contrast"},
		} {
			a := b.do("GET", tc.path, nil)
			if a.status != tc.status || !strings.Contains(a.body, tc.want) {
				t.Errorf("GET %s: %d, want %d with %q\n%s", tc.path, a.status, tc.status, tc.want, a.body)
			}
		}
	})

	// Last: it locks dora out.
	t.Run("login throttling reached through the pages", func(t *testing.T) {
		e := e.with(t)
		b := e.browser()
		b.header.Set("X-Forwarded-For", "203.0.113.7")
		locked := 0
		for range 8 {
			if a := b.login("dora", "wrong", ""); a.status == http.StatusTooManyRequests {
				locked++
			}
		}
		if locked == 0 {
			t.Fatal("no failed login was ever throttled through the pages")
		}
		// The lock is of that client (X-Forwarded-For from a trusted
		// proxy, passed on by the pages): another client logs in.
		other := e.browser()
		other.header.Set("X-Forwarded-For", "203.0.113.8")
		if a := other.login("dora", passwords["dora"], ""); a.status != http.StatusSeeOther {
			t.Errorf("dora from another address: %d\n%s", a.status, a.body)
		}
	})
}

// TestRootBasePath: without base_path the pages are at / and the API at
// /api/v1.
func TestRootBasePath(t *testing.T) {
	e := newEnv(t, "")
	b := e.as("alice")
	if a := b.get("/"); a.status != 200 || !strings.Contains(a.body, `href="/shop"`) {
		t.Errorf("home: %d\n%s", a.status, a.body)
	}
	if c := b.sessionCookie(); c == nil {
		t.Error("no session cookie")
	}
	if a := b.do("GET", "/api/v1/info", nil); a.status != 200 {
		t.Errorf("the API: %d", a.status)
	}
	if a := b.do("GET", "//api/v1/info", nil); a.status != 404 || !strings.Contains(a.body, "plain form") {
		t.Errorf("//api/v1/info: %d %s (the API's own refusal)", a.status, a.body)
	}
	checkPage(t, "home", b.get("/"))
}

// stream GETs a path and sends its lines until ctx ends or it closes.
func (b *browser) stream(ctx context.Context, t *testing.T, path string) <-chan string {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", b.e.addr+path, nil)
	resp, err := (&http.Client{Jar: b.c.Jar}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		resp.Body.Close()
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	out := make(chan string)
	go func() {
		defer close(out)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			select {
			case out <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
	}()
	t.Cleanup(func() {
		for range out { //nolint:revive // drain so that the reader ends
		}
	})
	return out
}

// checkPage: HTML5 that parses, with the security headers, a viewport, a
// label for every input, and no resource from elsewhere.
func checkPage(t *testing.T, name string, a answer) {
	t.Helper()
	for h, want := range map[string]string{
		"Content-Security-Policy": "default-src 'self'", "X-Content-Type-Options": "nosniff",
		"Referrer-Policy": "same-origin", "Content-Type": "text/html; charset=utf-8",
	} {
		if !strings.Contains(a.header.Get(h), want) {
			t.Errorf("%s: %s is %q", name, h, a.header.Get(h))
		}
	}
	if !strings.Contains(a.header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
		t.Errorf("%s: framing allowed", name)
	}
	if !strings.HasPrefix(a.body, "<!DOCTYPE html>") {
		t.Errorf("%s: no doctype", name)
	}
	doc, err := html.Parse(strings.NewReader(a.body))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	labels, ids := map[string]bool{}, map[string]int{}
	viewport := false
	for n := range doc.Descendants() {
		if n.Type != html.ElementNode {
			continue
		}
		if id := attr(n, "id"); id != "" {
			ids[id]++
			if strings.ContainsAny(id, " \t\n") {
				t.Errorf("%s: id %q has white space", name, id)
			}
		}
		if n.Data == "label" {
			labels[attr(n, "for")] = true
		}
		if n.Data == "meta" && attr(n, "name") == "viewport" {
			viewport = true
		}
		if n.Data == "script" && strings.TrimSpace(text(n)) != "" {
			t.Errorf("%s: an inline script", name)
		}
		for _, at := range []string{"src", "href", "action"} {
			v := strings.ToLower(strings.TrimSpace(attr(n, at)))
			if strings.HasPrefix(v, "http:") || strings.HasPrefix(v, "https:") || strings.HasPrefix(v, "//") || strings.HasPrefix(v, "javascript:") {
				t.Errorf("%s: <%s %s=%q> leads elsewhere", name, n.Data, at, v)
			}
		}
		if attr(n, "style") != "" || attr(n, "onclick") != "" {
			t.Errorf("%s: inline style or handler on <%s>", name, n.Data)
		}
	}
	if !viewport {
		t.Errorf("%s: no viewport", name)
	}
	for id, n := range ids {
		if n > 1 {
			t.Errorf("%s: id %q used %d times", name, id, n)
		}
	}
	for n := range doc.Descendants() {
		if n.Type != html.ElementNode || (n.Data != "input" && n.Data != "select" && n.Data != "textarea") {
			continue
		}
		switch attr(n, "type") {
		case "hidden", "submit":
			continue
		}
		if id := attr(n, "id"); id == "" || !labels[id] {
			t.Errorf("%s: <%s name=%q> has no label", name, n.Data, attr(n, "name"))
		}
	}
	if t.Failed() {
		t.Logf("%s:\n%s", name, a.body)
	}
}

// element is the page's element of that tag and id, nil when there is none.
func element(t *testing.T, page, tag, id string) *html.Node {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	for n := range doc.Descendants() {
		if n.Type == html.ElementNode && n.Data == tag && attr(n, "id") == id {
			return n
		}
	}
	return nil
}

// input is the page's input of that name, nil when there is none.
func input(t *testing.T, page, name string) *html.Node {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	for n := range doc.Descendants() {
		if n.Type == html.ElementNode && n.Data == "input" && attr(n, "name") == name {
			return n
		}
	}
	return nil
}

// fieldError is the error shown beside the input of that name: the text
// of its description, when it is marked invalid.
func fieldError(t *testing.T, page, name string) string {
	t.Helper()
	in := input(t, page, name)
	if in == nil || attr(in, "aria-invalid") != "true" {
		return ""
	}
	help := attr(in, "aria-describedby")
	doc, _ := html.Parse(strings.NewReader(page))
	for n := range doc.Descendants() {
		if n.Type == html.ElementNode && help != "" && attr(n, "id") == help {
			return text(n)
		}
	}
	return ""
}

func text(n *html.Node) string {
	var b strings.Builder
	for d := range n.Descendants() {
		if d.Type == html.TextNode {
			b.WriteString(d.Data)
		}
	}
	return b.String()
}
