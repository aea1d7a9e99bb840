package api_test

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zoe-project/zoe/client"
)

func TestExecutionsThroughTheAPI(t *testing.T) {
	e := newEnv(t, "")
	alice, bob, root := e.as("alice"), e.as("bob"), e.as("root")

	// A ZApp description, run to the end.
	ex := e.startApp(alice, "first", app("hello", map[string]string{"ZOE_SIM_LOG": "hello|world"}))
	if ex.ID == 0 || ex.Status != "submitted" || ex.Owner != "alice" || ex.Name != "first" {
		t.Fatalf("started: %+v", ex)
	}
	run := e.await(alice, ex.ID, "running")
	if len(run.Services) != 1 || run.Services[0].Status != "running" || run.Services[0].ID == 0 ||
		len(run.Endpoints) != 1 || run.Endpoints[0].URL == "" || len(run.Events) < 4 || len(run.Description) == 0 {
		t.Errorf("running: %+v", run)
	}
	var svc client.Service
	e.must(alice, "GET", fmt.Sprintf("/services/%d", run.Services[0].ID), nil, http.StatusOK, &svc)
	if svc.Name != "main0" && svc.Name != run.Services[0].Name || svc.ExecutionID != ex.ID {
		t.Errorf("service: %+v", svc)
	}

	// A shop entry with a parameter; a wrong value names the parameter.
	var entries client.ShopList
	e.must(alice, "GET", "/shop", nil, http.StatusOK, &entries)
	var nb string
	for _, en := range entries.Entries {
		if strings.Contains(en.Name, "notebook") || strings.Contains(en.Name, "Jupyter") {
			nb = en.ID
		}
	}
	if nb == "" {
		t.Fatalf("no notebook in the shop: %+v", entries)
	}
	var entry client.ShopEntry
	e.must(alice, "GET", "/shop/"+nb, nil, http.StatusOK, &entry)
	if entry.DescriptionHTML == "" || len(entry.Parameters) == 0 || len(entry.Description) == 0 {
		t.Errorf("shop entry: %+v", entry)
	}
	logo := e.must(alice, "GET", "/shop/"+nb+"/logo", nil, http.StatusOK, nil)
	if !strings.HasPrefix(logo.header.Get("Content-Type"), "image/") || len(logo.body) == 0 {
		t.Errorf("logo: %q, %d bytes", logo.header.Get("Content-Type"), len(logo.body))
	}
	r := e.do(alice, "POST", "/executions", client.StartExecution{Shop: &client.ShopStart{ID: nb,
		Parameters: map[string]string{"NOTEBOOK_IDLE_MINUTES": "7"}}})
	if eb := r.apiError(t); r.status != http.StatusBadRequest || len(eb.Details) != 1 ||
		eb.Details[0].Path != "shop.parameters.NOTEBOOK_IDLE_MINUTES" || strings.Contains(eb.Message, eb.Details[0].Message) {
		t.Errorf("wrong parameter: %d %+v", r.status, eb)
	}
	var fromShop client.Execution
	e.must(alice, "POST", "/executions", client.StartExecution{Name: "nb", Shop: &client.ShopStart{ID: nb,
		Parameters: map[string]string{"NOTEBOOK_IDLE_MINUTES": "30"}}}, http.StatusCreated, &fromShop)
	got := e.await(alice, fromShop.ID, "running")
	if !strings.Contains(string(got.Description), `"30"`) {
		t.Errorf("the parameter is not in the description: %s", got.Description)
	}
	r = e.do(alice, "POST", "/executions", client.StartExecution{Shop: &client.ShopStart{ID: "nope-0"}})
	if r.status != http.StatusNotFound {
		t.Errorf("unknown shop entry: %d %s", r.status, r.body)
	}

	// Errors of bad input, each with the error shape and the right status.
	bad := app("bad", nil)
	bad["services"].([]any)[0].(map[string]any)["image"] = 42
	for _, tc := range []struct {
		name   string
		body   any
		status int
		code   string
		path   string // a detail's path
	}{
		{"invalid ZApp", map[string]any{"description": bad}, 400, client.CodeInvalidArgument, "description.services[0].image"},
		{"unknown field", `{"descripton": {}}`, 400, client.CodeInvalidArgument, "descripton"},
		{"wrong type", `{"name": 3, "description": {}}`, 400, client.CodeInvalidArgument, "name"},
		{"not JSON", `{"name": `, 400, client.CodeInvalidArgument, ""},
		{"trailing data", `{"description": {"a": 1}} {}`, 400, client.CodeInvalidArgument, ""},
		{"empty", ``, 400, client.CodeInvalidArgument, ""},
		{"both", map[string]any{"description": app("x", nil), "shop": map[string]any{"id": nb}}, 400, client.CodeInvalidArgument, ""},
		{"neither", `{"name": "x"}`, 400, client.CodeInvalidArgument, ""},
		{"null description", `{"name": "x", "description": null}`, 400, client.CodeInvalidArgument, ""},
		{"too large", `{"name": "` + strings.Repeat("x", 5<<20) + `"}`, 413, client.CodeTooLarge, ""},
	} {
		r := e.do(alice, "POST", "/executions", tc.body)
		eb := r.apiError(t)
		if r.status != tc.status || eb.Code != tc.code {
			t.Errorf("%s: %d %s, want %d %s: %s", tc.name, r.status, eb.Code, tc.status, tc.code, r.body)
		}
		if tc.path != "" && !slices.ContainsFunc(eb.Details, func(d client.Detail) bool { return d.Path == tc.path }) {
			t.Errorf("%s: no detail at %s: %+v", tc.name, tc.path, eb.Details)
		}
	}
	for _, tc := range []struct {
		method, path string
		status       int
		detail       string // a detail's path, for a 400
	}{
		{"GET", "/executions/999999", 404, ""},
		{"GET", "/executions/abc", 404, ""},
		{"GET", "/services/999999", 404, ""},
		{"GET", "/executions?limit=0", 400, "limit"},
		{"GET", "/executions?limit=x", 400, "limit"},
		{"GET", "/executions?status=sleeping", 400, "status"},
		{"GET", "/executions?cursor=garbage", 400, "cursor"},
		{"GET", "/executions?owner=bob", 403, ""},
		{"GET", fmt.Sprintf("/services/%d/logs?tail=-1", svc.ID), 400, "tail"},
		{"GET", fmt.Sprintf("/services/%d/logs?follow=maybe", svc.ID), 400, "follow"},
		{"GET", "/events?execution=x", 400, "execution"},
		{"GET", "/events?last_event_id=-4", 400, "last_event_id"},
		{"PUT", "/executions", 405, ""},
		{"GET", "/nothing", 404, ""},
	} {
		r := e.do(alice, tc.method, tc.path, nil)
		eb := r.apiError(t)
		if r.status != tc.status {
			t.Errorf("%s %s: %d, want %d: %s", tc.method, tc.path, r.status, tc.status, r.body)
		}
		if tc.detail != "" && !slices.ContainsFunc(eb.Details, func(d client.Detail) bool { return d.Path == tc.detail }) {
			t.Errorf("%s %s: no detail at %s: %+v", tc.method, tc.path, tc.detail, eb.Details)
		}
	}
	for _, path := range []string{"/executions/999999", "/users/zed", "/quotas/nope"} {
		if eb := e.do(root, "GET", path, nil).apiError(t); strings.Contains(eb.Message, "sql") {
			t.Errorf("GET %s: the 404 tells the database's words: %q", path, eb.Message)
		}
	}
	if r := e.do(alice, "PUT", "/executions", nil); r.header.Get("Allow") != "GET, POST" {
		t.Errorf("405 Allow: %q", r.header.Get("Allow"))
	}

	// Another user sees none of it.
	var bobs client.ExecutionList
	e.must(bob, "GET", "/executions", nil, http.StatusOK, &bobs)
	if len(bobs.Executions) != 0 {
		t.Errorf("bob sees %+v", bobs.Executions)
	}

	// Quotas: one execution at a time for alice → 409 quota_exceeded.
	e.must(root, "POST", "/quotas", client.Quota{Name: "one", ConcurrentExecutions: 1}, http.StatusCreated, nil)
	var changed client.User
	e.must(root, "PATCH", "/users/alice", client.UserUpdate{Quota: ptr("one")}, http.StatusOK, &changed)
	if changed.Quota != "one" {
		t.Errorf("alice's quota: %+v", changed)
	}
	r = e.do(alice, "POST", "/executions", map[string]any{"description": app("more", nil)})
	if eb := r.apiError(t); r.status != http.StatusConflict || eb.Code != client.CodeQuotaExceeded {
		t.Errorf("over quota: %d %+v", r.status, eb)
	}
	e.must(root, "PATCH", "/users/alice", client.UserUpdate{Quota: ptr("")}, http.StatusOK, &changed)
	if changed.Quota != "user" {
		t.Errorf("alice's quota back to the default: %+v", changed)
	}

	// Terminate, then the state conflicts: terminate again, delete active.
	r = e.do(root, "DELETE", fmt.Sprintf("/executions/%d", fromShop.ID), nil)
	if eb := r.apiError(t); r.status != http.StatusConflict || eb.Code != client.CodeConflict {
		t.Errorf("delete an active execution: %d %+v", r.status, eb)
	}
	e.must(alice, "POST", fmt.Sprintf("/executions/%d/terminate", fromShop.ID), nil, http.StatusAccepted, nil)
	e.await(alice, fromShop.ID, "terminated")
	r = e.do(alice, "POST", fmt.Sprintf("/executions/%d/terminate", fromShop.ID), nil)
	if eb := r.apiError(t); r.status != http.StatusConflict || eb.Code != client.CodeConflict {
		t.Errorf("terminate a terminated execution: %d %+v", r.status, eb)
	}
	e.must(root, "DELETE", fmt.Sprintf("/executions/%d", fromShop.ID), nil, http.StatusNoContent, nil)
	e.must(alice, "GET", fmt.Sprintf("/executions/%d", fromShop.ID), nil, http.StatusNotFound, nil)

	// Statistics: alice sees the queue; root sees running executions and nodes.
	var st client.Stats
	e.must(alice, "GET", "/stats", nil, http.StatusOK, &st)
	if st.Running != nil || st.Nodes != nil {
		t.Errorf("a user sees running executions or nodes: %+v", st)
	}
	st = client.Stats{}
	e.must(root, "GET", "/stats", nil, http.StatusOK, &st)
	if len(st.Nodes) != 1 || st.Nodes[0].Name != "node1" || st.Nodes[0].Cores != 16 || st.Nodes[0].ZoeServices != 1 ||
		!slices.ContainsFunc(st.Running, func(x client.Execution) bool { return x.ID == ex.ID }) {
		t.Errorf("admin stats: %+v", st)
	}
}

