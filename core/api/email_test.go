package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/zoe-project/zoe/client"
)

// TestUserEmail: an admin sets the address notifications go to, over the
// auth source's; a bad address is refused with its JSON path; a user
// cannot set it; "" returns to the source's.
func TestUserEmail(t *testing.T) {
	e := newEnv(t, "")
	root, dora := e.as("root"), e.as("dora")
	var before client.User
	e.must(dora, "GET", "/me", nil, http.StatusOK, &before)
	var u client.User
	e.must(root, "PATCH", "/users/dora", client.UserUpdate{Email: ptr("dora@lab.example")}, http.StatusOK, &u)
	if u.Email != "dora@lab.example" || u.AuthEmail != before.AuthEmail {
		t.Fatalf("after the admin's change: %+v (before %+v)", u, before)
	}
	// A new login (a password check) leaves it.
	e.must(anonymous, "POST", "/sessions", client.Login{Username: "dora", Password: passwords["dora"]}, http.StatusCreated, nil)
	e.must(dora, "GET", "/me", nil, http.StatusOK, &u)
	if u.Email != "dora@lab.example" {
		t.Fatalf("after a login: %+v", u)
	}
	for _, tc := range []struct {
		name  string
		email string
	}{
		{"not an address", "dora"},
		{"a display name", "Dora <dora@lab.example>"},
		{"a header injection", "dora@lab.example\r\nBcc: eve@evil.example"},
		{"two addresses", "dora@lab.example, eve@evil.example"},
		{"too long", strings.Repeat("d", 250) + "@lab.example"},
	} {
		r := e.do(root, "PATCH", "/users/dora", client.UserUpdate{Email: ptr(tc.email)})
		eb := r.apiError(t)
		if r.status != http.StatusBadRequest || len(eb.Details) != 1 || eb.Details[0].Path != "email" {
			t.Errorf("%s: %d %s, want 400 at email", tc.name, r.status, r.body)
		}
	}
	if r := e.do(dora, "PATCH", "/users/dora", client.UserUpdate{Email: ptr("eve@evil.example")}); r.status != http.StatusForbidden {
		t.Errorf("dora sets her own address: %d %s", r.status, r.body)
	}
	e.must(root, "GET", "/users/dora", nil, http.StatusOK, &u)
	if u.Email != "dora@lab.example" {
		t.Fatalf("a refused change changed it: %+v", u)
	}
	// A fresh value: "" is left out of the answer.
	u = client.User{}
	e.must(root, "PATCH", "/users/dora", client.UserUpdate{Email: ptr("")}, http.StatusOK, &u)
	if u.Email != before.AuthEmail || u.AuthEmail != before.AuthEmail {
		t.Fatalf("after clearing: %+v, want the source's %q", u, before.AuthEmail)
	}
}
