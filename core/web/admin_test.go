package web_test

import (
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/zoe-project/zoe/internal/htmlcheck"
	"github.com/zoe-project/zoe/internal/testutil"
)

// TestAdminPages drives the admin pages of one daemon served under /zoe:
// root is an admin, alice, bob and dora users, gus a guest.
func TestAdminPages(t *testing.T) {
	e := newEnv(t, "/zoe")
	root := e.as("root")
	// Users exist in the store once they have logged in.
	alice, bob, dora, gus := e.as("alice"), e.as("bob"), e.as("dora"), e.as("gus")

	// A quota to see, edit and delete, and one held by a user.
	mustPost(t, root, "/admin/quotas", "/zoe/admin/quotas", url.Values{"name": {"seen"}, "executions": {"3"}, "cores": {"4"}, "memory": {"8GiB"}, "runtime": {"8h"}})

	// Every admin page, as its admin sees it.
	pages := []string{"/admin/status", "/admin/users", "/admin/users/alice", "/admin/quotas", "/admin/quotas/seen",
		"/admin/quotas/seen/delete", "/admin/logins"}

	t.Run("admins see every page", func(t *testing.T) {
		e := e.with(t)
		root := e.as("root")
		for _, p := range pages {
			a := root.get(p)
			if a.status != http.StatusOK {
				t.Errorf("GET %s as an admin: %d\n%s", p, a.status, a.body)
				continue
			}
			checkAdminPage(t, e, p, a)
		}
		for _, p := range []string{"/admin", "/admin/"} {
			if a := root.get(p); a.status != http.StatusSeeOther || a.location() != "/zoe/admin/status" {
				t.Errorf("%s: %d to %q", p, a.status, a.location())
			}
		}
		// A page says only its own fixed messages.
		if a := root.get("/admin/status?done=" + url.QueryEscape("Send your password to evil.example")); strings.Contains(a.body, "evil") ||
			strings.Contains(a.body, `class="flash"`) {
			t.Error("the status page shows a message from its link")
		}
		if !strings.Contains(root.get("/").body, `href="/zoe/admin/status"`) {
			t.Error("no admin link in an admin's menu")
		}
	})

	t.Run("others are refused", func(t *testing.T) {
		e := e.with(t)
		root, alice, gus := root.in(e), alice.in(e), gus.in(e)
		posts := map[string]url.Values{
			"/admin/users/bob":                 {"role": {"admin"}, "was_role": {""}},
			"/admin/users/bob/enabled":         {"enabled": {"false"}},
			"/admin/users/bob/tokens/1/revoke": {},
			"/admin/quotas":                    {"name": {"mine"}},
			"/admin/quotas/seen":               {"cores": {"100"}},
			"/admin/quotas/seen/delete":        {},
		}
		for _, who := range []struct {
			name string
			b    *browser
		}{{"user", alice}, {"guest", gus}} {
			if strings.Contains(who.b.get("/").body, "/zoe/admin/") {
				t.Errorf("the %s's menu links to the admin pages", who.name)
			}
			for _, p := range append(pages, "/admin", "/admin/", "/admin/users/bob", "/admin/quotas/nope") {
				a := who.b.get(p)
				if a.status != http.StatusForbidden || !strings.Contains(a.body, "for Zoe&#39;s administrators") {
					t.Errorf("GET %s as a %s: %d, want 403\n%s", p, who.name, a.status, a.body)
				}
				// A refusal shows nothing of what the page holds.
				for _, leak := range []string{"<table", "root", "seen", "node1", "Tokens"} {
					if strings.Contains(a.body, leak) {
						t.Errorf("GET %s as a %s shows %q", p, who.name, leak)
					}
				}
				checkAdminPage(t, e, p+" refused", a)
			}
			tok := csrf(t, who.b.get("/").body, "/zoe/logout")
			for p, form := range posts {
				form := cloneForm(form)
				form.Set("csrf", tok)
				if a := who.b.post(p, form); a.status != http.StatusForbidden {
					t.Errorf("POST %s as a %s: %d, want 403", p, who.name, a.status)
				}
			}
		}
		anon := e.browser()
		for _, p := range pages {
			a := anon.get(p)
			if want := "/zoe/login?next=" + url.QueryEscape("/zoe"+p); a.status != http.StatusSeeOther || a.location() != want {
				t.Errorf("GET %s without a session: %d to %q, want %s", p, a.status, a.location(), want)
			}
		}
		for p := range posts {
			if a := anon.post(p, url.Values{}); a.status != http.StatusSeeOther || !strings.HasPrefix(a.location(), "/zoe/login") {
				t.Errorf("POST %s without a session: %d to %q", p, a.status, a.location())
			}
		}
		// Nothing changed.
		if a := root.get("/admin/users/bob"); !strings.Contains(a.body, "<dt>Role</dt><dd>user</dd>") || strings.Contains(a.body, "badge bad\">disabled") {
			t.Errorf("bob changed:\n%s", a.body)
		}
		if a := root.get("/admin/quotas"); strings.Contains(a.body, ">mine<") || !strings.Contains(a.body, "/zoe/admin/quotas/seen") {
			t.Errorf("the quotas changed:\n%s", a.body)
		}
	})

	t.Run("csrf refused on every form", func(t *testing.T) {
		e := e.with(t)
		root, alice := root.in(e), alice.in(e)
		forms := map[string]string{ // action: the page it is on
			"/admin/users/dora":           "/admin/users/dora",
			"/admin/users/dora/enabled":   "/admin/users/dora",
			"/admin/quotas":               "/admin/quotas",
			"/admin/quotas/seen":          "/admin/quotas/seen",
			"/admin/quotas/seen/delete":   "/admin/quotas/seen/delete",
			"/admin/users/dora/tokens/%d": "/admin/users/dora",
		}
		for action, from := range forms {
			page := root.get(from).body
			if strings.Contains(action, "%d") {
				action = regexp.MustCompile(`/admin/users/dora/tokens/\d+/revoke`).FindString(page)
				if action == "" {
					t.Fatalf("no token to revoke on dora's page:\n%s", page)
				}
			}
			good := csrf(t, page, "/zoe"+action)
			other := csrf(t, alice.get("/").body, "/zoe/logout") // alice's, not root's
			for name, tok := range map[string][]string{"missing": nil, "wrong": {"x" + good}, "another user's": {other}} {
				form := url.Values{"enabled": {"false"}, "role": {"guest"}, "name": {"x"}, "cores": {"1"}}
				if tok != nil {
					form["csrf"] = tok
				}
				if a := root.post(action, form); a.status != http.StatusForbidden || !strings.Contains(a.body, "security token") {
					t.Errorf("POST %s with a %s token: %d", action, name, a.status)
				}
			}
		}
		if a := root.get("/admin/users/dora"); !strings.Contains(a.body, "<dt>Role</dt><dd>user</dd>") || !strings.Contains(a.body, "Disable dora") {
			t.Errorf("dora changed:\n%s", a.body)
		}
		if a := root.get("/admin/quotas/seen"); a.status != http.StatusOK {
			t.Errorf("the quota is gone: %d", a.status)
		}
	})

	t.Run("status", func(t *testing.T) {
		e := e.with(t)
		root, alice := root.in(e), alice.in(e)
		// Two executions of 10 of the node's 16 cores: one runs, one waits.
		big := strings.Replace(demo, `"cores": {"min": 0.5`, `"cores": {"min": 10`, 1)
		var locs []string
		for range 2 {
			tok := csrf(t, alice.get("/upload").body, "/zoe/upload")
			a := alice.post("/upload", url.Values{"csrf": {tok}, "description": {big}, "name": {"big run"}})
			if a.status != http.StatusSeeOther {
				t.Fatalf("starting a big ZApp: %d\n%s", a.status, a.body)
			}
			locs = append(locs, a.location())
		}
		var page string
		var queued []string // the waiting one's row
		testutil.WaitFor(t, 30*time.Second, "one runs and one waits", func() (bool, string) {
			page = root.get("/admin/status").body
			queued = nil
			for _, row := range rows(page) {
				// Queued, once the engine has said why it waits.
				if len(row) == 6 && row[0] == "1" && row[3] == "queued" && row[5] != "" {
					queued = row
				}
			}
			// The node counts what runs on it once its services run.
			return queued != nil && strings.Contains(page, "Running executions <small>(1)") &&
				strings.Contains(page, "10.00 of 16.00 reserved"), page
		})
		checkAdminPage(t, e, "status", answer{status: 200, header: root.get("/admin/status").header, body: page})
		id := strings.TrimPrefix(locs[1], "/zoe/executions/")
		if queued[1] != id+" big run" || queued[2] != "alice" {
			t.Errorf("the queue's row: %q, want execution %s of alice", queued, id)
		}
		for _, want := range []string{
			`href="` + locs[1] + `"`, // the waiting one, in the queue
			`href="` + locs[0] + `"`, // the running one
			`<h3 id="node-0-h">node1 <span class="badge ok">ready</span></h3>`,
			`max="16" high="14.4" value="10"`, // its cores
			`max="68719476736"`,               // its memory, 64GiB
			`10.00 of 16.00 reserved`,
			`<dt>Labels</dt><dd><code>ssd</code>, <code>gpu</code></dd>`,
			`href="/zoe/admin/users/alice"`,
		} {
			if !strings.Contains(page, want) {
				t.Errorf("the status page lacks %s", want)
			}
		}
		// The plugins' states.
		var plugins []string
		for _, row := range rows(page) {
			plugins = append(plugins, strings.Join(row, " "))
		}
		for _, kind := range []string{"backend sim", "auth file", "workspace dir"} {
			found := false
			for _, p := range plugins {
				found = found || strings.HasPrefix(p, kind) && strings.Contains(p, " ready ")
			}
			if !found {
				t.Errorf("plugin %s is not shown ready: %q", kind, plugins)
			}
		}
		// An admin opens anyone's execution from there.
		if a := root.do("GET", locs[0], nil); a.status != http.StatusOK || !strings.Contains(a.body, "big run") {
			t.Errorf("alice's execution for an admin: %d", a.status)
		}
		for _, loc := range locs {
			alice.do("POST", loc+"/terminate", url.Values{"csrf": {csrf(t, alice.do("GET", loc, nil).body, loc+"/terminate")}})
		}
	})

	t.Run("users list", func(t *testing.T) {
		e := e.with(t)
		root := root.in(e)
		page := root.get("/admin/users").body
		doc, _ := html.Parse(strings.NewReader(page))
		rows := map[string]string{}
		for n := range doc.Descendants() {
			if n.Type == html.ElementNode && n.Data == "tr" {
				f := strings.Fields(text(n))
				if len(f) > 0 {
					rows[f[0]] = strings.Join(f, " ")
				}
			}
		}
		for user, want := range map[string]string{"root": "root admin yes admin", "alice": "alice user yes user", "gus": "gus guest yes guest"} {
			if !strings.HasPrefix(rows[user], want) || !strings.Contains(rows[user], " UTC") {
				t.Errorf("%s's row: %q, want it to start with %q and show the last login", user, rows[user], want)
			}
		}
	})

	t.Run("change a role", func(t *testing.T) {
		e := e.with(t)
		root := root.in(e)
		_, bearer := bearerOf(e.as("alice"))
		// alice becomes a guest: the API refuses her token.
		a := setUser(t, root, "alice", url.Values{"role": {"guest"}})
		if a.status != http.StatusSeeOther || a.location() != "/zoe/admin/users/alice?done=saved" {
			t.Fatalf("alice to guest: %d %q\n%s", a.status, a.location(), a.body)
		}
		page := root.follow(a)
		if !strings.Contains(page.body, "The changes are saved.") || !strings.Contains(page.body, "<dt>Role</dt><dd>guest (given by an admin; the authentication source says user)</dd>") {
			t.Errorf("alice's page after the change:\n%s", page.body)
		}
		if st := e.apiStatus(bearer, "GET", "/executions", ""); st != http.StatusForbidden {
			t.Errorf("alice's token as a guest on the API: %d, want 403", st)
		}
		// Back to the source's role.
		if a := setUser(t, root, "alice", url.Values{"role": {""}}); a.status != http.StatusSeeOther {
			t.Fatalf("alice back to the source's role: %d\n%s", a.status, a.body)
		}
		if st := e.apiStatus(bearer, "GET", "/executions", ""); st != http.StatusOK {
			t.Errorf("alice's token as a user again: %d", st)
		}
		// A role that is none: said beside the field.
		a = setUser(t, root, "alice", url.Values{"role": {"emperor"}})
		if a.status != http.StatusBadRequest || adminFieldError(t, a.body, "role") == "" {
			t.Errorf("role emperor: %d, error beside the field %q\n%s", a.status, adminFieldError(t, a.body, "role"), a.body)
		}
		// An admin cannot demote themself: said at the top.
		a = setUser(t, root, "root", url.Values{"role": {"user"}})
		if a.status != http.StatusConflict || !strings.Contains(a.body, `id="errors"`) || !strings.Contains(a.body, "your own admin role") {
			t.Errorf("root demoting themself: %d\n%s", a.status, a.body)
		}
		checkAdminPage(t, e, "user page with an error", a)
		// A form that changes nothing sends nothing.
		if a := setUser(t, root, "root", nil); a.location() != "/zoe/admin/users/root?done=nothing" {
			t.Errorf("an unchanged form: %d %q", a.status, a.location())
		}
	})

	t.Run("set a quota", func(t *testing.T) {
		e := e.with(t)
		root := root.in(e)
		a := setUser(t, root, "bob", url.Values{"quota": {"seen"}})
		if a.status != http.StatusSeeOther {
			t.Fatalf("bob's quota: %d\n%s", a.status, a.body)
		}
		if page := root.follow(a).body; !strings.Contains(page, `<dt>Quota</dt><dd><a href="/zoe/admin/quotas/seen">seen</a></dd>`) ||
			!strings.Contains(page, `<option value="seen" selected>`) {
			t.Errorf("bob's page:\n%s", page)
		}
		if page := root.get("/admin/quotas/seen").body; !strings.Contains(page, `href="/zoe/admin/users/bob"`) {
			t.Errorf("the quota's page does not list bob:\n%s", page)
		}
		a = setUser(t, root, "bob", url.Values{"quota": {"nope"}})
		if a.status != http.StatusBadRequest || !strings.Contains(adminFieldError(t, a.body, "quota"), `no quota "nope"`) {
			t.Errorf("an unknown quota: %d %q\n%s", a.status, adminFieldError(t, a.body, "quota"), a.body)
		}
		checkAdminPage(t, e, "user page with a field error", a)
		if a := setUser(t, root, "bob", url.Values{"quota": {""}}); a.status != http.StatusSeeOther {
			t.Errorf("bob back to the default quota: %d", a.status)
		}
	})

	t.Run("set an e-mail address", func(t *testing.T) {
		e := e.with(t)
		root := root.in(e)
		a := setUser(t, root, "bob", url.Values{"email": {"bob@example.org"}})
		if a.status != http.StatusSeeOther {
			t.Fatalf("bob's address: %d\n%s", a.status, a.body)
		}
		if page := root.follow(a).body; !strings.Contains(page, `value="bob@example.org"`) {
			t.Errorf("bob's page does not show the address:\n%s", page)
		}
		a = setUser(t, root, "bob", url.Values{"email": {"not an address\r\nBcc: x@example.org"}})
		if a.status != http.StatusBadRequest || adminFieldError(t, a.body, "email") == "" {
			t.Errorf("a bad address: %d %q\n%s", a.status, adminFieldError(t, a.body, "email"), a.body)
		}
		checkAdminPage(t, e, "user page with an address error", a)
		if a := setUser(t, root, "bob", url.Values{"email": {""}}); a.status != http.StatusSeeOther {
			t.Errorf("bob back to the source's address: %d", a.status)
		}
		if page := root.get("/admin/users/bob").body; !strings.Contains(page, `id="email" name="email" type="email" maxlength="254" value=""`) {
			t.Errorf("bob's page after clearing his address:\n%s", page)
		}
	})

	t.Run("disable a user", func(t *testing.T) {
		e := e.with(t)
		root, bob := root.in(e), bob.in(e)
		_, bearer := bearerOf(bob)
		if st := e.apiStatus(bearer, "GET", "/me", ""); st != http.StatusOK {
			t.Fatalf("bob's token before: %d", st)
		}
		page := root.get("/admin/users/bob").body
		if !strings.Contains(page, "revokes every token they hold at once") {
			t.Error("the page does not say that disabling revokes the tokens")
		}
		a := root.post("/admin/users/bob/enabled", url.Values{"csrf": {csrf(t, page, "/zoe/admin/users/bob/enabled")}, "enabled": {"false"}})
		if a.status != http.StatusSeeOther || a.location() != "/zoe/admin/users/bob?done=disabled" {
			t.Fatalf("disabling bob: %d %q\n%s", a.status, a.location(), a.body)
		}
		if page := root.follow(a).body; !strings.Contains(page, `badge bad">disabled`) || !strings.Contains(page, "Tokens <small>(0)") {
			t.Errorf("bob's page after:\n%s", page)
		}
		if st := e.apiStatus(bearer, "GET", "/me", ""); st != http.StatusUnauthorized {
			t.Errorf("bob's token after he is disabled: %d, want 401", st)
		}
		if a := bob.get("/"); a.status != http.StatusSeeOther || !strings.Contains(a.location(), "/zoe/login") {
			t.Errorf("bob's session after: %d to %q", a.status, a.location())
		}
		if a := e.browser().login("bob", passwords["bob"], ""); a.status == http.StatusSeeOther {
			t.Error("a disabled user logs in")
		}
		// Root cannot disable themself: the page has no such form, and
		// the API refuses a form sent anyway, said at the top.
		self := root.get("/admin/users/root").body
		if strings.Contains(self, `action="/zoe/admin/users/root/enabled"`) {
			t.Error("root's own page offers to disable root")
		}
		a = root.post("/admin/users/root/enabled", url.Values{"csrf": {csrf(t, self, "/zoe/logout")}, "enabled": {"false"}})
		if a.status != http.StatusConflict || !strings.Contains(a.body, "cannot disable yourself") {
			t.Errorf("root disabling themself: %d\n%s", a.status, a.body)
		}
		a = root.post("/admin/users/bob/enabled", url.Values{"csrf": {csrf(t, self, "/zoe/logout")}, "enabled": {"maybe"}})
		if a.status != http.StatusBadRequest {
			t.Errorf("enabled=maybe: %d", a.status)
		}
		// Enabled again, bob logs in; his old token stays revoked.
		page = root.get("/admin/users/bob").body
		a = root.post("/admin/users/bob/enabled", url.Values{"csrf": {csrf(t, page, "/zoe/admin/users/bob/enabled")}, "enabled": {"true"}})
		if a.status != http.StatusSeeOther {
			t.Fatalf("enabling bob: %d\n%s", a.status, a.body)
		}
		e.as("bob")
		if st := e.apiStatus(bearer, "GET", "/me", ""); st != http.StatusUnauthorized {
			t.Errorf("bob's old token after he is enabled again: %d, want 401", st)
		}
	})

	t.Run("revoke a token", func(t *testing.T) {
		e := e.with(t)
		root, alice, dora := root.in(e), alice.in(e), dora.in(e)
		id1, keep := bearerOf(dora)
		other := e.as("dora")
		id2, gone := bearerOf(other)
		page := root.get("/admin/users/dora").body
		for _, id := range []string{id1, id2} {
			if !strings.Contains(page, "<td>"+id+"</td>") {
				t.Errorf("token %s is not listed:\n%s", id, page)
			}
		}
		action := "/zoe/admin/users/dora/tokens/" + id2 + "/revoke"
		a := root.do("POST", action, url.Values{"csrf": {csrf(t, page, action)}})
		if a.status != http.StatusSeeOther || a.location() != "/zoe/admin/users/dora?done=revoked" {
			t.Fatalf("revoking: %d %q\n%s", a.status, a.location(), a.body)
		}
		if st := e.apiStatus(gone, "GET", "/me", ""); st != http.StatusUnauthorized {
			t.Errorf("the revoked token: %d, want 401", st)
		}
		if st := e.apiStatus(keep, "GET", "/me", ""); st != http.StatusOK {
			t.Errorf("dora's other token: %d, want 200", st)
		}
		if page := root.get("/admin/users/dora").body; strings.Contains(page, "<td>"+id2+"</td>") {
			t.Error("the revoked token is still listed")
		}
		// Again, or another user's token under dora's name: the API's 404.
		aid, _ := bearerOf(alice)
		for _, id := range []string{id2, aid} {
			action := "/zoe/admin/users/dora/tokens/" + id + "/revoke"
			if a := root.do("POST", action, url.Values{"csrf": {csrf(t, page, "/zoe/logout")}}); a.status != http.StatusNotFound {
				t.Errorf("revoking token %s as dora's: %d, want 404", id, a.status)
			}
		}
		if _, tok := bearerOf(alice); e.apiStatus(tok, "GET", "/me", "") != http.StatusOK {
			t.Error("alice's token was revoked through dora's page")
		}
	})

	t.Run("quotas", func(t *testing.T) {
		e := e.with(t)
		root := root.in(e)
		a := postForm(t, root, "/admin/quotas", "/zoe/admin/quotas", url.Values{"name": {"small"}, "executions": {"1"}, "cores": {"2.5"}, "memory": {"4GiB"}, "runtime": {"2d"}})
		if a.status != http.StatusSeeOther || a.location() != "/zoe/admin/quotas?done=created" {
			t.Fatalf("creating a quota: %d %q\n%s", a.status, a.location(), a.body)
		}
		list := root.follow(a).body
		if !strings.Contains(list, `<td><a href="/zoe/admin/quotas/small">small</a></td>
<td>1</td>
<td>2.5</td>
<td>4.0 GiB</td>
<td>2d</td>`) {
			t.Errorf("the list:\n%s", list)
		}
		// Bad values, each said beside its field, the values sent kept.
		for _, tc := range []struct {
			name                  string
			form                  url.Values
			status                int
			field, want, notThere string
		}{
			{"cores", url.Values{"name": {"q1"}, "cores": {"many"}}, 400, "new-cores", "must be a number", ""},
			{"memory", url.Values{"name": {"q1"}, "memory": {"lots"}}, 400, "new-memory", `invalid size "lots"`, ""},
			{"runtime", url.Values{"name": {"q1"}, "runtime": {"-1h"}}, 400, "new-runtime", "negative", ""},
			{"executions", url.Values{"name": {"q1"}, "executions": {"-1"}}, 400, "new-executions", "must be from 0 (unlimited)", ""},
			{"too many cores", url.Values{"name": {"q1"}, "cores": {"1e9"}}, 400, "new-cores", "must be 0 (unlimited) or from", ""},
			{"name", url.Values{"name": {"no spaces"}}, 400, "new-name", "letters, digits", ""},
			{"no name", url.Values{"name": {""}}, 400, "new-name", "required", ""},
			{"taken", url.Values{"name": {"small"}}, 409, "", "already exists", ""},
		} {
			a := postForm(t, root, "/admin/quotas", "/zoe/admin/quotas", tc.form)
			if a.status != tc.status {
				t.Errorf("%s: %d, want %d\n%s", tc.name, a.status, tc.status, a.body)
				continue
			}
			if tc.field != "" {
				if got := adminFieldError(t, a.body, tc.field); !strings.Contains(got, tc.want) {
					t.Errorf("%s: beside the field %q, want %q", tc.name, got, tc.want)
				}
				for k, v := range tc.form {
					if v[0] != "" && !strings.Contains(a.body, `value="`+html.EscapeString(v[0])+`"`) {
						t.Errorf("%s: the value %s=%q is not kept", tc.name, k, v[0])
					}
				}
			} else if !strings.Contains(a.body, tc.want) || !strings.Contains(a.body, `id="errors"`) {
				t.Errorf("%s: not said at the top:\n%s", tc.name, a.body)
			}
			checkAdminPage(t, e, "quotas: "+tc.name, a)
		}
		if strings.Contains(root.get("/admin/quotas").body, ">q1<") {
			t.Error("a bad quota was created")
		}
		// Edit.
		a = postForm(t, root, "/admin/quotas/small", "/zoe/admin/quotas/small", url.Values{"executions": {"2"}, "cores": {"4"}, "memory": {"512MiB"}, "runtime": {"90m"}})
		if a.status != http.StatusSeeOther || a.location() != "/zoe/admin/quotas/small?done=saved" {
			t.Fatalf("editing: %d %q\n%s", a.status, a.location(), a.body)
		}
		page := root.follow(a).body
		for _, want := range []string{`name="executions" type="number" value="2"`, `name="cores" type="text" value="4"`,
			`name="memory" type="text" value="512MiB"`, `name="runtime" type="text" value="1h30m"`, "The changes are saved."} {
			if !strings.Contains(page, want) {
				t.Errorf("the edited quota's page lacks %s", want)
			}
		}
		a = postForm(t, root, "/admin/quotas/small", "/zoe/admin/quotas/small", url.Values{"executions": {"2"}, "cores": {"-1"}, "memory": {"2XB"}, "runtime": {"1h"}})
		if a.status != http.StatusBadRequest || !strings.Contains(adminFieldError(t, a.body, "memory"), "unknown unit") {
			t.Errorf("a bad edit: %d %q\n%s", a.status, adminFieldError(t, a.body, "memory"), a.body)
		}
		a = postForm(t, root, "/admin/quotas/small", "/zoe/admin/quotas/small", url.Values{"executions": {"2"}, "cores": {"-1"}, "memory": {"1GiB"}, "runtime": {"1h"}})
		if a.status != http.StatusBadRequest || !strings.Contains(adminFieldError(t, a.body, "cores"), "must be 0 (unlimited)") {
			t.Errorf("negative cores: %d %q\n%s", a.status, adminFieldError(t, a.body, "cores"), a.body)
		}
		if page := root.get("/admin/quotas/small").body; !strings.Contains(page, `value="512MiB"`) {
			t.Error("a bad edit changed the quota")
		}
		// Delete: a page to confirm, then the form.
		setUser(t, root, "gus", url.Values{"quota": {"small"}})
		if list := root.get("/admin/quotas").body; !hasRow(list, "small", "2", "4", "512.0 MiB", "1h30m", "1") {
			t.Errorf("the list after the edit, with gus on the quota: %q", rows(list))
		}
		confirm := root.get("/admin/quotas/small/delete")
		if confirm.status != 200 || !strings.Contains(confirm.body, "(gus) will then have their role's default quota") {
			t.Errorf("the confirmation: %d\n%s", confirm.status, confirm.body)
		}
		if a := root.get("/admin/quotas/small"); a.status != 200 {
			t.Error("the confirmation page deleted the quota")
		}
		a = root.post("/admin/quotas/small/delete", url.Values{"csrf": {csrf(t, confirm.body, "/zoe/admin/quotas/small/delete")}})
		if a.status != http.StatusSeeOther || a.location() != "/zoe/admin/quotas?done=deleted" {
			t.Fatalf("deleting: %d %q\n%s", a.status, a.location(), a.body)
		}
		if a := root.get("/admin/quotas/small"); a.status != http.StatusNotFound {
			t.Errorf("the deleted quota: %d", a.status)
		}
		if page := root.get("/admin/users/gus").body; !strings.Contains(page, `<dt>Quota</dt><dd><a href="/zoe/admin/quotas/guest">guest</a></dd>`) {
			t.Errorf("gus's quota after the deletion:\n%s", page)
		}
		if a := root.post("/admin/quotas/small/delete", url.Values{"csrf": {csrf(t, confirm.body, "/zoe/admin/quotas/small/delete")}}); a.status != http.StatusNotFound {
			t.Errorf("deleting it again: %d", a.status)
		}
	})

	t.Run("failed logins", func(t *testing.T) {
		e := e.with(t)
		root := root.in(e)
		b := e.browser()
		b.header.Set("X-Forwarded-For", "198.51.100.9")
		b.login("mallory", "guess", "")
		page := root.get("/admin/logins")
		checkAdminPage(t, e, "logins", page)
		if !hasRow(page.body, "user from address", "mallory", "198.51.100.9", "1") {
			t.Errorf("mallory's failure is not listed:\n%s", page.body)
		}
		// Enough failures lock: the page says which key until when.
		for range 8 {
			b.login("mallory", "guess", "")
		}
		page = root.get("/admin/logins")
		checkAdminPage(t, e, "logins with locks", page)
		locked := false
		for _, row := range rows(page.body) {
			locked = locked || len(row) == 6 && row[1] == "mallory" && strings.HasPrefix(row[5], "locked 20")
		}
		if !locked || !regexp.MustCompile(`[1-9]\d* keys? (is|are) locked now`).MatchString(page.body) {
			t.Errorf("no lock of mallory's logins shown:\n%s", page.body)
		}
	})
}

