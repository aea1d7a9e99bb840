package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zoe-project/zoe/client"
)

// sse reads one Server-Sent Events stream.
type sse struct {
	t      *testing.T
	cancel context.CancelFunc
	rd     *bufio.Reader
	lastID string
	// lastIDFn returns the latest resume cursor received.
	lastIDFn func() string
	events   chan client.Event
	done     chan struct{}
}

func (e *env) openEvents(w who, query, lastID string) *sse {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", e.base+"/events"+query, nil)
	req.SetBasicAuth(w.user, w.password)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		e.t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		cancel()
		e.t.Fatalf("events: %d", resp.StatusCode)
	}
	s := &sse{t: e.t, cancel: cancel, rd: bufio.NewReader(resp.Body), events: make(chan client.Event, 100), done: make(chan struct{})}
	lastIDs := make(chan string, 1000)
	go func() {
		defer close(s.done)
		defer resp.Body.Close()
		var data string
		for {
			line, err := s.rd.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimRight(line, "\n")
			switch {
			case strings.HasPrefix(line, "id: "):
				lastIDs <- strings.TrimPrefix(line, "id: ")
			case strings.HasPrefix(line, "data: "):
				data = strings.TrimPrefix(line, "data: ")
			case line == "" && data != "":
				var ev client.Event
				if err := json.Unmarshal([]byte(data), &ev); err != nil {
					s.t.Errorf("event data %q: %v", data, err)
				}
				s.events <- ev
				data = ""
			}
		}
	}()
	s.lastIDFn = func() string {
		for {
			select {
			case id := <-lastIDs:
				s.lastID = id
			default:
				return s.lastID
			}
		}
	}
	e.t.Cleanup(s.close)
	return s
}

func (s *sse) close() {
	s.cancel()
	<-s.done
}

// until reads events until one of the execution reaches status to (of the
// execution itself), returning every event read.
func (s *sse) until(exec int64, to string) []client.Event {
	s.t.Helper()
	var got []client.Event
	timeout := time.After(2 * time.Minute)
	for {
		select {
		case ev := <-s.events:
			got = append(got, ev)
			if ev.ExecutionID == exec && ev.Service == "" && ev.To == to {
				return got
			}
		case <-timeout:
			s.t.Fatalf("no event of execution %d to %s; got %+v", exec, to, got)
		}
	}
}

func TestEventStreamResumes(t *testing.T) {
	e := newEnv(t, "")
	alice, bob := e.as("alice"), e.as("bob")
	stream := e.openEvents(alice, "", "")
	bobs := e.startApp(bob, "bob's", app("bobs-app", nil))
	ex := e.startApp(alice, "mine", app("alices-app", nil))
	got := stream.until(ex.ID, "running")
	var tos []string
	for _, ev := range got {
		if ev.Owner != "alice" || ev.ExecutionID == bobs.ID {
			t.Fatalf("alice's stream has %+v", ev)
		}
		if ev.Service == "" {
			tos = append(tos, ev.To)
		}
	}
	if strings.Join(tos, ",") != "submitted,queued,starting,running" {
		t.Errorf("execution events %v", tos)
	}
	// Disconnect; what happens meanwhile comes with the resumed stream.
	// Every event carries its id: the cursor is that of the last one read.
	last := stream.lastIDFn()
	stream.close()
	if last == "" || last == "0" {
		t.Fatalf("no resume cursor: %q", last)
	}
	e.must(alice, "POST", fmt.Sprintf("/executions/%d/terminate", ex.ID), nil, http.StatusAccepted, nil)
	e.await(alice, ex.ID, "terminated")
	resumed := e.openEvents(alice, "", last)
	got = resumed.until(ex.ID, "terminated")
	tos = nil
	for _, ev := range got {
		if ev.Service == "" {
			tos = append(tos, ev.To)
		}
	}
	if strings.Join(tos, ",") != "cleaning_up,terminated" {
		t.Errorf("resumed events %v", tos)
	}

	// A stream of one execution; an execution of another user is not found.
	one := e.openEvents(alice, fmt.Sprintf("?execution=%d&last_event_id=0", ex.ID), "")
	for _, ev := range one.until(ex.ID, "terminated") {
		if ev.ExecutionID != ex.ID {
			t.Errorf("the stream of execution %d has %+v", ex.ID, ev)
		}
	}
	if r := e.do(alice, "GET", fmt.Sprintf("/events?execution=%d", bobs.ID), nil); r.status != http.StatusNotFound {
		t.Errorf("events of bob's execution: %d", r.status)
	}
}

