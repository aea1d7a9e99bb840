package main

// zoe exec logs: a service's output.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/zoe-project/zoe/client"
	"github.com/zoe-project/zoe/internal/safetext"
)

func execLogsCmd(c *cli) *cobra.Command {
	var (
		follow     bool
		tail       int
		timestamps bool
		raw        bool
	)
	cmd := &cobra.Command{
		Use:   "logs ID [SERVICE] [-f] [--tail N] [--timestamps] [--raw]",
		Short: "Print the output of an execution's services",
		Long: "Prints the output of execution ID's services. SERVICE names one (an instance such as " +
			"spark-worker0, or a service with a single instance) and prints its output as it is. Without it, " +
			"prints every service's output, each line after the service's name (\"spark-master0  | ...\"), " +
			"in time order; an execution of one service prints its output without the names. With -f, goes " +
			"on printing new lines (of every service, as they come) until the services end; --tail N takes " +
			"the last N lines of each service. With -o json, prints one JSON object per line: " +
			"{\"service\": ..., \"time\": ..., \"line\": ...} (time in RFC 3339). " +
			"On a terminal, the control characters of the output (escape sequences, carriage returns, ...) are " +
			"shown escaped, as \\x1b or \\u202e, so that a container cannot act on the terminal; --raw prints " +
			"them as they are. Into a pipe or a file, the output is always printed as it is.",
		Args:              cobra.RangeArgs(1, 2),
		ValidArgsFunction: c.completeExecutionService,
		RunE: c.run(func(cmd *cobra.Command, args []string) error {
			if tail < 0 {
				return usageErrorf(cmd, "--tail must be positive")
			}
			cl, ex, err := c.execution(cmd, args[0])
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			p := &logPrinter{w: out, json: c.json(), timestamps: timestamps, escape: !raw && isTerminal(out)}
			if len(args) == 1 && len(ex.Services) > 1 {
				p.prefixed(ex.Services)
				if follow {
					err = followLogs(cmd.Context(), cl, ex.Services, tail, p)
				} else if err = mergeLogs(cmd.Context(), cl, ex.Services, tail, p); err != nil {
					err = fmt.Errorf("execution %d (%s): %w", ex.ID, ex.Status, err)
				}
				if follow && errors.Is(err, context.Canceled) {
					return nil
				}
				return err
			}
			name := ""
			if len(args) == 2 {
				name = args[1]
			}
			svc, err := pickService(ex, name)
			if err != nil {
				return err
			}
			// JSON lines always carry the time, in a field of its own.
			rc, err := cl.Logs(cmd.Context(), svc.ID, client.LogOptions{Tail: tail, Follow: follow, Timestamps: timestamps || c.json()})
			if err != nil {
				return err
			}
			defer rc.Close()
			err = copyLog(out, rc, svc.Name, c.json(), p.escape)
			if follow && errors.Is(err, context.Canceled) {
				// Interrupting -f is how it ends.
				return nil
			}
			if err != nil && cmd.Context().Err() == nil {
				return brokeOff(cl, svc.Name, err)
			}
			return err
		}),
	}
	f := cmd.Flags()
	f.BoolVarP(&follow, "follow", "f", false, "go on printing new lines until the services end")
	f.IntVar(&tail, "tail", 0, "only the last N lines (of each service; default: all)")
	f.BoolVarP(&timestamps, "timestamps", "t", false, "start each line with its time")
	f.BoolVar(&raw, "raw", false, "print control characters as they are, also on a terminal")
	return cmd
}

// brokeOff is a log that ended before its end: the connection's fault.
func brokeOff(cl *client.Client, service string, err error) error {
	return &client.ConnectionError{Addr: cl.Addr(), Err: fmt.Errorf("the log of %s broke off: %w", service, err)}
}

// logPrinter prints the lines of several services' logs, each line
// whole (the followers of several services share it).
type logPrinter struct {
	w          io.Writer
	json       bool
	timestamps bool
	escape     bool
	// prefix is each service's "name  | ", padded to the longest name
	// (none: lines go without it).
	prefix map[string]string
	mu     sync.Mutex
	buf    []byte
}

// prefixed makes the printer start the lines with their service's name.
func (p *logPrinter) prefixed(services []client.Service) {
	width := 0
	for _, s := range services {
		width = max(width, utf8.RuneCountInString(safe(s.Name)))
	}
	p.prefix = map[string]string{}
	for _, s := range services {
		name := safe(s.Name)
		p.prefix[s.Name] = name + strings.Repeat(" ", width-utf8.RuneCountInString(name)) + " | "
	}
}

