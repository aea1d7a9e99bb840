package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zoe-project/zoe/client"
)

// Roles of the authorization table, in the order each row is tried: the
// owner and the admin come last, as they may change what the row acts on.
var tableRoles = []string{"anonymous", "guest", "other", "owner", "admin"}

// TestAuthorizationTable calls every route as anonymous, a guest, another
// user, the owner of what the route acts on (alice) and an admin, and
// checks the status each gets.
func TestAuthorizationTable(t *testing.T) {
	e := newEnv(t, "")
	alice := e.as("alice")
	// It takes a while to stop, so that it is still cleaning up when the
	// admin terminates it after its owner did.
	running := e.startApp(alice, "running", app("table", map[string]string{"ZOE_SIM_TERM_TIME": "3s"}))
	done := e.startApp(alice, "done", app("table", nil))
	e.await(alice, running.ID, "running")
	e.must(alice, "POST", fmt.Sprintf("/executions/%d/terminate", done.ID), nil, http.StatusAccepted, nil)
	e.await(alice, done.ID, "terminated")
	var ex client.Execution
	e.must(alice, "GET", fmt.Sprintf("/executions/%d", running.ID), nil, http.StatusOK, &ex)
	svc := ex.Services[0].ID
	e.must(e.as("dora"), "GET", "/me", nil, http.StatusOK, nil) // users exist once they logged in
	var sess client.Session
	e.must(anonymous, "POST", "/sessions", client.Login{Username: "alice", Password: passwords["alice"], TokenName: "to-revoke"}, http.StatusCreated, &sess)
	var other client.Session // revoked by an admin
	e.must(anonymous, "POST", "/sessions", client.Login{Username: "alice", Password: passwords["alice"], TokenName: "admin-revokes"}, http.StatusCreated, &other)
	for _, q := range []string{"tq-put", "tq-delete"} {
		e.must(e.as("root"), "POST", "/quotas", client.Quota{Name: q}, http.StatusCreated, nil)
	}
	var list client.ShopList
	e.must(alice, "GET", "/shop", nil, http.StatusOK, &list)
	if len(list.Entries) == 0 {
		t.Fatal("the shop is empty")
	}
	shopID := list.Entries[0].ID

	callers := map[string]who{
		"anonymous": anonymous, "guest": e.as("gus"), "other": e.as("bob"), "owner": alice, "admin": e.as("root"),
	}
	login := func(role string) any {
		w := callers[role]
		if w.user == "" {
			return client.Login{Username: "alice", Password: "wrong"}
		}
		return client.Login{Username: w.user, Password: w.password}
	}
	type row struct {
		method, path string
		body         func(role string) any
		want         [5]int // by tableRoles
	}
	const (
		ok = http.StatusOK
		u  = http.StatusUnauthorized
		f  = http.StatusForbidden
		nf = http.StatusNotFound
	)
	fixed := func(v any) func(string) any { return func(string) any { return v } }
	rows := []row{
		{"GET", "/info", nil, [5]int{ok, ok, ok, ok, ok}},
		{"GET", "/health", nil, [5]int{ok, ok, ok, ok, ok}},
		{"GET", "/openapi.json", nil, [5]int{ok, ok, ok, ok, ok}},
		{"POST", "/sessions", login, [5]int{u, f, 201, 201, 201}},
		{"GET", "/me", nil, [5]int{u, f, ok, ok, ok}},
		{"GET", "/me/quota", nil, [5]int{u, f, ok, ok, ok}},
		{"GET", "/tokens", nil, [5]int{u, f, ok, ok, ok}},
		{"DELETE", fmt.Sprintf("/tokens/%d", sess.TokenInfo.ID), nil, [5]int{u, f, nf, 204, nf}},
		{"GET", "/executions", nil, [5]int{u, f, ok, ok, ok}},
		{"POST", "/executions", fixed(map[string]any{"description": app("table", nil)}), [5]int{u, f, 201, 201, 201}},
		{"GET", fmt.Sprintf("/executions/%d", running.ID), nil, [5]int{u, f, nf, ok, ok}},
		{"POST", fmt.Sprintf("/executions/%d/terminate", running.ID), nil, [5]int{u, f, nf, 202, 202}},
		{"DELETE", fmt.Sprintf("/executions/%d", done.ID), nil, [5]int{u, f, f, f, 204}},
		{"GET", fmt.Sprintf("/services/%d", svc), nil, [5]int{u, f, nf, ok, ok}},
		{"GET", fmt.Sprintf("/services/%d/logs", svc), nil, [5]int{u, f, nf, ok, ok}},
		{"GET", "/shop", nil, [5]int{u, f, ok, ok, ok}},
		{"GET", "/shop/" + shopID, nil, [5]int{u, f, ok, ok, ok}},
		{"GET", "/shop/" + shopID + "/logo", nil, [5]int{u, f, ok, ok, ok}},
		{"GET", "/stats", nil, [5]int{u, f, ok, ok, ok}},
		{"GET", "/events", nil, [5]int{u, f, ok, ok, ok}},
		{"GET", "/users", nil, [5]int{u, f, f, f, ok}},
		{"GET", "/users/alice", nil, [5]int{u, f, f, f, ok}},
		{"PATCH", "/users/dora", fixed(client.UserUpdate{Quota: ptr("user")}), [5]int{u, f, f, f, ok}},
		{"GET", "/users/alice/tokens", nil, [5]int{u, f, f, f, ok}},
		{"DELETE", fmt.Sprintf("/users/alice/tokens/%d", other.TokenInfo.ID), nil, [5]int{u, f, f, f, 204}},
		{"GET", "/quotas", nil, [5]int{u, f, f, f, ok}},
		{"POST", "/quotas", func(role string) any { return client.Quota{Name: "tq-" + role} }, [5]int{u, f, f, f, 201}},
		{"GET", "/quotas/user", nil, [5]int{u, f, f, f, ok}},
		{"PUT", "/quotas/tq-put", fixed(client.Quota{ConcurrentExecutions: 2}), [5]int{u, f, f, f, ok}},
		{"DELETE", "/quotas/tq-delete", nil, [5]int{u, f, f, f, 204}},
		{"GET", "/plugins", nil, [5]int{u, f, f, f, ok}},
		{"GET", "/logins", nil, [5]int{u, f, f, f, ok}},
	}

	// Every route of the OpenAPI document has a row, and every row a route.
	var doc struct {
		Paths map[string]map[string]any `json:"paths"`
	}
	e.must(anonymous, "GET", "/openapi.json", nil, ok, &doc)
	var routes, covered []string
	for p, ops := range doc.Paths {
		for m := range ops {
			routes = append(routes, strings.ToUpper(m)+" "+p)
		}
	}
	for _, r := range rows {
		covered = append(covered, r.method+" "+templatePath(r.path))
	}
	slices.Sort(routes)
	slices.Sort(covered)
	if !slices.Equal(routes, slices.Compact(covered)) {
		t.Errorf("the table covers\n  %v\nthe API has\n  %v", covered, routes)
	}

	for _, r := range rows {
		for i, role := range tableRoles {
			var body any
			if r.body != nil {
				body = r.body(role)
			}
			got := e.status(callers[role], r.method, r.path, body)
			if got != r.want[i] {
				t.Errorf("%s %s as %s: %d, want %d", r.method, r.path, role, got, r.want[i])
			}
		}
	}
}

