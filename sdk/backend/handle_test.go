package backend

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/zoe-project/zoe/sdk"
)

type stateV2 struct {
	Host string `json:"host"`
	Port int    `json:"port"`
}

func TestEncodeHandle(t *testing.T) {
	tests := []struct {
		name    string
		version uint32
		state   any
		want    string
		wantErr error
	}{
		{name: "struct", version: 2, state: stateV2{Host: "h1", Port: 80}, want: `{"host":"h1","port":80}`},
		{name: "nil state", version: 1, state: nil, want: `null`},
		{name: "version 0 is none", version: 0, state: stateV2{}, wantErr: sdk.ErrInternal},
		{name: "unencodable state is an error, not an empty handle", version: 1, state: math.Inf(1), wantErr: sdk.ErrInternal},
		{name: "a channel", version: 1, state: make(chan int), wantErr: sdk.ErrInternal},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, err := EncodeHandle("c1", tc.version, tc.state)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), `handle "c1"`) {
					t.Fatalf("err %v, want one wrapping %v that names the handle", err, tc.wantErr)
				}
				if h.ID != "" || h.State != nil {
					t.Errorf("a failed encoding returned %+v", h)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if h.ID != "c1" || h.Version != tc.version || string(h.State) != tc.want {
				t.Errorf("handle %+v (state %s), want id c1, version %d, state %s", h, h.State, tc.version, tc.want)
			}
		})
	}
}

func TestDecodeHandle(t *testing.T) {
	const current = 2
	good, err := EncodeHandle("c1", 2, stateV2{Host: "h1", Port: 80})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		h           Handle
		into        func() any
		wantVersion uint32
		wantState   stateV2
		wantErr     error
		wantMsg     string
	}{
		{name: "current version", h: good, wantVersion: 2, wantState: stateV2{Host: "h1", Port: 80}},
		{name: "an older version is returned for the caller to convert",
			h: Handle{ID: "c1", Version: 1, State: []byte(`{"host":"h0"}`)}, wantVersion: 1, wantState: stateV2{Host: "h0"}},
		{name: "fields a newer compatible plugin added are ignored",
			h: Handle{ID: "c1", Version: 2, State: []byte(`{"host":"h1","port":80,"zone":"z"}`)}, wantVersion: 2, wantState: stateV2{Host: "h1", Port: 80}},
		{name: "written by a newer plugin", h: Handle{ID: "c1", Version: 3, State: []byte(`{}`)},
			wantErr: sdk.ErrUnsupported, wantMsg: "version 3, written by a newer version of this plugin, which reads versions 1 to 2"},
		{name: "much newer", h: Handle{ID: "c1", Version: math.MaxUint32, State: []byte(`{}`)}, wantErr: sdk.ErrUnsupported},
		{name: "only an ID: version 0, state untouched", h: Handle{ID: "c1"}, wantVersion: 0, wantState: stateV2{Host: "before"}},
		{name: "only an ID, empty state", h: Handle{ID: "c1", State: []byte{}}, wantVersion: 0, wantState: stateV2{Host: "before"}},
		{name: "a state without a version", h: Handle{ID: "c1", State: good.State}, wantErr: sdk.ErrInvalidArgument, wantMsg: "no version"},
		{name: "not JSON", h: Handle{ID: "c1", Version: 2, State: []byte(`host=h1`)}, wantErr: sdk.ErrInvalidArgument, wantMsg: "unreadable state"},
		{name: "wrong shape", h: Handle{ID: "c1", Version: 2, State: []byte(`{"port":"eighty"}`)}, wantErr: sdk.ErrInvalidArgument},
		{name: "no state", h: Handle{ID: "c1", Version: 2}, wantErr: sdk.ErrInvalidArgument},
		{name: "not a pointer is the plugin's mistake", h: good, into: func() any { return stateV2{} }, wantErr: sdk.ErrInternal},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := stateV2{Host: "before"}
			var into any = &st
			if tc.into != nil {
				into = tc.into()
			}
			v, err := DecodeHandle(tc.h, current, into)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), tc.wantMsg) || !strings.Contains(err.Error(), `handle "c1"`) {
					t.Fatalf("err %v, want one wrapping %v saying %q about handle c1", err, tc.wantErr, tc.wantMsg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if v != tc.wantVersion || st != tc.wantState {
				t.Errorf("version %d state %+v, want %d %+v", v, st, tc.wantVersion, tc.wantState)
			}
		})
	}
}