// line prints one line of service's log as the API sent it with
// timestamps=true ("TIME text", without its newline).
func (p *logPrinter) line(service, line string) error {
	ts, text, _ := strings.Cut(line, " ")
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.json {
		return writeJSONLine(p.w, struct {
			Service string `json:"service"`
			Time    string `json:"time"`
			Line    string `json:"line"`
		}{service, ts, text})
	}
	b := append(p.buf[:0], p.prefix[service]...)
	if p.timestamps {
		b = append(append(b, ts...), ' ')
	}
	if p.escape {
		text = safetext.EscapeLines(text)
	}
	b = append(append(b, text...), '\n')
	p.buf = b
	if _, err := p.w.Write(b); err != nil {
		return &outputError{err}
	}
	return nil
}

// outputError is a failure to print (standard output closed, disk full),
// not the log's.
type outputError struct{ err error }

func (e *outputError) Error() string { return e.err.Error() }
func (e *outputError) Unwrap() error { return e.err }

// logReader tells the failures of reading a log apart from the others.
type logReader struct{ r io.Reader }

func (l logReader) Read(b []byte) (int, error) {
	n, err := l.r.Read(b)
	if err != nil && !errors.Is(err, io.EOF) {
		err = &readError{err}
	}
	return n, err
}

// readError is a log that broke off while read.
type readError struct{ err error }

func (e *readError) Error() string { return e.err.Error() }
func (e *readError) Unwrap() error { return e.err }

// logLines reads a log line by line (each without its newline) until it
// ends, calling fn for each.
func logLines(r io.Reader, fn func(string) error) error {
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, err := br.ReadString('\n')
		if line != "" {
			if ferr := fn(strings.TrimSuffix(line, "\n")); ferr != nil {
				return ferr
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// noOutput tells whether err is a service's log that does not exist (yet):
// such a service has nothing to show among the others.
func noOutput(err error) bool { return client.IsStatus(err, http.StatusNotFound) }

// mergeLogs prints the logs of services merged in time order. Each log is
// read whole into a temporary file first (a log may be tens of MiB): a
// connection left unread while the others are printed would meet the
// server's write timeout.
func mergeLogs(ctx context.Context, cl *client.Client, services []client.Service, tail int, p *logPrinter) error {
	type source struct {
		name string
		r    *bufio.Reader
		line string    // the next line, "" at the end
		at   time.Time // its time
	}
	var sources []*source
	for _, s := range services {
		f, err := spoolLog(ctx, cl, s, tail)
		if err != nil {
			return err
		}
		if f == nil {
			continue
		}
		defer f.Close()
		sources = append(sources, &source{name: s.Name, r: bufio.NewReaderSize(f, 64<<10)})
	}
	next := func(s *source) error {
		line, err := s.r.ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("read the spooled log of %s: %w", s.name, err)
		}
		s.line = strings.TrimSuffix(line, "\n")
		if ts, _, _ := strings.Cut(s.line, " "); s.line != "" {
			// A line without a time keeps the one before.
			if t, err := time.Parse(time.RFC3339Nano, ts); err == nil {
				s.at = t
			}
		}
		return nil
	}
	if len(sources) == 0 {
		// As a single service without output answers.
		return errors.New("its services have no output yet")
	}
	for _, s := range sources {
		if err := next(s); err != nil {
			return err
		}
	}
	for {
		// The earliest line; on a tie, the service listed first.
		var first *source
		for _, s := range sources {
			if s.line != "" && (first == nil || s.at.Before(first.at)) {
				first = s
			}
		}
		if first == nil {
			return nil
		}
		if err := p.line(first.name, first.line); err != nil {
			return err
		}
		if err := next(first); err != nil {
			return err
		}
	}
}

// spoolLog reads a service's whole log, with times, into an unnamed
// temporary file, rewound; nil when the service has no output.
func spoolLog(ctx context.Context, cl *client.Client, s client.Service, tail int) (*os.File, error) {
	rc, err := cl.Logs(ctx, s.ID, client.LogOptions{Tail: tail, Timestamps: true})
	if noOutput(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("the log of %s: %w", s.Name, err)
	}
	defer rc.Close()
	f, err := os.CreateTemp("", "zoe-logs-*")
	if err != nil {
		return nil, fmt.Errorf("spool the logs: %w", err)
	}
	// Unnamed: nothing is left behind, whatever happens.
	_ = os.Remove(f.Name())
	if _, err := io.Copy(f, logReader{rc}); err != nil {
		f.Close()
		var rerr *readError
		switch {
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case errors.As(err, &rerr):
			return nil, brokeOff(cl, s.Name, rerr.err)
		}
		return nil, fmt.Errorf("spool the logs: %w", err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return nil, fmt.Errorf("spool the logs: %w", err)
	}
	return f, nil
}

// followLogs prints the lines of every service as they come, until every
// log ends (the services ended) or ctx does. The API waits for the first
// output of a service not started yet. A failure ends all the followers.
func followLogs(ctx context.Context, cl *client.Client, services []client.Service, tail int, p *logPrinter) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, len(services))
	for _, s := range services {
		go func() {
			err := followOne(ctx, cl, s, tail, len(services), p)
			if err != nil {
				cancel()
			}
			errs <- err
		}()
	}
	var first error
	for range services {
		if err := <-errs; err != nil && (first == nil || errors.Is(first, context.Canceled)) {
			first = err
		}
	}
	return first
}

func followOne(ctx context.Context, cl *client.Client, s client.Service, tail, of int, p *logPrinter) error {
	rc, err := cl.Logs(ctx, s.ID, client.LogOptions{Tail: tail, Follow: true, Timestamps: true})
	switch {
	case noOutput(err):
		return nil
	case client.IsCode(err, client.CodeTooManyRequests):
		return fmt.Errorf("follow the log of %s (one stream for each of the %d services): %w", s.Name, of, err)
	case err != nil:
		return fmt.Errorf("follow the log of %s: %w", s.Name, err)
	}
	defer rc.Close()
	err = logLines(logReader{rc}, func(line string) error { return p.line(s.Name, line) })
	var rerr *readError
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.As(err, &rerr):
		return brokeOff(cl, s.Name, rerr.err)
	}
	return err
}

