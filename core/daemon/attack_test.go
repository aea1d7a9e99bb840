package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/zoe-project/zoe/client"
	"github.com/zoe-project/zoe/core/api"
	"github.com/zoe-project/zoe/core/proxy"
	"github.com/zoe-project/zoe/core/state"
	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/auth"
)

// attackUser is an auth source of one user, alice/pw, in process: the
// test is about how the proxy's caller is found; the real API and store
// are used.
type attackUser struct{}

func (attackUser) Authenticate(_ context.Context, user, password string) (auth.Identity, error) {
	if user != "alice" || password != "pw" {
		return auth.Identity{}, sdk.ErrInvalidCredentials
	}
	return auth.Identity{Username: "alice", Role: auth.RoleUser}, nil
}

func (attackUser) Lookup(_ context.Context, user string) (auth.Identity, error) {
	if user != "alice" {
		return auth.Identity{}, sdk.ErrNotFound
	}
	return auth.Identity{Username: "alice", Role: auth.RoleUser}, nil
}

func (attackUser) Generation(context.Context) (uint64, error) { return 1, nil }

// TestAttackProxyCallerAppCredentials: a proxied app's own Authorization
// header (Jupyter's "token <t>", an app's Basic login) is the app's, not
// Zoe's: a browser with a Zoe session is identified by its session and
// the header goes on to the app, instead of being checked as Zoe
// credentials (refused, counted as failed Zoe logins, and the app's
// password handed to Zoe's auth sources). A Zoe bearer token in the
// header is still Zoe's and is checked.
func TestAttackProxyCallerAppCredentials(t *testing.T) {
	st, err := state.OpenSQLite(t.Context(), filepath.Join(t.TempDir(), "zoe.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	a := api.New(nil, api.Config{Store: st, Auth: []api.Authenticator{attackUser{}}})
	t.Cleanup(a.Shutdown)
	rec := httptest.NewRecorder()
	login := httptest.NewRequest("POST", "/api/v1/sessions", strings.NewReader(`{"username":"alice","password":"pw"}`))
	login.Header.Set("Content-Type", "application/json")
	a.ServeHTTP(rec, login)
	var sess client.Session
	if err := json.Unmarshal(rec.Body.Bytes(), &sess); err != nil || sess.Token == "" {
		t.Fatalf("login: %d %s", rec.Code, rec.Body)
	}
	cookie := "zoe_session=" + strconv.FormatInt(sess.TokenInfo.ID, 10) + "." + sess.Token
	who := proxyCaller(a)
	for _, tc := range []struct {
		name, cookie, auth string
		user               string // "" for refused as unauthenticated
		header             bool
	}{
		{"session and the app's token scheme", cookie, "token 0123abcd", "alice", false},
		{"session and the app's Basic login", cookie, "Basic YXBwOmFwcA==", "alice", false},
		{"session and the app's own bearer token", cookie, "Bearer app-token", "alice", false},
		{"session and a bad Zoe token", cookie, "Bearer zoe_forged", "", false},
		{"Zoe token alone", "", "Bearer " + sess.Token, "alice", true},
		{"Zoe Basic login alone", "", "Basic YWxpY2U6cHc=", "alice", true},
		{"the app's token alone", "", "token 0123abcd", "", false},
		{"session alone", cookie, "", "alice", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/proxy/1/nb/8888/", nil)
			if tc.cookie != "" {
				r.Header.Set("Cookie", tc.cookie)
			}
			if tc.auth != "" {
				r.Header.Set("Authorization", tc.auth)
			}
			c, err := who(r)
			if tc.user == "" {
				if !errors.Is(err, proxy.ErrUnauthenticated) {
					t.Errorf("got %+v, %v; want unauthenticated", c, err)
				}
				return
			}
			if err != nil || c.Username != tc.user || c.Authorization != tc.header {
				t.Errorf("got %+v, %v; want %s (identified by the header: %v)", c, err, tc.user, tc.header)
			}
			if r.Header.Get("Authorization") != tc.auth {
				t.Errorf("the request's Authorization header was changed to %q", r.Header.Get("Authorization"))
			}
		})
	}
}
