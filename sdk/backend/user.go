package backend

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/zoe-project/zoe/sdk"
)

// CheckUser applies the contract's rule on who a service runs as, for
// back-ends to call first thing in Start: User is empty or numeric, "uid"
// or "uid:gid"; empty (the image's user, which may be root), "uid" (the
// platform picks the group: Docker the root group for a uid the image does
// not know), uid 0 and gid 0 (the root group) only with
// Security.AllowRoot. Anything else is sdk.ErrInvalidArgument.
func CheckUser(spec ServiceSpec) error {
	if spec.User == "" {
		if !spec.Security.AllowRoot {
			return fmt.Errorf("service %q: no user to run as, and the image's user may be root, which the policy does not allow: %w",
				spec.Name, sdk.ErrInvalidArgument)
		}
		return nil
	}
	uid, gid, hasGID := strings.Cut(spec.User, ":")
	ids := []string{uid}
	if hasGID {
		ids = append(ids, gid)
	}
	for _, id := range ids {
		// Numeric ids only: a name is looked up in the image, which
		// could map it to anything, root included.
		if _, err := strconv.ParseUint(id, 10, 32); err != nil {
			return fmt.Errorf("service %q: user %q: want numeric \"uid\" or \"uid:gid\": %w", spec.Name, spec.User, sdk.ErrInvalidArgument)
		}
	}
	if spec.Security.AllowRoot {
		return nil
	}
	if n, _ := strconv.ParseUint(uid, 10, 32); n == 0 {
		return fmt.Errorf("service %q: user %q is root, which the policy does not allow: %w", spec.Name, spec.User, sdk.ErrInvalidArgument)
	}
	if !hasGID {
		return fmt.Errorf("service %q: user %q has no gid, so the group could be root's, which the policy does not allow: want \"uid:gid\": %w",
			spec.Name, spec.User, sdk.ErrInvalidArgument)
	}
	if n, _ := strconv.ParseUint(gid, 10, 32); n == 0 {
		return fmt.Errorf("service %q: user %q is in group 0, root's, which the policy does not allow: %w", spec.Name, spec.User, sdk.ErrInvalidArgument)
	}
	return nil
}
