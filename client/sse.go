package client

import (
	"bufio"
	"errors"
	"io"
	"strconv"
	"strings"
	"time"
)

// sseMessage is one message of a text/event-stream.
type sseMessage struct {
	ID    string // the last event id in force when it was dispatched
	Event string // "" for the default type, "message"
	Data  string
}

// sseReader parses a text/event-stream as the HTML standard says:
// "field: value" lines, one leading space of the value dropped, comments
// starting with a colon, several data lines joined with newlines, and a
// blank line dispatching the message.
type sseReader struct {
	r *bufio.Reader
	// idBuf is the id in force; lastID is set from it by each blank line,
	// so that a message not ended by one does not count as received.
	idBuf, lastID string
	retry         time.Duration // 0 until the stream sets it
}

// newSSEReader reads r, resuming after lastID.
func newSSEReader(r io.Reader, lastID string) *sseReader {
	return &sseReader{r: bufio.NewReaderSize(r, 64<<10), idBuf: lastID, lastID: lastID}
}

// maxSSELine bounds one line, so that a broken server cannot make the
// client hold an unbounded line.
const maxSSELine = 16 << 20

// next returns the next message with data; io.EOF at the end of the
// stream (a message not ended by a blank line is dropped, as the standard
// says).
func (s *sseReader) next() (sseMessage, error) {
	var (
		event string
		data  strings.Builder
		has   bool
	)
	for {
		line, err := s.readLine()
		if err != nil {
			return sseMessage{}, err
		}
		if line == "" {
			s.lastID = s.idBuf
			if !has {
				event = ""
				continue
			}
			return sseMessage{ID: s.lastID, Event: event, Data: strings.TrimSuffix(data.String(), "\n")}, nil
		}
		if line[0] == ':' {
			continue
		}
		field, value, found := strings.Cut(line, ":")
		if found {
			value = strings.TrimPrefix(value, " ")
		}
		switch field {
		case "event":
			event = value
		case "data":
			data.WriteString(value)
			data.WriteByte('\n')
			has = true
		case "id":
			if !strings.ContainsRune(value, 0) {
				s.idBuf = value
			}
		case "retry":
			if ms, err := strconv.ParseUint(value, 10, 31); err == nil {
				s.retry = time.Duration(ms) * time.Millisecond
			}
		}
	}
}

// readLine reads one line without its CRLF, CR or LF.
func (s *sseReader) readLine() (string, error) {
	var b strings.Builder
	for {
		frag, err := s.r.ReadSlice('\n')
		b.Write(frag)
		if b.Len() > maxSSELine {
			return "", errors.New("event stream: line too long")
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			if err == io.EOF && b.Len() > 0 {
				// An unterminated last line ends no message.
				return "", io.ErrUnexpectedEOF
			}
			return "", err
		}
		line := strings.TrimSuffix(b.String(), "\n")
		return strings.TrimSuffix(line, "\r"), nil
	}
}
