package backend

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/zoe-project/zoe/sdk"
)

// EncodeHandle returns the handle of service id whose State is state (the
// plugin's own record of the service, any value encoding/json encodes) as
// JSON, tagged with version, the version of state's layout. Versions start at
// 1: a Handle's zero Version means none was set.
//
// Change the version when an older plugin must not read the new layout (a
// field changed meaning, a new one it would need); fields an older plugin may
// ignore can be added without a new version, as JSON ignores unknown keys.
func EncodeHandle(id string, version uint32, state any) (Handle, error) {
	if version == 0 {
		return Handle{}, fmt.Errorf("handle %q: version 0: versions start at 1: %w", id, sdk.ErrInternal)
	}
	b, err := json.Marshal(state)
	if err != nil {
		return Handle{}, fmt.Errorf("handle %q: encode state: %v: %w", id, err, sdk.ErrInternal)
	}
	return Handle{ID: id, Version: version, State: b}, nil
}

// DecodeHandle reads h's State, written by EncodeHandle, into state (a
// pointer) and returns h's version, which is between 1 and current, the
// newest version this plugin writes; a plugin that reads older layouts
// converts them by that version.
//
// A handle with neither Version nor State carries only its ID: DecodeHandle
// returns version 0 and no error, and leaves state as it was. Find such a
// service by its ID alone.
//
// The ID decides whether a handle names a service, not the State: look the
// ID up first, and answer sdk.ErrNotFound when no service of this
// deployment has it, whatever Version and State hold (the conformance suite
// sends unknown IDs with unreadable States). Return DecodeHandle's error
// only for a handle whose ID names a service. A plugin that needs the State
// to know where to look (the node, say) uses it when DecodeHandle reads it,
// and looks everywhere when it returns 0 or an error:
//
//	var st handleState
//	v, decodeErr := backend.DecodeHandle(h, handleVersion, &st)
//	if decodeErr != nil || v == 0 {
//		st = handleState{} // nothing but the ID to go by
//	}
//	svc, err := b.find(ctx, h.ID, st) // sdk.ErrNotFound when no service has h.ID
//	if err != nil {
//		return err
//	}
//	if decodeErr != nil {
//		return decodeErr
//	}
//
// Errors wrap:
//   - sdk.ErrUnsupported when a newer version of the plugin wrote the handle
//     (the plugin was downgraded): the core leaves the service alone, and
//     upgrading the plugin again makes it readable;
//   - sdk.ErrInvalidArgument when the handle has a State but no version, or
//     its State is not the JSON of state.
func DecodeHandle(h Handle, current uint32, state any) (version uint32, err error) {
	switch {
	case h.Version == 0 && len(h.State) == 0:
		return 0, nil
	case h.Version > current:
		return 0, fmt.Errorf("handle %q has version %d, written by a newer version of this plugin, which reads versions 1 to %d: %w",
			h.ID, h.Version, current, sdk.ErrUnsupported)
	case h.Version == 0:
		return 0, fmt.Errorf("handle %q has a state but no version: %w", h.ID, sdk.ErrInvalidArgument)
	}
	if err := json.Unmarshal(h.State, state); err != nil {
		var bad *json.InvalidUnmarshalError
		if errors.As(err, &bad) {
			// Not a pointer: the plugin's mistake, not the handle's.
			return 0, fmt.Errorf("handle %q: decode state: %v: %w", h.ID, err, sdk.ErrInternal)
		}
		return 0, fmt.Errorf("handle %q: unreadable state (version %d): %v: %w", h.ID, h.Version, err, sdk.ErrInvalidArgument)
	}
	return h.Version, nil
}