func TestQueueStatistics(t *testing.T) {
	e := newEnv(t, "")
	alice, bob, root := e.as("alice"), e.as("bob"), e.as("root")
	big := func(name string) map[string]any {
		a := app(name, nil)
		a["services"].([]any)[0].(map[string]any)["resources"].(map[string]any)["cores"] = map[string]any{"min": 12, "max": nil}
		return a
	}
	first := e.startApp(alice, "first", big("big"))
	e.await(alice, first.ID, "running")
	waiting := e.startApp(bob, "second", big("big"))
	e.await(bob, waiting.ID, "queued")
	waitFor(t, "a waiting reason", func() (bool, string) {
		var st client.Stats
		e.must(alice, "GET", "/stats", nil, http.StatusOK, &st)
		if len(st.Queue) != 1 {
			return false, fmt.Sprint(st.Queue)
		}
		q := st.Queue[0]
		if q.Position != 1 || q.ExecutionID != waiting.ID || q.Reason == "" {
			return false, fmt.Sprintf("%+v", q)
		}
		if q.Owner != "" || q.Name != "" {
			t.Fatalf("alice sees whose execution waits: %+v", q)
		}
		return true, ""
	})
	var st client.Stats
	e.must(root, "GET", "/stats", nil, http.StatusOK, &st)
	if len(st.Queue) != 1 || st.Queue[0].Owner != "bob" || st.Queue[0].Name != "second" {
		t.Errorf("admin queue: %+v", st.Queue)
	}
}

