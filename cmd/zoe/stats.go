package main

// zoe stats and zoe events: the queue, what runs, the nodes, and the live
// stream of state changes.

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/zoe-project/zoe/client"
)

func statsCmd(c *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "stats",
		Short: "Show the queue; for admins also the running executions and the nodes",
		Args:  cobra.NoArgs,
		RunE: c.run(func(cmd *cobra.Command, _ []string) error {
			cl, err := c.client(cmd)
			if err != nil {
				return err
			}
			st, err := cl.Stats(cmd.Context())
			if err != nil {
				return err
			}
			if c.json() {
				return writeJSON(cmd.OutOrStdout(), st)
			}
			return printStats(cmd.OutOrStdout(), st)
		}),
	}
	c.addFlags(cmd)
	return cmd
}

func printStats(w io.Writer, st *client.Stats) error {
	if len(st.Queue) == 0 {
		fmt.Fprintln(w, "Queue: empty")
	} else {
		fmt.Fprintf(w, "Queue: %d waiting\n", len(st.Queue))
		t := newTable(w, "  POS", "ID", "OWNER", "NAME", "STATUS", "SUBMITTED", "REASON")
		for _, q := range st.Queue {
			t.row(fmt.Sprintf("  %d", q.Position), q.ExecutionID, q.Owner, q.Name, q.Status, timeLocal(q.SubmittedAt), q.Reason)
		}
		if err := t.flush(); err != nil {
			return err
		}
	}
	if st.Running != nil {
		fmt.Fprintf(w, "\nRunning: %d\n", len(st.Running))
		if len(st.Running) > 0 {
			t := newTable(w, "  ID", "OWNER", "NAME", "STATUS", "CORES", "MEMORY", "STARTED")
			for _, ex := range st.Running {
				t.row(fmt.Sprintf("  %d", ex.ID), ex.Owner, ex.Name, ex.Status, cores(ex.Cores), size(ex.Memory), timePtr(ex.StartedAt))
			}
			if err := t.flush(); err != nil {
				return err
			}
		}
	}
	if len(st.Nodes) > 0 {
		fmt.Fprintf(w, "\nNodes: %d\n", len(st.Nodes))
		t := newTable(w, "  NAME", "STATE", "CORES USED", "MEMORY USED", "SERVICES", "LABELS", "ADDRESS")
		for _, n := range st.Nodes {
			state := n.State
			if n.StateDetail != "" {
				state += " (" + n.StateDetail + ")"
			}
			t.row("  "+n.Name, state, cores(n.CoresReserved)+" / "+cores(n.Cores),
				size(n.MemoryReserved)+" / "+size(n.Memory), n.ZoeServices, strings.Join(n.Labels, ","), n.Address)
		}
		return t.flush()
	}
	return nil
}

func eventsCmd(c *cli) *cobra.Command {
	var (
		execution int64
		since     string
	)
	cmd := &cobra.Command{
		Use:   "events [--execution ID] [--since CURSOR]",
		Short: "Follow the state changes of your executions (admins: everyone's) as they happen",
		Long: "Prints each state change of an execution or service as it happens, until interrupted; it " +
			"reconnects by itself when the connection breaks, missing nothing. With -o json, one Event " +
			"document per line.",
		Args: cobra.NoArgs,
		RunE: c.run(func(cmd *cobra.Command, _ []string) error {
			if execution < 0 {
				return usageErrorf(cmd, "--execution must be an execution id")
			}
			cl, err := c.client(cmd)
			if err != nil {
				return err
			}
			s, err := cl.Events(cmd.Context(), client.EventOptions{Execution: execution, LastEventID: since, Reconnect: true})
			if err != nil {
				return err
			}
			defer s.Close()
			w := cmd.OutOrStdout()
			for s.Next() {
				e := s.Event()
				if c.json() {
					if err := writeJSONLine(w, e); err != nil {
						return err
					}
					continue
				}
				subject := "execution " + strconv.FormatInt(e.ExecutionID, 10)
				if e.Service != "" {
					subject += " service " + e.Service
				}
				if e.Owner != "" {
					subject += " (" + e.Owner + ")"
				}
				line := fmt.Sprintf("%s  %s: %s", timeLocal(e.Time), subject, e.To)
				if e.From != "" {
					line = fmt.Sprintf("%s  %s: %s -> %s", timeLocal(e.Time), subject, e.From, e.To)
				}
				if e.Reason != "" {
					line += " (" + e.Reason + ")"
				}
				fmt.Fprintln(w, safe(line))
			}
			if cmd.Context().Err() != nil {
				return nil
			}
			return s.Err()
		}),
	}
	cmd.Flags().Int64Var(&execution, "execution", 0, "only this execution's events")
	cmd.Flags().StringVar(&since, "since", "", "resume after this cursor (the id of an earlier stream)")
	c.addFlags(cmd)
	return cmd
}
