package openapitest

import (
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zoe-project/zoe/internal/testutil"
)

// answer is any response of the generated client.
type answer interface{ StatusCode() int }

// want fails the test unless the call succeeded with status.
func want(t *testing.T, what string, r answer, err error, status int) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if r.StatusCode() != status {
		body := reflect.ValueOf(r).Elem().FieldByName("Body").Bytes()
		t.Fatalf("%s: status %d, want %d: %s", what, r.StatusCode(), status, body)
	}
}

func ptr[T any](v T) *T { return &v }

// zapp is a one-service ZApp for backend-sim.
func zapp(name string, env map[string]string) map[string]any {
	envList := [][]string{}
	for k, v := range env {
		envList = append(envList, []string{k, v})
	}
	return map[string]any{
		"name": name, "version": 3, "will_end": false, "size": 512,
		"services": []any{map[string]any{
			"name": "main", "image": "zoe/test:1", "monitor": true, "essential_count": 1, "total_count": 1,
			"startup_order": 0,
			"resources":     map[string]any{"memory": map[string]any{"min": 1 << 28, "max": nil}, "cores": map[string]any{"min": 0.5, "max": nil}},
			"ports":         []any{},
			"environment":   envList, "volumes": []any{}, "command": nil,
		}},
	}
}

// TestRoutes drives every route of the API through the client generated
// from the document, as an admin, a user, a guest and anonymous, with
// their main errors, and checks every answer against the document (see
// validator). It also checks that the kept document is the served one.
func TestRoutes(t *testing.T) {
	base := startDaemon(t)
	served := servedDocument(t, base)
	checkKeptDocument(t, served)
	v := newValidator(t, base, served)
	ctx := t.Context()
	admin, alice, bob, guest, anon := v.client("root"), v.client("alice"), v.client("bob"), v.client("gus"), v.client("")

	// Open: info, the document, health.
	info, err := anon.GetInfoWithResponse(ctx)
	want(t, "GET /info", info, err, http.StatusOK)
	doc, err := anon.GetOpenapiJsonWithResponse(ctx)
	want(t, "GET /openapi.json", doc, err, http.StatusOK)
	if doc.JSON200 == nil || (*doc.JSON200)["openapi"] != "3.0.3" {
		t.Errorf("GET /openapi.json: not decoded as a document: %.200s", doc.Body)
	}
	h, err := anon.GetHealthWithResponse(ctx)
	want(t, "GET /health as anonymous", h, err, http.StatusOK)
	h, err = admin.GetHealthWithResponse(ctx)
	want(t, "GET /health as an admin", h, err, http.StatusOK)
	if h.JSON200 == nil || h.JSON200.Plugins == nil || len(*h.JSON200.Plugins) == 0 {
		t.Errorf("GET /health as an admin: no details: %s", h.Body)
	}

	// Sessions and tokens.
	sess, err := anon.PostSessionsWithResponse(ctx, PostSessionsJSONRequestBody{Username: "alice", Password: passwords["alice"], TokenName: ptr("openapi")})
	want(t, "POST /sessions", sess, err, http.StatusCreated)
	second, err := anon.PostSessionsWithResponse(ctx, PostSessionsJSONRequestBody{Username: "alice", Password: passwords["alice"], TokenName: ptr("revoked-by-admin")})
	want(t, "POST /sessions again", second, err, http.StatusCreated)
	r401, err := anon.PostSessionsWithResponse(ctx, PostSessionsJSONRequestBody{Username: "alice", Password: "wrong"})
	want(t, "POST /sessions, a wrong password", r401, err, http.StatusUnauthorized)
	r403, err := anon.PostSessionsWithResponse(ctx, PostSessionsJSONRequestBody{Username: "gus", Password: passwords["gus"]})
	want(t, "POST /sessions as a guest", r403, err, http.StatusForbidden)
	r400, err := anon.PostSessionsWithBodyWithResponse(ctx, "application/json", strings.NewReader(`{"username": 3}`))
	want(t, "POST /sessions, a bad body", r400, err, http.StatusBadRequest)
	r415, err := anon.PostSessionsWithBodyWithResponse(ctx, "text/plain", strings.NewReader(`alice`))
	want(t, "POST /sessions, not JSON", r415, err, http.StatusUnsupportedMediaType)
	r400, err = anon.PostSessionsWithBodyWithResponse(ctx, "application/json", strings.NewReader(`{"username": "alice"}`))
	want(t, "POST /sessions without a password", r400, err, http.StatusBadRequest)
	token := v.bearer(sess.JSON201.Token)
	me, err := token.GetMeWithResponse(ctx)
	want(t, "GET /me with a token", me, err, http.StatusOK)
	me, err = anon.GetMeWithResponse(ctx)
	want(t, "GET /me as anonymous", me, err, http.StatusUnauthorized)
	me, err = guest.GetMeWithResponse(ctx)
	want(t, "GET /me as a guest", me, err, http.StatusForbidden)
	mq, err := alice.GetMeQuotaWithResponse(ctx)
	want(t, "GET /me/quota", mq, err, http.StatusOK)
	if mq.JSON200 == nil || mq.JSON200.Quota.Name != "user" {
		t.Errorf("GET /me/quota: not alice's quota: %s", mq.Body)
	}
	mq, err = anon.GetMeQuotaWithResponse(ctx)
	want(t, "GET /me/quota as anonymous", mq, err, http.StatusUnauthorized)
	toks, err := alice.GetTokensWithResponse(ctx)
	want(t, "GET /tokens", toks, err, http.StatusOK)
	toks, err = anon.GetTokensWithResponse(ctx)
	want(t, "GET /tokens as anonymous", toks, err, http.StatusUnauthorized)
	del, err := bob.DeleteTokensIdWithResponse(ctx, sess.JSON201.TokenInfo.Id)
	want(t, "DELETE another's token", del, err, http.StatusNotFound)
	del, err = alice.DeleteTokensIdWithResponse(ctx, sess.JSON201.TokenInfo.Id)
	want(t, "DELETE /tokens/{id}", del, err, http.StatusNoContent)
	me, err = token.GetMeWithResponse(ctx)
	want(t, "GET /me with a revoked token", me, err, http.StatusUnauthorized)

	// Shop.
	shop, err := alice.GetShopWithResponse(ctx)
	want(t, "GET /shop", shop, err, http.StatusOK)
	if len(shop.JSON200.Entries) == 0 {
		t.Fatal("the shop is empty")
	}
	entry := shop.JSON200.Entries[0].Id
	shop, err = guest.GetShopWithResponse(ctx)
	want(t, "GET /shop as a guest", shop, err, http.StatusForbidden)
	se, err := alice.GetShopIdWithResponse(ctx, entry)
	want(t, "GET /shop/"+entry, se, err, http.StatusOK)
	first := se.JSON200.Description.(map[string]any)["services"].([]any)[0].(map[string]any)["name"].(string)
	se, err = alice.GetShopIdWithResponse(ctx, "no-such-entry")
	want(t, "GET /shop/no-such-entry", se, err, http.StatusNotFound)
	logo, err := alice.GetShopIdLogoWithResponse(ctx, entry)
	want(t, "GET /shop/"+entry+"/logo", logo, err, http.StatusOK)
	logo, err = anon.GetShopIdLogoWithResponse(ctx, entry)
	want(t, "GET /shop/"+entry+"/logo as anonymous", logo, err, http.StatusUnauthorized)
	logo, err = alice.GetShopIdLogoWithResponse(ctx, "no-such-entry")
	want(t, "GET /shop/no-such-entry/logo", logo, err, http.StatusNotFound)

	// Executions, their services and logs.
	events, err := alice.GetEvents(ctx, &GetEventsParams{})
	if err != nil {
		t.Fatal(err)
	}
	started, err := alice.PostExecutionsWithResponse(ctx, PostExecutionsJSONRequestBody{Name: ptr("openapi"),
		Description: zapp("openapi", map[string]string{"ZOE_SIM_LOG": "one|two"})})
	want(t, "POST /executions", started, err, http.StatusCreated)
	id := started.JSON201.Id
	if ev := v.firstEvent(events, "/events"); ev["execution_id"] != float64(id) {
		t.Errorf("GET /events: the first event is not of execution %d: %v", id, ev)
	}
	resumed, err := alice.GetEvents(ctx, &GetEventsParams{LastEventID: ptr(int64(0)), Execution: &id})
	if err != nil {
		t.Fatal(err)
	}
	v.firstEvent(resumed, "/events")
	evs, err := alice.GetEventsWithResponse(ctx, &GetEventsParams{Execution: ptr(int64(-1))})
	want(t, "GET /events?execution=-1", evs, err, http.StatusBadRequest)
	evs, err = anon.GetEventsWithResponse(ctx, &GetEventsParams{})
	want(t, "GET /events as anonymous", evs, err, http.StatusUnauthorized)
	fromShop, err := alice.PostExecutionsWithResponse(ctx, PostExecutionsJSONRequestBody{Shop: &ShopStart{Id: entry}})
	want(t, "POST /executions of a shop entry", fromShop, err, http.StatusCreated)
	resources := map[string]ServiceResources{first: {Memory: ptr(int64(256 << 20)), Cores: ptr(0.5)}}
	fromShop2, err := alice.PostExecutionsWithResponse(ctx, PostExecutionsJSONRequestBody{Shop: &ShopStart{Id: entry, Resources: &resources}})
	want(t, "POST /executions of a shop entry with resources", fromShop2, err, http.StatusCreated)
	badRes := map[string]ServiceResources{"no-such-service": {Cores: ptr(1.0)}}
	bad, err := alice.PostExecutionsWithResponse(ctx, PostExecutionsJSONRequestBody{Shop: &ShopStart{Id: entry, Resources: &badRes}})
	want(t, "POST /executions of a shop entry, an unknown service", bad, err, http.StatusBadRequest)
	bad, err = alice.PostExecutionsWithResponse(ctx, PostExecutionsJSONRequestBody{Description: map[string]any{"name": "x"}})
	want(t, "POST /executions, a bad description", bad, err, http.StatusBadRequest)
	bad, err = alice.PostExecutionsWithBodyWithResponse(ctx, "text/plain", strings.NewReader("{}"))
	want(t, "POST /executions, not JSON", bad, err, http.StatusUnsupportedMediaType)
	bad, err = guest.PostExecutionsWithResponse(ctx, PostExecutionsJSONRequestBody{Shop: &ShopStart{Id: entry}})
	want(t, "POST /executions as a guest", bad, err, http.StatusForbidden)

	list, err := alice.GetExecutionsWithResponse(ctx, &GetExecutionsParams{Status: ptr("queued,starting,running"), Limit: ptr(10)})
	want(t, "GET /executions", list, err, http.StatusOK)
	list, err = alice.GetExecutionsWithResponse(ctx, &GetExecutionsParams{Limit: ptr(0)})
	want(t, "GET /executions?limit=0", list, err, http.StatusBadRequest)
	list, err = admin.GetExecutionsWithResponse(ctx, &GetExecutionsParams{Owner: ptr("alice")})
	want(t, "GET /executions?owner=alice as an admin", list, err, http.StatusOK)

	var running *GetExecutionsIdResponse
	testutil.WaitFor(t, time.Minute, "the execution to run", func() (bool, string) {
		running, err = alice.GetExecutionsIdWithResponse(ctx, id)
		want(t, "GET /executions/{id}", running, err, http.StatusOK)
		return running.JSON200.Status == "running", running.JSON200.Status
	})
	ex, err := bob.GetExecutionsIdWithResponse(ctx, id)
	want(t, "GET another's execution", ex, err, http.StatusNotFound)
	if running.JSON200.Services == nil || len(*running.JSON200.Services) == 0 {
		t.Fatalf("GET /executions/%d: no services: %s", id, running.Body)
	}
	svc := (*running.JSON200.Services)[0].Id
	sv, err := alice.GetServicesIdWithResponse(ctx, svc)
	want(t, "GET /services/{id}", sv, err, http.StatusOK)
	sv, err = bob.GetServicesIdWithResponse(ctx, svc)
	want(t, "GET another's service", sv, err, http.StatusNotFound)
	var logs *GetServicesIdLogsResponse
	testutil.WaitFor(t, time.Minute, "the service's output", func() (bool, string) {
		logs, err = alice.GetServicesIdLogsWithResponse(ctx, svc, &GetServicesIdLogsParams{Timestamps: ptr(true)})
		want(t, "GET /services/{id}/logs", logs, err, http.StatusOK)
		return strings.Contains(string(logs.Body), "two"), string(logs.Body)
	})
	logs, err = alice.GetServicesIdLogsWithResponse(ctx, svc, &GetServicesIdLogsParams{Tail: ptr(-1)})
	want(t, "GET /services/{id}/logs?tail=-1", logs, err, http.StatusBadRequest)
	followed, err := alice.GetServicesIdLogs(ctx, svc, &GetServicesIdLogsParams{Follow: ptr(true), Tail: ptr(1)})
	if err != nil {
		t.Fatal(err)
	}
	if ct := followed.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("followed logs: Content-Type %q", ct)
	}
	line := make([]byte, 64)
	if n, err := followed.Body.Read(line); n == 0 {
		t.Errorf("followed logs: no first line: %v", err)
	}
	followed.Body.Close()

	term, err := bob.PostExecutionsIdTerminateWithResponse(ctx, id)
	want(t, "terminate another's execution", term, err, http.StatusNotFound)
	term, err = alice.PostExecutionsIdTerminateWithResponse(ctx, id)
	want(t, "POST /executions/{id}/terminate", term, err, http.StatusAccepted)
	dx, err := alice.DeleteExecutionsIdWithResponse(ctx, id)
	want(t, "DELETE /executions/{id} as a user", dx, err, http.StatusForbidden)
	testutil.WaitFor(t, time.Minute, "the execution to end", func() (bool, string) {
		ex, err = alice.GetExecutionsIdWithResponse(ctx, id)
		want(t, "GET /executions/{id}", ex, err, http.StatusOK)
		return ex.JSON200.Status == "terminated", ex.JSON200.Status
	})
	dx, err = admin.DeleteExecutionsIdWithResponse(ctx, fromShop.JSON201.Id)
	want(t, "DELETE an active execution", dx, err, http.StatusConflict)
	dx, err = admin.DeleteExecutionsIdWithResponse(ctx, id)
	want(t, "DELETE /executions/{id}", dx, err, http.StatusNoContent)
	dx, err = admin.DeleteExecutionsIdWithResponse(ctx, id)
	want(t, "DELETE /executions/{id} again", dx, err, http.StatusNotFound)

	st, err := alice.GetStatsWithResponse(ctx)
	want(t, "GET /stats", st, err, http.StatusOK)
	st, err = admin.GetStatsWithResponse(ctx)
	want(t, "GET /stats as an admin", st, err, http.StatusOK)
	st, err = anon.GetStatsWithResponse(ctx)
	want(t, "GET /stats as anonymous", st, err, http.StatusUnauthorized)

	// Users.
	us, err := admin.GetUsersWithResponse(ctx)
	want(t, "GET /users", us, err, http.StatusOK)
	us, err = alice.GetUsersWithResponse(ctx)
	want(t, "GET /users as a user", us, err, http.StatusForbidden)
	u, err := admin.GetUsersNameWithResponse(ctx, "alice")
	want(t, "GET /users/alice", u, err, http.StatusOK)
	u, err = admin.GetUsersNameWithResponse(ctx, "nobody")
	want(t, "GET /users/nobody", u, err, http.StatusNotFound)
	pu, err := admin.PatchUsersNameWithResponse(ctx, "bob", PatchUsersNameJSONRequestBody{Quota: ptr("user")})
	want(t, "PATCH /users/bob", pu, err, http.StatusOK)
	pu, err = admin.PatchUsersNameWithResponse(ctx, "bob", PatchUsersNameJSONRequestBody{Role: ptr("emperor")})
	want(t, "PATCH /users/bob, a bad role", pu, err, http.StatusBadRequest)
	pu, err = admin.PatchUsersNameWithResponse(ctx, "root", PatchUsersNameJSONRequestBody{Enabled: ptr(false)})
	want(t, "PATCH /users/root disabling oneself", pu, err, http.StatusConflict)
	pu, err = bob.PatchUsersNameWithResponse(ctx, "bob", PatchUsersNameJSONRequestBody{Role: ptr("admin")})
	want(t, "PATCH /users/bob as bob", pu, err, http.StatusForbidden)
	ut, err := admin.GetUsersNameTokensWithResponse(ctx, "alice")
	want(t, "GET /users/alice/tokens", ut, err, http.StatusOK)
	ut, err = anon.GetUsersNameTokensWithResponse(ctx, "alice")
	want(t, "GET /users/alice/tokens as anonymous", ut, err, http.StatusUnauthorized)
	dt, err := admin.DeleteUsersNameTokensIdWithResponse(ctx, "alice", second.JSON201.TokenInfo.Id)
	want(t, "DELETE /users/alice/tokens/{id}", dt, err, http.StatusNoContent)
	dt, err = admin.DeleteUsersNameTokensIdWithResponse(ctx, "alice", second.JSON201.TokenInfo.Id)
	want(t, "DELETE /users/alice/tokens/{id} again", dt, err, http.StatusNotFound)

	// Quotas.
	ql, err := admin.GetQuotasWithResponse(ctx)
	want(t, "GET /quotas", ql, err, http.StatusOK)
	ql, err = alice.GetQuotasWithResponse(ctx)
	want(t, "GET /quotas as a user", ql, err, http.StatusForbidden)
	q := PostQuotasJSONRequestBody{Name: "small", ConcurrentExecutions: ptr(2), Cores: ptr(1.5), Memory: ptr(int64(1 << 30)), RuntimeLimit: ptr(int64(3600))}
	cq, err := admin.PostQuotasWithResponse(ctx, q)
	want(t, "POST /quotas", cq, err, http.StatusCreated)
	cq, err = admin.PostQuotasWithResponse(ctx, q)
	want(t, "POST /quotas again", cq, err, http.StatusConflict)
	cq, err = admin.PostQuotasWithResponse(ctx, PostQuotasJSONRequestBody{Name: "no way", Cores: ptr(-1.0)})
	want(t, "POST /quotas, a bad quota", cq, err, http.StatusBadRequest)
	gq, err := admin.GetQuotasNameWithResponse(ctx, "small")
	want(t, "GET /quotas/small", gq, err, http.StatusOK)
	if gq.JSON200.Cores != 1.5 {
		t.Errorf("GET /quotas/small: cores %v, want 1.5", gq.JSON200.Cores)
	}
	gq, err = admin.GetQuotasNameWithResponse(ctx, "none")
	want(t, "GET /quotas/none", gq, err, http.StatusNotFound)
	uq, err := admin.PutQuotasNameWithResponse(ctx, "small", PutQuotasNameJSONRequestBody{ConcurrentExecutions: ptr(3), Cores: ptr(2.25)})
	want(t, "PUT /quotas/small without a name", uq, err, http.StatusOK)
	if uq.JSON200.Name != "small" || uq.JSON200.Cores != 2.25 || uq.JSON200.ConcurrentExecutions != 3 {
		t.Errorf("PUT /quotas/small: %s", uq.Body)
	}
	uq, err = admin.PutQuotasNameWithResponse(ctx, "small", PutQuotasNameJSONRequestBody{Name: ptr("small"), ConcurrentExecutions: ptr(4)})
	want(t, "PUT /quotas/small with its name", uq, err, http.StatusOK)
	uq, err = admin.PutQuotasNameWithResponse(ctx, "small", PutQuotasNameJSONRequestBody{Name: ptr("big")})
	want(t, "PUT /quotas/small named big", uq, err, http.StatusBadRequest)
	uq, err = admin.PutQuotasNameWithResponse(ctx, "none", PutQuotasNameJSONRequestBody{})
	want(t, "PUT /quotas/none", uq, err, http.StatusNotFound)
	// What the server takes, the document takes (see validator): the
	// limits may be left out.
	cq, err = admin.PostQuotasWithBodyWithResponse(ctx, "application/json", strings.NewReader(`{"name": "bare"}`))
	want(t, "POST /quotas with a name only", cq, err, http.StatusCreated)
	uq, err = admin.PutQuotasNameWithBodyWithResponse(ctx, "bare", "application/json", strings.NewReader(`{}`))
	want(t, "PUT /quotas/bare with no field", uq, err, http.StatusOK)
	dq, err := admin.DeleteQuotasNameWithResponse(ctx, "small")
	want(t, "DELETE /quotas/small", dq, err, http.StatusNoContent)
	dq, err = admin.DeleteQuotasNameWithResponse(ctx, "small")
	want(t, "DELETE /quotas/small again", dq, err, http.StatusNotFound)

	// Logins and plugins.
	lg, err := admin.GetLoginsWithResponse(ctx)
	want(t, "GET /logins", lg, err, http.StatusOK)
	lg, err = bob.GetLoginsWithResponse(ctx)
	want(t, "GET /logins as a user", lg, err, http.StatusForbidden)
	pl, err := admin.GetPluginsWithResponse(ctx)
	want(t, "GET /plugins", pl, err, http.StatusOK)
	pl, err = anon.GetPluginsWithResponse(ctx)
	want(t, "GET /plugins as anonymous", pl, err, http.StatusUnauthorized)

	// Degraded: the back-end killed (the daemon starts it again) makes
	// health a 503 with the same document.
	pl, err = admin.GetPluginsWithResponse(ctx)
	want(t, "GET /plugins", pl, err, http.StatusOK)
	pid := 0
	for _, p := range pl.JSON200.Plugins {
		if p.Kind == "backend" && p.Pid != nil {
			pid = *p.Pid
		}
	}
	if pid == 0 {
		t.Fatalf("no back-end plugin with a pid: %s", pl.Body)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, time.Minute, "a degraded health", func() (bool, string) {
		h, err = admin.GetHealthWithResponse(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return h.StatusCode() == http.StatusServiceUnavailable, fmt.Sprint(h.StatusCode())
	})
	if h.JSON503 == nil || h.JSON503.Status != "degraded" {
		t.Errorf("GET /health, degraded: %s", h.Body)
	}
	testutil.WaitFor(t, time.Minute, "health back", func() (bool, string) {
		h, err = anon.GetHealthWithResponse(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return h.StatusCode() == http.StatusOK, string(h.Body)
	})

	v.checkCoverage()
}