// hasRow tells whether a page has a table row that starts with these
// cells.
func hasRow(page string, cells ...string) bool {
	for _, row := range rows(page) {
		if len(row) >= len(cells) && slices.Equal(row[:len(cells)], cells) {
			return true
		}
	}
	return false
}

// in is b for a subtest: its failures are the subtest's.
func (b *browser) in(e *env) *browser { return &browser{e: e, c: b.c, header: b.header.Clone()} }

// checkAdminPage checks a page with checkPage and htmlcheck.
func checkAdminPage(t *testing.T, e *env, name string, a answer) {
	t.Helper()
	checkPage(t, name, a)
	base, _ := url.Parse(e.addr + e.base + "/admin/")
	for _, p := range htmlcheck.Check(strings.NewReader(a.body), base) {
		t.Errorf("%s: %s", name, p)
	}
}

// postForm sends a form with the CSRF token of the page at path (the
// form's own page).
func postForm(t *testing.T, b *browser, path, action string, form url.Values) answer {
	t.Helper()
	page := b.get(path)
	form = cloneForm(form)
	form.Set("csrf", csrf(t, page.body, action))
	return b.post(path, form)
}

// mustPost is postForm that must succeed.
func mustPost(t *testing.T, b *browser, path, action string, form url.Values) {
	t.Helper()
	if a := postForm(t, b, path, action, form); a.status != http.StatusSeeOther {
		t.Fatalf("POST %s: %d\n%s", path, a.status, a.body)
	}
}