func ptr[T any](v T) *T { return &v }

// templatePath turns a path of the table back into its route: numbers are
// {id}, names after users/ quotas/ shop/ are {name} or {id}.
func templatePath(p string) string {
	parts := strings.Split(p, "/")
	for i := 1; i < len(parts); i++ {
		switch parts[i-1] {
		case "tokens", "executions", "services":
			parts[i] = "{id}"
		case "shop":
			parts[i] = "{id}"
		case "users", "quotas":
			parts[i] = "{name}"
		}
	}
	return strings.Join(parts, "/")
}

// status sends a request and returns its status; a stream (the events) is
// cut after its first bytes.
func (e *env) status(w who, method, path string, body any) int {
	e.t.Helper()
	if path != "/events" {
		r := e.do(w, method, path, body)
		if r.status >= 400 {
			r.apiError(e.t)
		}
		return r.status
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, method, e.base+path, nil)
	if w.user != "" {
		req.SetBasicAuth(w.user, w.password)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK && resp.Header.Get("Content-Type") != "text/event-stream" {
		e.t.Errorf("events: content type %q", resp.Header.Get("Content-Type"))
	}
	if resp.StatusCode >= 400 {
		var eb client.Error
		if err := json.NewDecoder(resp.Body).Decode(&eb); err != nil || eb.Error.Code == "" {
			e.t.Errorf("events: error %d without the error shape", resp.StatusCode)
		}
	}
	return resp.StatusCode
}
