package main

import (
	"encoding/json"
	"testing"
)

func TestExecutionAdd(t *testing.T) {
	msg := func(s string) kernelMsg {
		var m kernelMsg
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
			x := &execution{id: "x"}
			done := false
			for _, s := range tt.msgs {
				if done {
					t.Fatal("a message after the reply")
				}
				done = x.add(msg(s))
			}
			if done != tt.done || x.out.String() != tt.out || (x.err != nil) != tt.wantErr {
				t.Errorf("done %v, output %q, error %v; want %v, %q, error %v", done, x.out.String(), x.err, tt.done, tt.out, tt.wantErr)
			}
		})
	}
}
