package scheduler

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/zoe-project/zoe/sdk/backend"
)

const gib = 1 << 30

func node(name string, cores float64, memGiB int64, labels ...string) Node {
	return Node{Name: name, Cores: cores, Memory: memGiB * gib, Labels: labels, State: backend.NodeReady,
		Images: []string{"img"}}
}

// used returns n with cores and memory already reserved.
func used(n Node, cores float64, memGiB int64) Node {
	n.Reserved = Resources{Cores: cores, Memory: memGiB * gib}
	return n
}

func ess(name string, cores float64, memGiB int64, labels ...string) Service {
	return Service{Name: name, Essential: true, Cores: cores, Memory: memGiB * gib, Labels: labels, Image: "img"}
}

func ela(name string, cores float64, memGiB int64, labels ...string) Service {
	s := ess(name, cores, memGiB, labels...)
	s.Essential = false
	return s
}

func on(s Service, node string) Service {
	s.Node = node
	return s
}

func exe(id int64, svcs ...Service) Execution { return Execution{ID: id, Services: svcs} }

func schedule(t *testing.T, in Input) *Decision {
	t.Helper()
	d, err := Schedule(&in)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// placed renders the starts as "exec/service@node", in decision order.
func placed(d *Decision) []string {
	out := []string{}
	for _, s := range d.Starts {
		out = append(out, fmt.Sprintf("%d/%s@%s", s.Execution, s.Service, s.Node))
	}
	return out
}

// waiting renders the waiting executions as "exec: reason", in queue order.
func waiting(d *Decision) []string {
	out := []string{}
	for _, w := range d.Waiting {
		out = append(out, fmt.Sprintf("%d: %s", w.Execution, w.Reason))
	}
	return out
}

func check(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s:\n got  %s\n want %s", what, strings.Join(got, ", "), strings.Join(want, ", "))
	}
}