// pickService finds the service a logs command means: by instance name,
// by a group of one instance, by id, or the only one.
func pickService(ex *client.Execution, name string) (*client.Service, error) {
	if len(ex.Services) == 0 {
		return nil, fmt.Errorf("execution %d (%s) has no services yet", ex.ID, ex.Status)
	}
	if name == "" {
		if len(ex.Services) == 1 {
			return &ex.Services[0], nil
		}
		return nil, fmt.Errorf("execution %d has several services: name one of %s", ex.ID, serviceNames(ex))
	}
	for i, s := range ex.Services {
		if s.Name == name {
			return &ex.Services[i], nil
		}
	}
	var group []int
	for i, s := range ex.Services {
		if s.Group == name {
			group = append(group, i)
		}
	}
	if len(group) == 1 {
		return &ex.Services[group[0]], nil
	}
	if id, err := strconv.ParseInt(name, 10, 64); err == nil {
		for i, s := range ex.Services {
			if s.ID == id {
				return &ex.Services[i], nil
			}
		}
	}
	if len(group) > 1 {
		return nil, fmt.Errorf("execution %d has %d instances of %s: name one of %s", ex.ID, len(group), name, serviceNames(ex))
	}
	return nil, fmt.Errorf("execution %d has no service %q; its services are %s", ex.ID, name, serviceNames(ex))
}

// copyLog copies the log to w: as it is, escaped (safetext.EscapeLines)
// or as JSON lines (from lines that start with their time).
func copyLog(w io.Writer, r io.Reader, service string, jsonLines, escape bool) error {
	if !jsonLines {
		if escape {
			return copyEscaped(w, r)
		}
		_, err := io.Copy(w, r)
		return err
	}
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadString('\n')
		if line != "" {
			if line[len(line)-1] == '\n' {
				line = line[:len(line)-1]
			}
			ts, text, _ := strings.Cut(line, " ")
			if werr := writeJSONLine(w, struct {
				Service string `json:"service"`
				Time    string `json:"time"`
				Line    string `json:"line"`
			}{service, ts, text}); werr != nil {
				return werr
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// copyEscaped copies r to w line by line with the characters a terminal
// would act on escaped; a line longer than the buffer goes in pieces cut
// between characters.
func copyEscaped(w io.Writer, r io.Reader) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var carry []byte
	for {
		chunk, err := br.ReadSlice('\n')
		data := append(carry, chunk...)
		carry = nil
		if errors.Is(err, bufio.ErrBufferFull) {
			// An incomplete character at the end waits for its other bytes.
			cut := len(data)
			for i := 1; i <= utf8.UTFMax && i <= len(data); i++ {
				if utf8.RuneStart(data[len(data)-i]) {
					if !utf8.FullRune(data[len(data)-i:]) {
						cut = len(data) - i
					}
					break
				}
			}
			data, carry = data[:cut], append([]byte(nil), data[cut:]...)
			err = nil
		}
		if len(data) > 0 {
			if _, werr := io.WriteString(w, safetext.EscapeLines(string(data))); werr != nil {
				return werr
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// isTerminal says whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
