// Package jupyter runs code in a Jupyter kernel over the kernel's
// WebSocket, as a notebook page does (Jupyter's messaging protocol,
// version 5): what the tests and the benchmark that drive the analytics
// images' notebooks share. Starting the kernel and opening its WebSocket
// (the credentials, Jupyter's cookies, the proxy's prefix) stay with each
// caller.
package jupyter

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/coder/websocket"
)

// Msg is what is read of a kernel's message (JSON, one a frame).
type Msg struct {
	MsgType      string `json:"msg_type"`
	ParentHeader struct {
		MsgID string `json:"msg_id"`
	} `json:"parent_header"`
	Content struct {
		Text           string   `json:"text"`
		Status         string   `json:"status"`
		ExecutionState string   `json:"execution_state"`
		EName          string   `json:"ename"`
		EValue         string   `json:"evalue"`
		Traceback      []string `json:"traceback"`
	} `json:"content"`
}

// Execution gathers what a kernel says about one execute_request.
type Execution struct {
	// ID is the request's msg_id: the kernel's messages about it carry it
	// as their parent's.
	ID string
	// Started is when the first message about the request came: the
	// kernel began to run it.
	Started time.Time
	// Stream, when set, gets each piece of output (stdout, stderr) as it
	// comes.
	Stream func(text string)

	out strings.Builder
	err error
	// The reply (on the shell channel) and the kernel's idle status (on
	// iopub, after every output of the request) came; either may come
	// first.
	replied, idle bool
}

// Output is what the code printed (stdout and stderr) so far.
func (x *Execution) Output() string { return x.out.String() }

// Err is the exception the code raised, with its traceback, or the
// kernel's reply when it was not "ok" (aborted): nil for none.
func (x *Execution) Err() error { return x.err }

// Add takes message m in and says whether the request is done: its reply
// and the kernel's idle status after it came. Messages of other requests
// are left out.
func (x *Execution) Add(m Msg) (done bool) {
	if m.ParentHeader.MsgID != x.ID {
		return false
	}
	if x.Started.IsZero() {
		x.Started = time.Now()
	}
	switch m.MsgType {
	case "stream":
		x.out.WriteString(m.Content.Text)
		if x.Stream != nil {
			x.Stream(m.Content.Text)
		}
	case "error":
		x.err = fmt.Errorf("the code raised %s: %s\n%s", m.Content.EName, m.Content.EValue, strings.Join(m.Content.Traceback, "\n"))
	case "status":
		x.idle = x.idle || m.Content.ExecutionState == "idle"
	case "execute_reply":
		if x.err == nil && m.Content.Status != "ok" {
			x.err = fmt.Errorf("the kernel replied %s: %s %s", m.Content.Status, m.Content.EName, m.Content.EValue)
		}
		x.replied = true
	}
	return x.replied && x.idle
}

// NewID is a random message or session id.
func NewID() string { return strings.ToLower(rand.Text()) }

// Run sends code to the kernel whose channels conn is, as session, and
// reads the kernel's messages until it replied and is idle again. Its
// error is the transport's, or the code's (Execution.Err); the Execution
// holds the output either way. stream is as Execution.Stream.
func Run(ctx context.Context, conn *websocket.Conn, session, code string, stream func(text string)) (*Execution, error) {
	x := &Execution{ID: NewID(), Stream: stream}
	// A message may be large (a traceback, a long output): the WebSocket
	// library's limit is 32 KiB unless told.
	conn.SetReadLimit(16 << 20)
	msg, err := json.Marshal(map[string]any{
		"header": map[string]string{"msg_id": x.ID, "username": "zoe", "session": session,
			"msg_type": "execute_request", "version": "5.3", "date": time.Now().UTC().Format(time.RFC3339)},
		"parent_header": map[string]any{}, "metadata": map[string]any{}, "channel": "shell", "buffers": []any{},
		"content": map[string]any{"code": code, "silent": false, "store_history": false,
			"user_expressions": map[string]any{}, "allow_stdin": false, "stop_on_error": true},
	})
	if err != nil {
		return x, err
	}
	if err := conn.Write(ctx, websocket.MessageText, msg); err != nil {
		return x, fmt.Errorf("sending the code to the kernel: %w", err)
	}
	for {
		_, b, err := conn.Read(ctx)
		if err != nil {
			return x, fmt.Errorf("reading the kernel's messages (output so far %q): %w", x.Output(), err)
		}
		var m Msg
		if err := json.Unmarshal(b, &m); err != nil {
			return x, fmt.Errorf("a kernel message: %w: %.200s", err, b)
		}
		if x.Add(m) {
			return x, x.err
		}
	}
}
