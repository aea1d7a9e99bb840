package main

// zoe exec logs: a service's output.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
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
		Short: "Print a service's output",
		Long: "Prints the output of one service of execution ID: SERVICE names it (an instance such as " +
			"spark-worker0, or a service with a single instance); it may be left out when the execution has " +
			"one service only. With -f, goes on printing new lines until the service ends. With -o json, " +
			"prints one JSON object per line: {\"service\": ..., \"time\": ..., \"line\": ...} (time in RFC 3339). " +
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
			out := cmd.OutOrStdout()
			err = copyLog(out, rc, svc.Name, c.json(), !raw && isTerminal(out))
			if follow && errors.Is(err, context.Canceled) {
				// Interrupting -f is how it ends.
				return nil
			}
			if err != nil && cmd.Context().Err() == nil {
				return &client.ConnectionError{Addr: cl.Addr(), Err: fmt.Errorf("the log of %s broke off: %w", svc.Name, err)}
			}
			return err
		}),
	}
	f := cmd.Flags()
	f.BoolVarP(&follow, "follow", "f", false, "go on printing new lines until the service ends")
	f.IntVar(&tail, "tail", 0, "only the last N lines (default: all)")
	f.BoolVarP(&timestamps, "timestamps", "t", false, "start each line with its time")
	f.BoolVar(&raw, "raw", false, "print control characters as they are, also on a terminal")
	return cmd
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
