package engine

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// backOff is how long an execution whose start or clean-up failed waits
// before the next attempt, the way controller-runtime requeues a failing
// object: base after the first failure, doubled after each further one up
// to limit, plus a jitter that only adds, up to half the step, so that
// executions failing together do not all try again together. As the
// jitter never shortens a step, n attempts take at least the sum of the
// first n-1 steps, which tests rely on.
type backOff struct {
	base, limit time.Duration
	// jitter returns a number in [0, 1) (rand.Float64).
	jitter func() float64
}

// step is the wait after the n-th failure in a row (n ≥ 1) without its
// jitter: min(base·2^(n-1), limit).
func (b backOff) step(n int) time.Duration {
	d := b.base
	for i := 1; i < n && d < b.limit; i++ {
		d *= 2
	}
	return min(d, b.limit)
}

// delay is the wait after the n-th failure in a row: step(n) plus up to
// half of it, in [step, 1.5·step).
func (b backOff) delay(n int) time.Duration {
	d := b.step(n)
	return d + time.Duration(b.jitter()*float64(d/2))
}

// retry is an execution's back-off: what failed how many times in a row,
// and when the next attempt is due.
type retry struct {
	cleanup  bool // the clean-up failed, not the start
	failures int
	due      time.Time
	timer    *time.Timer // triggers the pass that makes the next attempt
}

// retryReason is the waiting reason of an execution that waits d before
// its next attempt after err.
func retryReason(cleanup bool, d time.Duration, err error) string {
	what := "the start"
	if cleanup {
		what = "the clean-up"
	}
	return fmt.Sprintf("retrying %s in %s: %s", what, roundDelay(d), shorten(err.Error(), 200))
}

// roundDelay writes d for people: 150ms, 8s, 4m5s, 5m, 1h.
func roundDelay(d time.Duration) string {
	switch {
	case d < time.Second:
		return d.Round(10 * time.Millisecond).String()
	case d < time.Minute:
		return d.Round(time.Second).String()
	}
	s := d.Round(time.Second).String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s[:len(s)-2], "h0m")
		if !strings.HasSuffix(s, "m") {
			s += "h"
		}
	}
	return s
}

// shorten cuts s to at most n runes, marking the cut.
func shorten(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// ends is an elastic service's run of ends in a row, each soon after it
// was replaced (Engine.ends).
type ends struct {
	n int
	// due is when its replacement may be placed; the passes skip it
	// until then.
	due   time.Time
	timer *time.Timer // triggers the pass that places it
}

// endPlan is what becomes of an elastic service that ended: the n-th end
// in a row, replaced after wait, or not replaced.
type endPlan struct {
	n       int
	wait    time.Duration
	replace bool
}

// planEnd says what becomes of the elastic service id that ended at now;
// commitEnd records it once its end is recorded (a pass that finds the
// service changed meanwhile counts nothing).
func (e *Engine) planEnd(id int64, now time.Time) endPlan {
	e.mu.Lock()
	defer e.mu.Unlock()
	p := endPlan{n: 1}
	if en := e.ends[id]; en != nil && now.Sub(en.due) <= e.cfg.ReplaceWindow {
		p.n = en.n + 1
	}
	if p.n > e.cfg.ReplaceLimit {
		return p
	}
	p.wait, p.replace = e.backOff.delay(p.n), true
	return p
}

func (e *Engine) commitEnd(id int64, now time.Time, p endPlan) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if en := e.ends[id]; en != nil && en.timer != nil {
		en.timer.Stop()
	}
	if !p.replace {
		delete(e.ends, id)
		return
	}
	e.ends[id] = &ends{n: p.n, due: now.Add(p.wait), timer: time.AfterFunc(p.wait, e.Trigger)}
}

// replacementWaits reports whether the elastic service id is not to be
// placed yet at now.
func (e *Engine) replacementWaits(id int64, now time.Time) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	en := e.ends[id]
	return en != nil && now.Before(en.due)
}

// pruneEnds forgets the services no longer in an active execution.
func (e *Engine) pruneEnds(snap *snapshot) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.ends) == 0 {
		return
	}
	live := map[int64]bool{}
	for _, svcs := range snap.svcs {
		for _, sv := range svcs {
			live[sv.ID] = true
		}
	}
	for id, en := range e.ends {
		if !live[id] {
			if en.timer != nil {
				en.timer.Stop()
			}
			delete(e.ends, id)
		}
	}
}
