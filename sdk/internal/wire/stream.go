package wire

import (
	"context"
	"errors"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// A server stream sends this header once the plugin has accepted the call, so
// that the client can tell "the call failed" (an error from the opening call,
// e.g. not found) from "the stream ended".
const streamHeader = "zoe-stream"

// StreamOpened is called by a stream's server side once the plugin accepted
// the call.
func StreamOpened(s grpc.ServerStream) error {
	return s.SendHeader(metadata.Pairs(streamHeader, "open"))
}

// Receive waits until the server accepted the stream, then turns it into a
// channel that is closed when the stream ends, breaks, or ctx is done. An
// error the server returned before accepting is returned as is.
func Receive[P any, T any](ctx context.Context, s grpc.ClientStream, recv func() (P, error), convert func(P) T) (<-chan T, error) {
	md, err := s.Header()
	if err != nil {
		return nil, FromStatus(err)
	}
	if len(md.Get(streamHeader)) == 0 {
		_, err := recv()
		if err == nil {
			err = errors.New("plugin stream opened without its header")
		}
		return nil, FromStatus(err)
	}
	ch := make(chan T)
	go func() {
		defer close(ch)
		for {
			m, err := recv()
			if err != nil {
				return
			}
			select {
			case ch <- convert(m):
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch, nil
}

// Forward sends what the plugin puts on ch until ch is closed or the core
// hangs up (ctx done): a plugin that never closes its channel must not keep
// a handler per stream alive forever.
func Forward[T any](ctx context.Context, ch <-chan T, send func(T) error) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case v, ok := <-ch:
			if !ok {
				return nil
			}
			if err := send(v); err != nil {
				return err
			}
		}
	}
}
