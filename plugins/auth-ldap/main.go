// Command auth-ldap is Zoe's `ldap` auth plugin: users from an LDAP
// directory. The core starts it; it is not meant to be run by hand.
package main

import (
	"log/slog"

	"github.com/zoe-project/zoe/plugins/auth-ldap/ldapauth"
	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/serve"
)

func main() {
	serve.Serve(func(log *slog.Logger) sdk.Plugin { return ldapauth.New(log) })
}
