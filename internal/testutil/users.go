package testutil

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// User is a line of a users file for the auth-file plugin.
type User struct{ Name, Password, Role string }

// WriteUsersFile writes users, with bcrypt hashes of the lowest cost, to
// path with mode 0600, as the auth-file plugin requires.
func WriteUsersFile(t testing.TB, path string, users ...User) {
	t.Helper()
	var b strings.Builder
	for _, u := range users {
		hash, err := bcrypt.GenerateFromPassword([]byte(u.Password), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s,%s,%s\n", u.Name, hash, u.Role)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
}
