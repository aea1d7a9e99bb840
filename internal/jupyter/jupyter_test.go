package jupyter

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
)

func TestExecutionAdd(t *testing.T) {
	msg := func(s string) Msg {
		var m Msg
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	for _, tt := range []struct {
		name    string
		msgs    []string
		done    bool
		out     string
		wantErr bool
	}{
		{"output then reply", []string{
			`{"msg_type": "status", "parent_header": {"msg_id": "x"}, "content": {"execution_state": "busy"}}`,
			`{"msg_type": "stream", "parent_header": {"msg_id": "other"}, "content": {"name": "stdout", "text": "not ours\n"}}`,
			`{"msg_type": "stream", "parent_header": {"msg_id": "x"}, "content": {"name": "stdout", "text": "1000000.0 "}}`,
			`{"msg_type": "stream", "parent_header": {"msg_id": "x"}, "content": {"name": "stdout", "text": "4\n"}}`,
			`{"msg_type": "execute_reply", "parent_header": {"msg_id": "x"}, "content": {"status": "ok"}}`,
			`{"msg_type": "status", "parent_header": {"msg_id": "x"}, "content": {"execution_state": "idle"}}`,
		}, true, "1000000.0 4\n", false},
		{"reply before the output", []string{
			`{"msg_type": "execute_reply", "parent_header": {"msg_id": "x"}, "content": {"status": "ok"}}`,
			`{"msg_type": "stream", "parent_header": {"msg_id": "x"}, "content": {"name": "stdout", "text": "late\n"}}`,
			`{"msg_type": "status", "parent_header": {"msg_id": "x"}, "content": {"execution_state": "idle"}}`,
		}, true, "late\n", false},
		{"error then reply", []string{
			`{"msg_type": "error", "parent_header": {"msg_id": "x"}, "content": {"ename": "TimeoutError", "evalue": "no workers"}}`,
			`{"msg_type": "execute_reply", "parent_header": {"msg_id": "x"}, "content": {"status": "error"}}`,
			`{"msg_type": "status", "parent_header": {"msg_id": "x"}, "content": {"execution_state": "idle"}}`,
		}, true, "", true},
		{"aborted", []string{
			`{"msg_type": "execute_reply", "parent_header": {"msg_id": "x"}, "content": {"status": "aborted"}}`,
			`{"msg_type": "status", "parent_header": {"msg_id": "x"}, "content": {"execution_state": "idle"}}`,
		}, true, "", true},
		{"another request's reply", []string{
			`{"msg_type": "execute_reply", "parent_header": {"msg_id": "y"}, "content": {"status": "ok"}}`,
		}, false, "", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var streamed strings.Builder
			x := &Execution{ID: "x", Stream: func(s string) { streamed.WriteString(s) }}
			done := false
			for _, s := range tt.msgs {
				if done {
					t.Fatal("a message after the reply")
				}
				done = x.Add(msg(s))
			}
			if done != tt.done || x.Output() != tt.out || (x.Err() != nil) != tt.wantErr {
				t.Errorf("done %v, output %q, error %v; want %v, %q, error %v", done, x.Output(), x.Err(), tt.done, tt.out, tt.wantErr)
			}
			if streamed.String() != tt.out {
				t.Errorf("streamed %q, want %q", streamed.String(), tt.out)
			}
		})
	}
}

// TestRun drives Run against a stand-in kernel on a loopback WebSocket
// (the real one runs in the analytics tests, core/daemon): the request it
// sends, and a reply that overtakes the output.
func TestRun(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			t.Error(err)
			return
		}
		defer c.CloseNow()
		ctx := r.Context()
		var req struct {
			Header  map[string]string `json:"header"`
			Channel string            `json:"channel"`
			Content struct {
				Code string `json:"code"`
			} `json:"content"`
		}
		if err := wsjson.Read(ctx, c, &req); err != nil {
			t.Error(err)
			return
		}
		if req.Header["msg_type"] != "execute_request" || req.Header["session"] != "s1" || req.Channel != "shell" || req.Content.Code != "print(4)" {
			t.Errorf("request %+v", req)
		}
		id := req.Header["msg_id"]
		for _, m := range []string{
			`{"msg_type": "status", "parent_header": {"msg_id": "` + id + `"}, "content": {"execution_state": "busy"}}`,
			`{"msg_type": "execute_reply", "parent_header": {"msg_id": "` + id + `"}, "content": {"status": "ok"}}`,
			`{"msg_type": "stream", "parent_header": {"msg_id": "` + id + `"}, "content": {"name": "stdout", "text": "4\n"}}`,
			`{"msg_type": "status", "parent_header": {"msg_id": "` + id + `"}, "content": {"execution_state": "idle"}}`,
		} {
			if err := c.Write(ctx, websocket.MessageText, []byte(m)); err != nil {
				t.Error(err)
				return
			}
		}
		// Run returns at idle: the connection is then closed by the test.
		_, _, _ = c.Read(ctx)
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	x, err := Run(ctx, conn, "s1", "print(4)", nil)
	if err != nil || x.Output() != "4\n" || x.Started.IsZero() {
		t.Fatalf("output %q, started %v, error %v; want \"4\\n\"", x.Output(), x.Started, err)
	}
}
