package api

import "testing"

// Another user's queued execution shows why it waits, but not the error of
// a failed start, whose text can name its owner (a retry of "cannot confirm
// the owner bob: ...") or their paths.
func TestOthersReason(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"retrying the start in 8s: cannot confirm the owner bob: ldap: connection refused", "retrying the start in 8s"},
		{"retrying the clean-up in 1m: workspace /srv/zoe/bob: permission denied", "retrying the clean-up in 1m"},
		{"needs 4 cores, 2 free on the best node", "needs 4 cores, 2 free on the best node"},
		{"waiting: retrying: x", "waiting: retrying: x"},
		{"", ""},
	} {
		if got := othersReason(tc.in); got != tc.want {
			t.Errorf("othersReason(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