func TestPagination(t *testing.T) {
	e := newEnv(t, "")
	alice, bob, root := e.as("alice"), e.as("bob"), e.as("root")
	e.must(root, "PUT", "/quotas/user", client.Quota{}, http.StatusOK, nil) // unlimited
	var ids []int64
	for i := range 7 {
		w := alice
		if i%3 == 2 {
			w = bob
		}
		ex := e.startApp(w, fmt.Sprintf("run-%d", i), app("page", nil))
		if w == alice {
			ids = append(ids, ex.ID)
		}
	}
	slices.Reverse(ids) // newest first
	var seen []int64
	cursor := ""
	pages := 0
	for {
		var page client.ExecutionList
		e.must(alice, "GET", "/executions?limit=2&cursor="+url.QueryEscape(cursor), nil, http.StatusOK, &page)
		pages++
		for _, x := range page.Executions {
			seen = append(seen, x.ID)
		}
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
		if pages > 10 {
			t.Fatal("the pages do not end")
		}
	}
	if !slices.Equal(seen, ids) || pages != 3 {
		t.Errorf("pages gave %v in %d pages, want %v in 3", seen, pages, ids)
	}
	var all client.ExecutionList
	e.must(root, "GET", "/executions?owner=bob&limit=50", nil, http.StatusOK, &all)
	if len(all.Executions) != 2 || all.Executions[0].Owner != "bob" {
		t.Errorf("admin's owner filter: %+v", all.Executions)
	}
	var named client.ExecutionList
	e.must(alice, "GET", "/executions?name=run-4", nil, http.StatusOK, &named)
	if len(named.Executions) != 1 || named.Executions[0].Name != "run-4" {
		t.Errorf("name filter: %+v", named.Executions)
	}
	waitFor(t, "status filter", func() (bool, string) {
		var running client.ExecutionList
		e.must(alice, "GET", "/executions?status=running,starting", nil, http.StatusOK, &running)
		return len(running.Executions) == len(ids), fmt.Sprint(len(running.Executions))
	})
	_ = time.Second
}