// setUser sends a user's role and quota form with the fields in set
// changed and the others as the page shows them.
func setUser(t *testing.T, root *browser, name string, set url.Values) answer {
	t.Helper()
	path := "/admin/users/" + name
	page := root.get(path).body
	doc, _ := html.Parse(strings.NewReader(page))
	form := url.Values{}
	for n := range doc.Descendants() {
		if n.Type != html.ElementNode {
			continue
		}
		switch {
		case n.Data == "input" && (attr(n, "name") == "was_role" || attr(n, "name") == "was_quota" ||
			attr(n, "name") == "was_email" || attr(n, "name") == "email"):
			form.Set(attr(n, "name"), attr(n, "value"))
		case n.Data == "option" && hasAttr(n, "selected"):
			form.Set(attr(n.Parent, "name"), attr(n, "value"))
		}
	}
	for k, v := range set {
		form[k] = v
	}
	form.Set("csrf", csrf(t, page, "/zoe"+path))
	return root.post(path, form)
}

func hasAttr(n *html.Node, name string) bool {
	for _, a := range n.Attr {
		if a.Key == name {
			return true
		}
	}
	return false
}

// fieldError is the error said beside the control with this id (or name).
func adminFieldError(t *testing.T, page, id string) string {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	help := ""
	for n := range doc.Descendants() {
		if n.Type == html.ElementNode && (n.Data == "input" || n.Data == "select") && (attr(n, "id") == id || attr(n, "name") == id) &&
			attr(n, "aria-invalid") == "true" {
			help = attr(n, "aria-describedby")
		}
	}
	if help == "" {
		return ""
	}
	for n := range doc.Descendants() {
		if n.Type == html.ElementNode && attr(n, "id") == help {
			for s := range n.Descendants() {
				if s.Type == html.ElementNode && attr(s, "class") == "field-error" {
					return text(s)
				}
			}
		}
	}
	return ""
}

// rows are the texts of the cells of every table row of a page, each
// with its white space collapsed.
func rows(page string) [][]string {
	doc, _ := html.Parse(strings.NewReader(page))
	var out [][]string
	for n := range doc.Descendants() {
		if n.Type != html.ElementNode || n.Data != "tr" {
			continue
		}
		var row []string
		for c := range n.ChildNodes() {
			if c.Type == html.ElementNode && c.Data == "td" {
				row = append(row, strings.Join(strings.Fields(text(c)), " "))
			}
		}
		if row != nil {
			out = append(out, row)
		}
	}
	return out
}

// bearerOf is the id and API token of a browser's session.
func bearerOf(b *browser) (id, token string) {
	id, token, _ = strings.Cut(b.sessionCookie().Value, ".")
	return id, token
}

func cloneForm(f url.Values) url.Values {
	out := url.Values{}
	for k, v := range f {
		out[k] = append([]string(nil), v...)
	}
	return out
}
