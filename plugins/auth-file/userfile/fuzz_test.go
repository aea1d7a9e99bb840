package userfile

import (
	"errors"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// FuzzParse checks that Parse never panics, that every error names the file
// and a line of it, and that every accepted plain-text user checks with the
// password its line gives and with no other.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"",
		"alice,pw,user\n",
		"# comment\n\nalice,pw,user,1000,100\nbob,pw,admin,,7\r\n",
		`"alice"," p,w ""q"" ",guest`,
		"alice,pw\nbob,,root\n,x,user\n",
		"alice,a,user\nalice,b,user\n",
		"carol,$2a$04$eX0vxbCdfy5WWonPjggqGeNlyccZzPJKACeZ9u10AD.IUFaKTTOjS,user\nalice,pw,user",
		"alice,$2b$04$short,user\nbob,$6$salt$hash,user",
		"alice,\"unclosed,user\nbob,p\"w,user\n",
		"alice,pw,user,4294967296,-1\n",
		"alice,!pw,user\nbob,!,guest\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data string) {
		u, err := Parse("fuzz", strings.NewReader(data))
		if err != nil {
			if u != nil {
				t.Fatal("Parse returned users and an error")
			}
			checkErrors(t, data, err)
			return
		}
		lines := strings.Split(data, "\n")
		for _, e := range u.Entries() {
			if msg := checkUsername(e.Username); msg != "" {
				t.Fatalf("accepted username %q: %s", e.Username, msg)
			}
			if e.Line < 1 || e.Line > len(lines) {
				t.Fatalf("user %q on line %d of %d", e.Username, e.Line, len(lines))
			}
			if e.Hashed {
				continue // its password is not known
			}
			// Round trip: the line the entry comes from gives its password.
			fields, err := splitLine(strings.TrimSpace(lines[e.Line-1]))
			if err != nil || len(fields) < 3 || fields[0] != e.Username {
				t.Fatalf("line %d of an accepted user %q splits into %q, %v", e.Line, e.Username, fields, err)
			}
			if u.maxCost > bcrypt.MinCost+2 {
				continue // the fuzzer may have made a costly hash: skip checks that would run it
			}
			if e.Disabled {
				// A disabled user checks with no password: neither the
				// field nor what follows its '!'.
				for _, pw := range []string{fields[1], strings.TrimLeft(fields[1], "!")} {
					if _, ok := u.Check(e.Username, pw); ok {
						t.Fatalf("Check(disabled %q) accepts a password", e.Username)
					}
				}
				continue
			}
			if got, ok := u.Check(e.Username, fields[1]); !ok || got.Username != e.Username || got.Role != e.Role {
				t.Fatalf("Check(%q, its password) = %+v, %v", e.Username, got, ok)
			}
			if _, ok := u.Check(e.Username, fields[1]+"x"); ok {
				t.Fatalf("Check(%q) accepts a wrong password", e.Username)
			}
		}
		if u.maxCost <= bcrypt.MinCost+2 {
			if _, ok := u.Check("no such user!", "pw"); ok {
				t.Fatal("Check accepts an invalid username")
			}
		}
	})
}

// checkErrors checks that err lists only *LineErrors at lines of data.
func checkErrors(t *testing.T, data string, err error) {
	t.Helper()
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("error %T is not a list of errors", err)
	}
	lines := strings.Count(data, "\n") + 1
	for _, e := range joined.Unwrap() {
		var le *LineError
		if !errors.As(e, &le) {
			t.Fatalf("error %q is not a *LineError", e)
		}
		if le.File != "fuzz" || le.Line < 1 || le.Line > lines || le.Msg == "" {
			t.Fatalf("error %q: bad place (file has %d lines)", e, lines)
		}
	}
}
