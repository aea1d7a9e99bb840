package backend

import (
	"errors"
	"testing"

	"github.com/zoe-project/zoe/sdk"
)

func TestCheckVolumes(t *testing.T) {
	tests := []struct {
		name string
		vols []Volume
		ok   bool
	}{
		{"none", nil, true},
		{"host path", []Volume{{HostPath: "/srv/a", MountPoint: "/mnt/a"}}, true},
		{"named volume", []Volume{{VolumeName: "v", MountPoint: "/mnt/v", ReadOnly: true}}, true},
		{"relative mount point", []Volume{{HostPath: "/srv/a", MountPoint: "mnt/a"}}, false},
		{"empty mount point", []Volume{{VolumeName: "v"}}, false},
		{"relative host path", []Volume{{HostPath: "srv/a", MountPoint: "/mnt/a"}}, false},
		{"dot host path", []Volume{{HostPath: ".", MountPoint: "/mnt/a"}}, false},
		{"no source", []Volume{{MountPoint: "/mnt/a"}}, false},
		{"two sources", []Volume{{HostPath: "/srv/a", VolumeName: "v", MountPoint: "/mnt/a"}}, false},
		{"the second bad", []Volume{{VolumeName: "v", MountPoint: "/mnt/v"}, {HostPath: "a", MountPoint: "/mnt/a"}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckVolumes(tt.vols)
			if tt.ok && err != nil || !tt.ok && !errors.Is(err, sdk.ErrInvalidArgument) {
				t.Errorf("CheckVolumes(%+v) = %v; want ok %v", tt.vols, err, tt.ok)
			}
		})
	}
}

func TestListOptionsMatches(t *testing.T) {
	labels := map[string]string{"zoe.execution": "7", "zoe.service": "web", "empty": ""}
	tests := []struct {
		want map[string]string
		ok   bool
	}{
		{nil, true},
		{map[string]string{}, true},
		{map[string]string{"zoe.execution": "7"}, true},
		{map[string]string{"zoe.execution": "7", "zoe.service": "web"}, true},
		{map[string]string{"empty": ""}, true},
		{map[string]string{"zoe.execution": "70"}, false},
		{map[string]string{"zoe.execution": "7", "zoe.service": "db"}, false},
		{map[string]string{"missing": ""}, false},
	}
	for _, tt := range tests {
		if got := (ListOptions{Labels: tt.want}).Matches(labels); got != tt.ok {
			t.Errorf("ListOptions{%v}.Matches = %v, want %v", tt.want, got, tt.ok)
		}
	}
}