// logs gets a service's log as text.
func (e *env) logs(w who, svc int64, query string) (int, string) {
	e.t.Helper()
	r := e.do(w, "GET", fmt.Sprintf("/services/%d/logs%s", svc, query), nil)
	return r.status, string(r.body)
}

func TestLogsOutliveServicesAndRestarts(t *testing.T) {
	e := newEnv(t, "")
	alice, root := e.as("alice"), e.as("root")
	ex := e.startApp(alice, "talk", app("talk", map[string]string{"ZOE_SIM_LOG": "hello|world"}))
	run := e.await(alice, ex.ID, "running")
	svc := run.Services[0].ID
	waitFor(t, "the log", func() (bool, string) {
		code, text := e.logs(alice, svc, "")
		return code == 200 && strings.Contains(text, "hello\nworld\n"), fmt.Sprint(code, text)
	})
	if code, text := e.logs(alice, svc, "?tail=1&timestamps=true"); code != 200 || strings.Count(text, "\n") != 1 ||
		!strings.HasSuffix(text, " world\n") || !strings.HasPrefix(text, "20") {
		t.Errorf("tail=1 with timestamps: %d %q", code, text)
	}

	// A follower ends when the service ends.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", fmt.Sprintf("%s/services/%d/logs?follow=true", e.base, svc), nil)
	req.SetBasicAuth(alice.user, alice.password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("follow: %v %v", resp, err)
	}
	followed := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		followed <- string(b)
	}()
	e.must(alice, "POST", fmt.Sprintf("/executions/%d/terminate", ex.ID), nil, http.StatusAccepted, nil)
	e.await(alice, ex.ID, "terminated")
	select {
	case text := <-followed:
		if !strings.Contains(text, "hello\nworld\n") || !strings.Contains(text, "SIGTERM") {
			t.Errorf("followed %q", text)
		}
	case <-ctx.Done():
		t.Fatal("the follower did not end with the service")
	}

	// The container is gone; the log is not, even after a restart. The
	// logs of an execution the store does not have (deleted by hand, or by an
	// older Zoe) are removed at start-up.
	_, before := e.logs(alice, svc, "")
	e.stop()
	orphan := filepath.Join(filepath.Dir(e.file), "data", "logs", "999", "main0")
	if err := os.MkdirAll(orphan, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(orphan, "00000001.log"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.start()
	if _, err := os.Stat(filepath.Dir(orphan)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the logs of a deleted execution are still there: %v", err)
	}
	if code, after := e.logs(alice, svc, ""); code != 200 || after != before {
		t.Errorf("after a restart: %d %q, before %q", code, after, before)
	}
	// Deleted with its execution.
	e.must(root, "DELETE", fmt.Sprintf("/executions/%d", ex.ID), nil, http.StatusNoContent, nil)
	if code, _ := e.logs(root, svc, ""); code != http.StatusNotFound {
		t.Errorf("the log of a deleted execution: %d", code)
	}
}

// TestFollowBeforeOutput: following a service that has written nothing yet
// waits for its output instead of ending at once.
func TestFollowBeforeOutput(t *testing.T) {
	e := newEnv(t, "")
	alice := e.as("alice")
	ex := e.startApp(alice, "slow", app("slow", map[string]string{"ZOE_SIM_START_DELAY": "2s", "ZOE_SIM_LOG": "at last"}))
	var got client.Execution
	e.must(alice, "GET", fmt.Sprintf("/executions/%d", ex.ID), nil, http.StatusOK, &got)
	svc := got.Services[0].ID
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", fmt.Sprintf("%s/services/%d/logs?follow=true", e.base, svc), nil)
	req.SetBasicAuth(alice.user, alice.password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("follow: %v %v", resp, err)
	}
	defer resp.Body.Close()
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "started main0") {
		t.Fatalf("the follower read %q, %v; want the service's first line", line, err)
	}
}