// TestNoBackend: a Zoe without a back-end serves what it can and answers
// 503 for what needs one; health says it is degraded when a plugin is not
// ready.
func TestNoBackend(t *testing.T) {
	e := newEnv(t, `deployment_name = "apitest"
data_dir        = "data"

auth "file" {
  users_file = "users.csv"
}

workspace "dir" {
  base_path = "ws"
}
`)
	alice := e.as("alice")
	for _, rq := range []struct{ method, path string }{
		{"POST", "/executions"}, {"GET", "/stats"},
	} {
		var body any
		if rq.method == "POST" {
			body = map[string]any{"description": app("none", nil)}
		}
		r := e.do(alice, rq.method, rq.path, body)
		if eb := r.apiError(t); r.status != http.StatusServiceUnavailable || eb.Code != client.CodeUnavailable {
			t.Errorf("%s %s without a back-end: %d %+v", rq.method, rq.path, r.status, eb)
		}
	}
	e.must(alice, "GET", "/executions", nil, http.StatusOK, nil)
}

// TestBackendDown: while the back-end plugin is down (killed here; the
// daemon starts it again) what needs it answers 503, and works again once
// it is back.
func TestBackendDown(t *testing.T) {
	e := newEnv(t, "")
	root := e.as("root")
	var plugins client.PluginList
	e.must(root, "GET", "/plugins", nil, http.StatusOK, &plugins)
	pid := 0
	for _, p := range plugins.Plugins {
		if p.Kind == "backend" {
			pid = p.PID
		}
	}
	if pid == 0 {
		t.Fatalf("no back-end plugin with a pid: %+v", plugins)
	}
	e.must(root, "GET", "/stats", nil, http.StatusOK, nil)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// The daemon waits at least half a second before starting it again.
	waitFor(t, "a 503 for the statistics of nodes", func() (bool, string) {
		r := e.do(root, "GET", "/stats", nil)
		if r.status == http.StatusOK {
			return false, "200"
		}
		eb := r.apiError(t)
		return r.status == http.StatusServiceUnavailable && eb.Code == client.CodeUnavailable, fmt.Sprint(r.status, eb)
	})
	waitFor(t, "the back-end back", func() (bool, string) {
		r := e.do(root, "GET", "/stats", nil)
		return r.status == http.StatusOK, fmt.Sprintf("%d %s", r.status, r.body)
	})
}

// TestListFilterBounds: filters longer than any name are refused (they
// cannot match, and the API keeps answers by filter); repeated statuses
// are one.
func TestListFilterBounds(t *testing.T) {
	e := newEnv(t, "")
	alice, root := e.as("alice"), e.as("root")
	long := strings.Repeat("n", 129)
	for _, tc := range []struct {
		w      who
		query  string
		detail string
	}{
		{alice, "name=" + long, "name"},
		{root, "owner=" + long, "owner"},
		{alice, "status=" + strings.Repeat("x,", 100), "status"},
	} {
		r := e.do(tc.w, "GET", "/executions?"+tc.query, nil)
		eb := r.apiError(t)
		if r.status != http.StatusBadRequest || len(eb.Details) == 0 || eb.Details[0].Path != tc.detail || len(eb.Details) > 10 {
			t.Errorf("%.40s...: %d %+v", tc.query, r.status, eb)
		}
	}
	e.must(alice, "GET", "/executions?name="+long[:128], nil, http.StatusOK, nil)
	var l client.ExecutionList
	e.must(alice, "GET", "/executions?status=running,running,queued,running", nil, http.StatusOK, &l)
}
