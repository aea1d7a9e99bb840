package authfile

import (
	"fmt"
	"log/slog"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/zoe-project/zoe/sdk/auth"
	"github.com/zoe-project/zoe/sdk/plugintest"
)

func TestConformance(t *testing.T) {
	// The lowest cost keeps the suite fast; the cost does not change behaviour.
	hash, err := bcrypt.GenerateFromPassword([]byte("bob-Pa55"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	file := fmt.Sprintf("# conformance\nalice,alice-Pa55,user,1000,100\nbob,%s,admin\ncarol, \"carol, Pa55\" ,guest\n", hash)
	uid, gid := uint32(1000), uint32(100)
	plugintest.RunAuthConformance(t, plugintest.AuthSuite{
		New: func(t *testing.T) auth.Authenticator {
			p, _ := configured(t, slog.New(slog.DiscardHandler), file)
			return p
		},
		Accounts: []plugintest.AuthAccount{
			{Username: "alice", Password: "alice-Pa55", Want: auth.Identity{Username: "alice", Role: auth.RoleUser, UID: &uid, GID: &gid}},
			{Username: "bob", Password: "bob-Pa55", Want: auth.Identity{Username: "bob", Role: auth.RoleAdmin}},
			{Username: "carol", Password: "carol, Pa55", Want: auth.Identity{Username: "carol", Role: auth.RoleGuest}},
		},
	})
}
