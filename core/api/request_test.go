package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/zoe-project/zoe/client"
	"github.com/zoe-project/zoe/core/shop"
	"github.com/zoe-project/zoe/core/zapp"
	"github.com/zoe-project/zoe/sdk"
)

func TestDecodeJSON(t *testing.T) {
	tests := []struct {
		name, body string
		path, msg  string // of the *badRequest; "" path and msg for success
	}{
		{"ok", `{"name": "x", "description": {"a": [1, 2]}}`, "", ""},
		{"ok with spaces", " \n{\"name\": \"x\"}\n ", "", ""},
		{"empty", ``, "", "the body is empty"},
		{"truncated", `{"name": "x"`, "", "ends too early"},
		{"syntax", `{"name": x}`, "", "malformed JSON at byte"},
		{"unknown field", `{"nme": "x"}`, "nme", "unknown field"},
		{"wrong type", `{"name": 1}`, "name", "must be a string, not number"},
		{"nested wrong type", `{"shop": {"id": "a", "parameters": {"k": 1}}}`, "shop.parameters", "must be a string"},
		{"array body", `[1]`, "", "must be a JSON object, not array"},
		{"trailing", `{"name": "x"} {"name": "y"}`, "", "unexpected data after the JSON object"},
		{"trailing garbage", `{"name": "x"} ]`, "", "unexpected data after the JSON object"},
		{"trailing open string", `{}"`, "", "unexpected data after the JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v client.StartExecution
			err := decodeJSON(strings.NewReader(tt.body), &v)
			if tt.msg == "" {
				if err != nil {
					t.Fatalf("error %v", err)
				}
				return
			}
			var bad *badRequest
			if !errors.As(err, &bad) {
				t.Fatalf("error %v (%T), want a *badRequest", err, err)
			}
			if bad.detail.Path != tt.path || !strings.Contains(bad.detail.Message, tt.msg) {
				t.Errorf("detail %+v, want path %q and message with %q", bad.detail, tt.path, tt.msg)
			}
		})
	}
}

// FuzzDecodeRequests feeds every request document of the API to the
// decoder: no panic, and what decodes survives a round trip unchanged.
func FuzzDecodeRequests(f *testing.F) {
	for _, seed := range []string{
		`{"name": "x", "description": {"name": "a", "services": []}}`,
		`{"shop": {"id": "notebook-0", "parameters": {"A": "1"}}}`,
		`{"username": "alice", "password": "pw", "ttl": 60}`,
		`{"role": "admin", "enabled": false, "quota": ""}`,
		`{"name": "q", "concurrent_executions": 2, "cores": 1.5, "memory": 1073741824, "runtime_limit": 3600}`,
		`{"name": "\u0000"}`, `{}`, `[]`, `null`, `{"ttl": 1e400}`, `{"cores": -0}`, `{}"`,
	} {
		f.Add([]byte(seed))
	}
	targets := []func() any{
		func() any { return &client.StartExecution{} },
		func() any { return &client.Login{} },
		func() any { return &client.UserUpdate{} },
		func() any { return &client.Quota{} },
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, target := range targets {
			v := target()
			err := decodeJSON(strings.NewReader(string(body)), v)
			if err != nil {
				var bad *badRequest
				if !errors.As(err, &bad) {
					t.Fatalf("%T: error %v is not a *badRequest", v, err)
				}
				if bad.detail.Message == "" {
					t.Fatalf("%T: empty message", v)
				}
				continue
			}
			if q, ok := v.(*client.Quota); ok {
				if _, details := quotaIn(*q); details == nil && (q.Cores < 0 || q.Memory < 0 || q.ConcurrentExecutions < 0) {
					t.Fatalf("quotaIn accepted %+v", q)
				}
			}
			if se, ok := v.(*client.StartExecution); ok {
				_ = checkStart(*se)
			}
			data, err := json.Marshal(v)
			if err != nil {
				t.Fatalf("%T: cannot encode what was decoded: %v", v, err)
			}
			again := target()
			if err := decodeJSON(strings.NewReader(string(data)), again); err != nil {
				t.Fatalf("%T: %s does not decode again: %v", v, data, err)
			}
			if !reflect.DeepEqual(normal(t, v), normal(t, again)) {
				t.Fatalf("%T: round trip changed %s", v, data)
			}
		}
	})
}

