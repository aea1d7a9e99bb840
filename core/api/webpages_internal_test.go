package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zoe-project/zoe/client"
	"github.com/zoe-project/zoe/core/state"
	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/auth"
)

// roleAuth accepts "<name>"/"pw" for the users it knows, with their role.
// In-process: what is tested is the API's rule for the web pages' marker,
// not the plugin wire.
type roleAuth map[string]auth.Role

func (a roleAuth) Authenticate(_ context.Context, user, password string) (auth.Identity, error) {
	r, ok := a[user]
	if !ok || password != "pw" {
		return auth.Identity{}, sdk.ErrInvalidCredentials
	}
	return auth.Identity{Username: user, Role: r}, nil
}

func (a roleAuth) Lookup(_ context.Context, user string) (auth.Identity, error) {
	r, ok := a[user]
	if !ok {
		return auth.Identity{}, sdk.ErrNotFound
	}
	return auth.Identity{Username: user, Role: r}, nil
}

func (a roleAuth) Generation(context.Context) (uint64, error) { return 1, nil }

// TestViaWebPages: the marker the web pages set in process lets a guest
// through exactly the routes marked WebGuests and lets them log in; without
// it guests are refused everywhere; it gives an anonymous caller nothing.
// A remote client cannot set it: it is a context value, and the test
// server below sets it only for requests carrying a header of this test.
func TestViaWebPages(t *testing.T) {
	st, err := state.OpenSQLite(t.Context(), filepath.Join(t.TempDir(), "zoe.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	api := New(nil, Config{Store: st, Auth: []Authenticator{roleAuth{"gus": auth.RoleGuest, "alice": auth.RoleUser}}})
	t.Cleanup(api.Shutdown)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Test-Web-Pages") == "1" {
			r = r.WithContext(ViaWebPages(r.Context()))
		}
		api.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)

	call := func(method, path, user string, web bool, body string) (int, string) {
		t.Helper()
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		var rd *strings.Reader
		if body == "" {
			rd = strings.NewReader("")
		} else {
			rd = strings.NewReader(body)
		}
		req, _ := http.NewRequestWithContext(ctx, method, srv.URL+path, rd)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		if user != "" {
			req.SetBasicAuth(user, "pw")
		}
		if web {
			req.Header.Set("X-Test-Web-Pages", "1")
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		if resp.StatusCode < 400 {
			return resp.StatusCode, ""
		}
		var e client.Error
		_ = json.NewDecoder(resp.Body).Decode(&e)
		return resp.StatusCode, e.Error.Message
	}
	// Users exist once they logged in.
	if st, msg := call("GET", "/api/v1/me", "alice", false, ""); st != 200 {
		t.Fatalf("alice: %d %s", st, msg)
	}

	const guestRefusal = "guests may not use the API"
	admitted := 0
	for _, rt := range api.routes {
		if rt.Access == Anyone {
			continue
		}
		path := prefix + strings.NewReplacer("{id}", "1", "{name}", "alice").Replace(rt.Path)
		body := ""
		if rt.Method == "POST" || rt.Method == "PUT" || rt.Method == "PATCH" {
			body = "{}"
		}
		for _, tc := range []struct {
			user string
			web  bool
			// want: refused as a guest, or 401 for nobody.
			guestRefused bool
			status       int
		}{
			{"gus", false, true, 403},
			{"gus", true, !rt.WebGuests, 0},
			{"", true, false, 401},
		} {
			got, msg := call(rt.Method, path, tc.user, tc.web, body)
			refused := got == 403 && strings.Contains(msg, guestRefusal)
			switch {
			case tc.status == 401 && got != 401:
				t.Errorf("%s %s anonymous with the marker: %d %q, want 401", rt.Method, rt.Path, got, msg)
			case tc.status != 401 && refused != tc.guestRefused:
				t.Errorf("%s %s as a guest (marker %v): %d %q; refused as a guest: %v, want %v",
					rt.Method, rt.Path, tc.web, got, msg, refused, tc.guestRefused)
			}
			if tc.web && tc.user != "" && !refused {
				admitted++
			}
		}
		if rt.WebGuests && rt.Access != SignedIn {
			t.Errorf("%s %s: WebGuests on a route of access %s", rt.Method, rt.Path, rt.Access)
		}
	}
	if admitted == 0 {
		t.Error("the marker admitted a guest nowhere")
	}
	// No admin route lets guests in, whatever the marker.
	for _, rt := range api.routes {
		if rt.Access == Admin && rt.WebGuests {
			t.Errorf("%s %s: an admin route open to guests", rt.Method, rt.Path)
		}
	}

	// Logging in: guests only through the pages.
	login := `{"username":"gus","password":"pw"}`
	if got, msg := call("POST", "/api/v1/sessions", "", false, login); got != 403 || !strings.Contains(msg, guestRefusal) {
		t.Errorf("guest login without the marker: %d %q, want 403", got, msg)
	}
	if got, msg := call("POST", "/api/v1/sessions", "", true, login); got != 201 {
		t.Errorf("guest login with the marker: %d %q, want 201", got, msg)
	}
}
