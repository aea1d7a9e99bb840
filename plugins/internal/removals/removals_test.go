package removals

import (
	"testing"
	"time"
)

func TestSet(t *testing.T) {
	now := time.Unix(1000, 0)
	s := New(time.Minute)
	s.now = func() time.Time { return now }
	s.Add("a")
	if !s.Has("a") || s.Has("b") {
		t.Fatal("a added, b not: want Has(a) and not Has(b)")
	}
	now = now.Add(time.Minute + time.Second)
	if s.Has("a") {
		t.Error("a is remembered after the keep")
	}
	s.Add("b")
	if len(s.at) != 1 {
		t.Errorf("%d ids held, want only b: the old ones are dropped on Add", len(s.at))
	}
}