// TestStreamsEndWithTheirCredentials: an open event stream and a followed
// log end once the token they were opened with is revoked, and a disabled
// user's stream ends too.
func TestStreamsEndWithTheirCredentials(t *testing.T) {
	e := newEnv(t, "")
	alice, root := e.as("alice"), e.as("root")
	var s client.Session
	e.must(anonymous, "POST", "/sessions", client.Login{Username: "alice", Password: passwords["alice"]}, http.StatusCreated, &s)
	ex := e.startApp(alice, "streams", app("streams", nil))
	run := e.await(alice, ex.ID, "running")
	open := func(w who, path string) <-chan error {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		t.Cleanup(cancel)
		req, _ := http.NewRequestWithContext(ctx, "GET", e.base+path, nil)
		if w.token != "" {
			req.Header.Set("Authorization", "Bearer "+w.token)
		} else {
			req.SetBasicAuth(w.user, w.password)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %v %v", path, resp, err)
		}
		done := make(chan error, 1)
		go func() {
			_, err := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if ctx.Err() != nil {
				err = ctx.Err() // the stream did not end by itself
			}
			done <- err
		}()
		return done
	}
	ended := func(what string, done <-chan error) {
		t.Helper()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%s: %v", what, err)
			}
		case <-time.After(20 * time.Second):
			t.Errorf("%s still open", what)
		}
	}
	tok := who{token: s.Token}
	events := open(tok, "/events")
	logs := open(tok, fmt.Sprintf("/services/%d/logs?follow=true", run.Services[0].ID))
	e.must(tok, "DELETE", fmt.Sprintf("/tokens/%d", s.TokenInfo.ID), nil, http.StatusNoContent, nil)
	ended("the event stream of a revoked token", events)
	ended("the followed log of a revoked token", logs)

	dora := e.as("dora")
	e.must(dora, "GET", "/me", nil, http.StatusOK, nil)
	events = open(dora, "/events")
	e.must(root, "PATCH", "/users/dora", client.UserUpdate{Enabled: ptr(false)}, http.StatusOK, nil)
	ended("the event stream of a disabled user", events)

	// An admin demoted loses what only admins see: everyone's events and
	// other users' logs. alice's own streams go on.
	e.must(root, "PATCH", "/users/dora", client.UserUpdate{Enabled: ptr(true), Role: ptr("admin")}, http.StatusOK, nil)
	own := open(alice, "/events")
	ownLogs := open(alice, fmt.Sprintf("/services/%d/logs?follow=true", run.Services[0].ID))
	events = open(dora, "/events")
	logs = open(dora, fmt.Sprintf("/services/%d/logs?follow=true", run.Services[0].ID))
	e.must(root, "PATCH", "/users/dora", client.UserUpdate{Role: ptr("")}, http.StatusOK, nil)
	ended("the event stream of a demoted admin", events)
	ended("another user's log followed by a demoted admin", logs)
	for what, done := range map[string]<-chan error{"alice's event stream": own, "alice's followed log": ownLogs} {
		select {
		case err := <-done:
			t.Errorf("%s ended with the demotion of another user: %v", what, err)
		default:
		}
	}
}

// A user's stream moves its cursor over the other users' events (it asks
// the store for the user's own events up to the last id), so that a
// client resuming from it does not have them read again.
func TestEventStreamCursorPassesOthers(t *testing.T) {
	e := newEnv(t, "")
	alice, bob, root := e.as("alice"), e.as("bob"), e.as("root")
	stream := e.openEvents(alice, "", "")
	bobs := e.startApp(bob, "bob's", app("bobs-app", nil))
	all := e.openEvents(root, "", "0")
	var lastOfBob int64
	for _, ev := range all.until(bobs.ID, "running") {
		lastOfBob = max(lastOfBob, ev.ID)
	}
	waitFor(t, "alice's cursor past bob's events", func() (bool, string) {
		id := stream.lastIDFn()
		n, _ := strconv.ParseInt(id, 10, 64)
		return n >= lastOfBob, fmt.Sprintf("cursor %q, bob's last event %d", id, lastOfBob)
	})
	select {
	case ev := <-stream.events:
		t.Fatalf("alice's stream has %+v", ev)
	default:
	}
	// Her own events still come, after the cursor.
	ex := e.startApp(alice, "mine", app("alices-app", nil))
	for _, ev := range stream.until(ex.ID, "running") {
		if ev.Owner != "alice" || ev.ID <= lastOfBob {
			t.Errorf("alice's stream has %+v (bob's last event %d)", ev, lastOfBob)
		}
	}
}
