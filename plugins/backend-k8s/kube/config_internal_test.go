package kube

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/zoe-project/zoe/sdk"
)

// TestConfigureRefuses: each bad attribute is one diagnostic at its path,
// and the good ones set what the client uses.
func TestConfigureRefuses(t *testing.T) {
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`), 0o600); err != nil {
		t.Fatal(err)
	}
	configure := func(attrs map[string]any) (*Plugin, error) {
		attrs["kubeconfig"] = kubeconfig
		if _, ok := attrs["pod_pids_limit"]; !ok {
			attrs["pod_pids_limit"] = 1024
		}
		b, err := json.Marshal(attrs)
		if err != nil {
			t.Fatal(err)
		}
		p := New(nil)
		return p, p.Configure(context.Background(), sdk.Config{JSON: b, Deployment: "dev"})
	}
	for _, c := range []struct {
		attr  string
		value any
	}{
		{"api_qps", 0}, {"api_qps", -2}, {"api_qps", 1e7},
		{"node_selector", "zone in (eu"}, {"pending_timeout", "soon"}, {"endpoint_mode", "ingress"},
	} {
		_, err := configure(map[string]any{c.attr: c.value})
		var diags sdk.Diagnostics
		if !errors.As(err, &diags) || len(diags) != 1 || !slices.Equal(diags[0].Path, []string{c.attr}) {
			t.Errorf("%s = %v: %v, want one diagnostic at %s", c.attr, c.value, err, c.attr)
		}
	}
	for _, c := range []struct {
		qps  any
		want float32
	}{{nil, -1}, {20, 20}, {-1, -1}} {
		attrs := map[string]any{}
		if c.qps != nil {
			attrs["api_qps"] = c.qps
		}
		p, err := configure(attrs)
		if err != nil {
			t.Fatalf("api_qps %v: %v", c.qps, err)
		}
		if got := p.rt.set.qps; got != c.want {
			t.Errorf("api_qps %v: the client's rate is %v, want %v", c.qps, got, c.want)
		}
	}
}