// normal re-encodes v so that equal JSON compares equal (raw messages keep
// their spacing otherwise).
func normal(t *testing.T, v any) any {
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestOpenAPIDocument(t *testing.T) {
	s := New(nil, Config{Info: client.Info{Version: "t"}})
	doc := s.OpenAPI()
	data, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	var parsed struct {
		OpenAPI    string                               `json:"openapi"`
		Paths      map[string]map[string]map[string]any `json:"paths"`
		Components struct {
			Schemas map[string]map[string]any `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(data, &parsed); err != nil {
		t.Fatal(err)
	}
	if parsed.OpenAPI != "3.0.3" || len(parsed.Paths) == 0 {
		t.Fatalf("document: %s", data)
	}
	// Every $ref resolves, and every route has an operation.
	for _, ref := range refs(doc) {
		name := strings.TrimPrefix(ref, "#/components/schemas/")
		if parsed.Components.Schemas[name] == nil {
			t.Errorf("unresolved %s", ref)
		}
	}
	seen := map[string]bool{}
	for _, rt := range s.routes {
		op := parsed.Paths[rt.Path][strings.ToLower(rt.Method)]
		if op == nil {
			t.Errorf("%s %s has no operation", rt.Method, rt.Path)
			continue
		}
		id, _ := op["operationId"].(string)
		if seen[id] {
			t.Errorf("operationId %s twice", id)
		}
		seen[id] = true
		if strings.Contains(rt.Path, "{") && op["parameters"] == nil {
			t.Errorf("%s %s lacks its path parameters", rt.Method, rt.Path)
		}
	}
	if exec := parsed.Components.Schemas["Execution"]; exec == nil || exec["properties"].(map[string]any)["status"] == nil {
		t.Errorf("Execution schema: %v", exec)
	}
}

func refs(v any) []string {
	var out []string
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if s, ok := e.(string); ok && k == "$ref" {
				out = append(out, s)
			}
			out = append(out, refs(e)...)
		}
	case []any:
		for _, e := range x {
			out = append(out, refs(e)...)
		}
	}
	return out
}

// TestEveryCategoryHasAStatus: no category of sdk falls through to a 500
// but ErrInternal.
func TestEveryCategoryHasAStatus(t *testing.T) {
	want := map[error]int{
		sdk.ErrNotFound: 404, sdk.ErrInvalidArgument: 400, sdk.ErrAlreadyExists: 409, sdk.ErrUnavailable: 503,
		sdk.ErrPermissionDenied: 403, sdk.ErrInvalidCredentials: 400, sdk.ErrConflict: 409,
		sdk.ErrResourceExhausted: 409, sdk.ErrDeadlineExceeded: 504, sdk.ErrUnsupported: 501, sdk.ErrInternal: 500,
	}
	for _, cat := range sdk.Categories() {
		t.Run(cat.Error(), func(t *testing.T) {
			status, ok := want[cat]
			if !ok {
				t.Fatalf("a new category: decide its status here")
			}
			var logs bytes.Buffer
			s := New(hclog.New(&hclog.LoggerOptions{Output: &logs}), Config{})
			rec := httptest.NewRecorder()
			s.fail(rec, fmt.Errorf("the plugin says no: %w", cat))
			if rec.Code != status {
				t.Errorf("status %d, want %d", rec.Code, status)
			}
			var e client.Error
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error.Code == "" {
				t.Fatalf("not the error shape: %s", rec.Body)
			}
			if got, _ := categoryStatus(cat); got != status {
				t.Errorf("categoryStatus = %d", got)
			}
			if logged := strings.Contains(logs.String(), "[ERROR]"); logged != (status == 500) {
				t.Errorf("logged as an error: %v, want %v: %s", logged, status == 500, logs.String())
			}
		})
	}
}

// TestCancelledRequests: a client that hangs up is no error: never a 500,
// never logged as an error, whatever the error that came of it.
func TestCancelledRequests(t *testing.T) {
	for _, err := range []error{
		context.Canceled,
		fmt.Errorf("list executions: %w", context.Canceled),
		fmt.Errorf("the plugin: %w", errors.Join(sdk.ErrUnavailable, context.Canceled)),
		fmt.Errorf("get user: %w: %w", sdk.ErrInternal, context.Canceled),
	} {
		var logs bytes.Buffer
		s := New(hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Info}), Config{})
		rec := httptest.NewRecorder()
		s.fail(rec, err)
		if rec.Code >= 500 && rec.Code != http.StatusServiceUnavailable || strings.Contains(logs.String(), "[ERROR]") || strings.Contains(logs.String(), "[WARN]") {
			t.Errorf("%v: %d, logged %q", err, rec.Code, logs.String())
		}
	}
}

func TestDescribe(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("name: too long: %w", sdk.ErrInvalidArgument), "name: too long"},
		{fmt.Errorf("create execution: you may run 5 (quota %q): %w", "user", sdk.ErrResourceExhausted), `create execution: you may run 5 (quota "user")`},
		{fmt.Errorf("terminate: %w", fmt.Errorf("execution 3 is ended: %w", sdk.ErrConflict)), "terminate: execution 3 is ended"},
		{fmt.Errorf("open the shop: %w: %w", errors.New("no such directory"), sdk.ErrUnavailable), "open the shop: no such directory"},
		{fmt.Errorf("user %q: %w", "bob", sdk.ErrNotFound), `user "bob": not found`},
		{fmt.Errorf("GPUs: %w", sdk.ErrUnsupported), "GPUs: not supported"},
		{fmt.Errorf("x: %w", errors.Join(sdk.ErrUnavailable, context.Canceled)), "x: context canceled"},
		{sdk.WithCategory(sdk.ErrAlreadyExists, `quota "x" already exists`), `quota "x" already exists`},
		{sdk.ErrInvalidArgument, "invalid argument"},
		{fmt.Errorf("update user %q: %w", "nobody", fmt.Errorf("user %q: %w", "nobody", sdk.ErrNotFound)), `update user "nobody": not found`},
		{fmt.Errorf("delete quota %q: %w", "x", fmt.Errorf("quota %q: %w", "x", sdk.ErrNotFound)), `delete quota "x": not found`},
		{fmt.Errorf("update user %q: %w", "bob", fmt.Errorf("quota %q: %w", "bob", sdk.ErrNotFound)), `update user "bob": quota "bob": not found`},
	} {
		if got := describe(tc.err); got != tc.want {
			t.Errorf("describe(%q) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

// TestFailMessages: an error answer's message says what is wrong once:
// not again in its details, without the names of sdk categories or codes
// at its end, and without a part said twice.
func TestFailMessages(t *testing.T) {
	params := errors.Join(&shop.ParameterError{Parameter: "CORES", Message: "must be a number from 1 to 8"},
		&shop.ParameterError{Parameter: "NAME", Message: "unknown parameter"})
	for _, tc := range []struct {
		name    string
		err     error
		status  int
		message string
		details []client.Detail
	}{
		{"a field of the body", &badRequest{client.Detail{Path: "name", Message: "1 to 64 letters"}}, 400,
			"invalid name", []client.Detail{{Path: "name", Message: "1 to 64 letters"}}},
		{"the whole body", &badRequest{client.Detail{Message: "the JSON body ends too early"}}, 400,
			"the JSON body ends too early", nil},
		{"shop parameters", params, 400, "the shop parameters have 2 problem(s)",
			[]client.Detail{{Path: "shop.parameters.CORES", Message: "must be a number from 1 to 8"},
				{Path: "shop.parameters.NAME", Message: "unknown parameter"}}},
		{"one shop parameter", fmt.Errorf("shop entry x: %w", &shop.ParameterError{Parameter: "N", Message: "not a number"}), 400,
			"the shop parameters have 1 problem(s)", []client.Detail{{Path: "shop.parameters.N", Message: "not a number"}}},
		{"services' resources", errors.Join(&shop.ParameterError{Parameter: "N", Message: "not a number"},
			&shop.ResourceError{Service: "worker", Field: shop.FieldMemory, Message: "must be at least 1024 bytes, got 1"},
			&shop.ResourceError{Service: "a.b", Message: "unknown service"}), 400,
			"the shop entry's values have 3 problem(s)", []client.Detail{{Path: "shop.parameters.N", Message: "not a number"},
				{Path: "shop.resources.worker.memory", Message: "must be at least 1024 bytes, got 1"},
				{Path: `shop.resources["a.b"]`, Message: "unknown service"}}},
		{"an entry's description with the values", fmt.Errorf("%w: the description with these values is invalid: %w",
			shop.ErrInvalidParameter, zapp.Problems{{Path: "services[0].image", Message: "must not be empty"}}), 400,
			"the ZApp description has 1 problem(s)", []client.Detail{{Path: "description.services[0].image", Message: "must not be empty"}}},
		{"a conflict", fmt.Errorf("terminate: %w", fmt.Errorf("execution 3 is ended: %w", sdk.ErrConflict)), 409,
			"terminate: execution 3 is ended", nil},
		{"a quota", fmt.Errorf("you may run 5 executions at a time: %w", sdk.ErrResourceExhausted), 409,
			"you may run 5 executions at a time", nil},
		{"a part said twice", fmt.Errorf("open the shop: %w: %w", errors.New("no such directory: no such directory"), sdk.ErrUnavailable), 503,
			"open the shop: no such directory", nil},
		{"a name said twice", fmt.Errorf("update user %q: %w", "bob", fmt.Errorf("user %q: %w", "bob", sdk.ErrNotFound)), 404,
			`update user "bob": not found`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := New(hclog.NewNullLogger(), Config{})
			rec := httptest.NewRecorder()
			s.fail(rec, tc.err)
			var e client.Error
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil {
				t.Fatalf("not the error shape: %s", rec.Body)
			}
			if rec.Code != tc.status || e.Error.Message != tc.message || !slices.Equal(e.Error.Details, tc.details) {
				t.Errorf("got %d %q %+v\nwant %d %q %+v", rec.Code, e.Error.Message, e.Error.Details, tc.status, tc.message, tc.details)
			}
			for _, d := range e.Error.Details {
				if strings.Contains(e.Error.Message, d.Message) {
					t.Errorf("the message %q repeats the detail %q", e.Error.Message, d.Message)
				}
			}
			// "not found" and "already exists" say what is wrong; the
			// others only sort an error.
			for _, cat := range classifying {
				if strings.HasSuffix(e.Error.Message, cat) || strings.Contains(e.Error.Message, "("+e.Error.Code+")") {
					t.Errorf("the message %q ends in a category or holds the code", e.Error.Message)
				}
			}
		})
	}
}
