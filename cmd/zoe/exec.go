package main

// zoe exec: start, list, inspect, terminate and delete executions.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/zoe-project/zoe/client"
	"github.com/zoe-project/zoe/core/config"
)

func execCmd(c *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "exec",
		Aliases: []string{"execution", "executions"},
		Short:   "Start, list, inspect and terminate executions of ZApps",
	}
	cmd.AddCommand(execStartCmd(c), execLsCmd(c), execGetCmd(c), execKillCmd(c), execRmCmd(c),
		execLogsCmd(c), execEndpointsCmd(c))
	c.addFlags(cmd)
	return cmd
}

func execStartCmd(c *cli) *cobra.Command {
	var (
		shopID  string
		params  []string
		memory  []string
		cores   []string
		name    string
		wait    bool
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "start FILE|--shop ID [--param KEY=VALUE ...] [--memory SERVICE=SIZE ...] [--cores SERVICE=N ...] [--name NAME] [--wait]",
		Short: "Start a ZApp: a description file (- for standard input) or an entry of the shop",
		Long: "Submits a ZApp description (FILE, or - for standard input) or a shop entry (--shop ID, with " +
			"--param KEY=VALUE for its parameters: see zoe shop show ID; --memory SERVICE=SIZE and --cores " +
			"SERVICE=N for what each instance of a service reserves, e.g. --memory worker=2GiB --cores worker=1.5) " +
			"and prints the new execution. " +
			"With --wait, shows each service's state until the execution runs, then prints its endpoints; " +
			"it exits 1 if the execution ends in error (or --timeout passes first).",
		Args: cobra.MaximumNArgs(1),
		// FILE completes as a path to a JSON description.
		ValidArgsFunction: func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
			return []cobra.Completion{"json"}, cobra.ShellCompDirectiveFilterFileExt
		},
		RunE: c.run(func(cmd *cobra.Command, args []string) error {
			req := client.StartExecution{Name: name}
			switch {
			case len(args) == 1 && shopID != "":
				return usageErrorf(cmd, "give FILE or --shop, not both")
			case len(args) == 0 && shopID == "":
				return usageErrorf(cmd, "give the ZApp: a description FILE or --shop ID")
			case len(params) > 0 && shopID == "":
				return usageErrorf(cmd, "--param sets the parameters of a shop entry: use it with --shop")
			case (len(memory) > 0 || len(cores) > 0) && shopID == "":
				return usageErrorf(cmd, "--memory and --cores set the resources of a shop entry's services: use them with --shop "+
					"(a description FILE states its own)")
			case shopID != "":
				values, err := parseParams(cmd, params)
				if err != nil {
					return err
				}
				res, err := parseResources(cmd, memory, cores)
				if err != nil {
					return err
				}
				req.Shop = &client.ShopStart{ID: shopID, Parameters: values, Resources: res}
			default:
				desc, err := readDescription(cmd, args[0])
				if err != nil {
					return err
				}
				req.Description = desc
			}
			if timeout < 0 {
				return usageErrorf(cmd, "--timeout must be positive")
			}
			cl, err := c.client(cmd)
			if err != nil {
				return err
			}
			ex, err := cl.StartExecution(cmd.Context(), req)
			if err != nil {
				return err
			}
			if !wait {
				if c.json() {
					return writeJSON(cmd.OutOrStdout(), ex)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "Execution %d %q submitted (%s). Follow it with zoe exec get %d.\n",
					ex.ID, ex.Name, ex.Status, ex.ID)
				return nil
			}
			if !c.json() {
				fmt.Fprintf(cmd.OutOrStdout(), "Execution %d %q submitted.\n", ex.ID, ex.Name)
			}
			ex, err = waitExecution(cmd, c, cl, ex.ID, timeout, untilRunning)
			if err != nil {
				return err
			}
			if c.json() {
				return writeJSON(cmd.OutOrStdout(), ex)
			}
			if ex.Status != "running" {
				fmt.Fprintf(cmd.OutOrStdout(), "Execution %d ran and ended: %s%s.\n", ex.ID, ex.Status, exitCodeText(ex.ExitCode))
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Execution %d is running.\n", ex.ID)
			if len(ex.Endpoints) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "It has no endpoints.")
				return nil
			}
			fmt.Fprintln(cmd.OutOrStdout())
			return printEndpoints(cmd.OutOrStdout(), ex.Endpoints)
		}),
	}
	f := cmd.Flags()
	f.StringVar(&shopID, "shop", "", "start this shop entry (see zoe shop ls)")
	f.StringArrayVarP(&params, "param", "p", nil, "a shop parameter as KEY=VALUE; repeat for several")
	f.StringArrayVar(&memory, "memory", nil, "memory each instance of a shop entry's service reserves, as SERVICE=SIZE (e.g. worker=2GiB); repeat for several")
	f.StringArrayVar(&cores, "cores", nil, "cores each instance of a shop entry's service reserves, as SERVICE=N (e.g. worker=1.5); repeat for several")
	f.StringVar(&name, "name", "", "the execution's name (default: the ZApp's)")
	f.BoolVarP(&wait, "wait", "w", false, "wait until the execution runs and print its endpoints")
	f.DurationVar(&timeout, "timeout", 0, "with --wait, give up after this long (default: wait forever)")
	_ = cmd.RegisterFlagCompletionFunc("shop", c.completeShop)
	return cmd
}

// parseParams turns KEY=VALUE arguments into a map.
func parseParams(cmd *cobra.Command, params []string) (map[string]string, error) {
	if len(params) == 0 {
		return nil, nil
	}
	values := map[string]string{}
	for _, p := range params {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return nil, usageErrorf(cmd, "invalid --param %q: want KEY=VALUE", p)
		}
		if _, dup := values[k]; dup {
			return nil, usageErrorf(cmd, "--param %s is given twice", k)
		}
		values[k] = v
	}
	return values, nil
}

// parseResources turns --memory SERVICE=SIZE and --cores SERVICE=N into
// the resources of a shop start; the server checks the bounds.
func parseResources(cmd *cobra.Command, memory, cores []string) (map[string]client.ServiceResources, error) {
	if len(memory) == 0 && len(cores) == 0 {
		return nil, nil
	}
	res := map[string]client.ServiceResources{}
	for _, m := range memory {
		svc, v, ok := strings.Cut(m, "=")
		if !ok || svc == "" {
			return nil, usageErrorf(cmd, "invalid --memory %q: want SERVICE=SIZE, e.g. worker=2GiB", m)
		}
		r := res[svc]
		if r.Memory != nil {
			return nil, usageErrorf(cmd, "--memory %s is given twice", svc)
		}
		n, err := config.ParseSize(v)
		if err != nil {
			return nil, usageErrorf(cmd, "invalid --memory %s: %v", svc, err)
		}
		r.Memory = &n
		res[svc] = r
	}
	for _, c := range cores {
		svc, v, ok := strings.Cut(c, "=")
		if !ok || svc == "" {
			return nil, usageErrorf(cmd, "invalid --cores %q: want SERVICE=N, e.g. worker=1.5", c)
		}
		r := res[svc]
		if r.Cores != nil {
			return nil, usageErrorf(cmd, "--cores %s is given twice", svc)
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return nil, usageErrorf(cmd, "invalid --cores %s: %q is not a number of cores, e.g. 1.5", svc, v)
		}
		r.Cores = &f
		res[svc] = r
	}
	return res, nil
}

// readDescription reads a ZApp description file (- for standard input)
// and checks that it is JSON; the server checks the rest.
func readDescription(cmd *cobra.Command, file string) (json.RawMessage, error) {
	var (
		data []byte
		err  error
	)
	if file == "-" {
		data, err = io.ReadAll(cmd.InOrStdin())
		file = "standard input"
	} else {
		data, err = os.ReadFile(file)
	}
	if err != nil {
		return nil, fmt.Errorf("read the ZApp description: %w", err)
	}
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			line, col := position(data, se.Offset)
			return nil, fmt.Errorf("%s:%d:%d: not valid JSON: %v", file, line, col, err)
		}
		return nil, fmt.Errorf("%s: not valid JSON: %v", file, err)
	}
	if _, ok := v.(map[string]any); !ok {
		return nil, fmt.Errorf("%s: a ZApp description is a JSON object", file)
	}
	return data, nil
}

// position is the 1-based line and column of byte offset off (which
// json.SyntaxError gives just past the error).
func position(data []byte, off int64) (line, col int) {
	off = max(0, min(off, int64(len(data)))-1)
	before := data[:off]
	line = bytes.Count(before, []byte("\n")) + 1
	col = int(off) - (bytes.LastIndexByte(before, '\n') + 1) + 1
	return line, col
}

func exitCodeText(code *int) string {
	if code == nil {
		return ""
	}
	return fmt.Sprintf(", exit code %d", *code)
}

func execLsCmd(c *cli) *cobra.Command {
	var (
		status []string
		owner  string
		name   string
		limit  int
		all    bool
		cursor string
	)
	cmd := &cobra.Command{
		Use:     "ls [--status S,...] [--owner USER] [--name TEXT] [--limit N] [--cursor C | --all]",
		Aliases: []string{"list"},
		Short:   "List executions, newest first (yours; admins see everyone's)",
		Args:    cobra.NoArgs,
		RunE: c.run(func(cmd *cobra.Command, _ []string) error {
			if limit < 0 {
				return usageErrorf(cmd, "--limit must be positive")
			}
			if all && cursor != "" {
				return usageErrorf(cmd, "give --cursor or --all, not both")
			}
			cl, err := c.client(cmd)
			if err != nil {
				return err
			}
			f := client.ExecutionFilter{Status: status, Owner: owner, Name: name, Limit: limit, Cursor: cursor}
			list, err := cl.ListExecutions(cmd.Context(), f)
			if err != nil {
				return err
			}
			for all && list.NextCursor != "" {
				f.Cursor = list.NextCursor
				next, err := cl.ListExecutions(cmd.Context(), f)
				if err != nil {
					return err
				}
				list.Executions = append(list.Executions, next.Executions...)
				list.NextCursor = next.NextCursor
			}
			if c.json() {
				return writeJSON(cmd.OutOrStdout(), list)
			}
			t := newTable(cmd.OutOrStdout(), "ID", "NAME", "OWNER", "STATUS", "CORES", "MEMORY", "SUBMITTED", "ENDED")
			for _, ex := range list.Executions {
				t.row(ex.ID, ex.Name, ex.Owner, ex.Status, cores(ex.Cores), size(ex.Memory), timeLocal(ex.SubmittedAt), timePtr(ex.EndedAt))
			}
			if err := t.flush(); err != nil {
				return err
			}
			if list.NextCursor != "" {
				fmt.Fprintf(cmd.ErrOrStderr(), "(more executions: --cursor %s for the next page, --all for every page)\n", safe(list.NextCursor))
			}
			return nil
		}),
	}
	f := cmd.Flags()
	f.StringSliceVar(&status, "status", nil, "only these statuses (submitted, queued, starting, running, cleaning_up, terminated, error)")
	f.StringVar(&owner, "owner", "", "only this user's executions (admins)")
	f.StringVar(&name, "name", "", "only executions whose name contains this")
	f.IntVar(&limit, "limit", 0, "at most this many per page (default: the server's, 50)")
	f.BoolVar(&all, "all", false, "every page, not only the first")
	f.StringVar(&cursor, "cursor", "", "the page after the one that gave this next_cursor")
	_ = cmd.RegisterFlagCompletionFunc("status", cobra.FixedCompletions(
		[]string{"submitted", "queued", "starting", "running", "cleaning_up", "terminated", "error"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func execGetCmd(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:               "get ID",
		Aliases:           []string{"show"},
		Short:             "Show an execution with its services, endpoints and events",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: c.completeExecution,
		RunE: c.run(func(cmd *cobra.Command, args []string) error {
			_, ex, err := c.execution(cmd, args[0])
			if err != nil {
				return err
			}
			if c.json() {
				return writeJSON(cmd.OutOrStdout(), ex)
			}
			return printExecution(cmd.OutOrStdout(), ex)
		}),
	}
}

// eachID applies do to each id argument in turn (see each).
func (c *cli) eachID(cmd *cobra.Command, args []string, what, done, jsonKey string,
	do func(*client.Client, context.Context, int64) error) error {
	ids, err := parseIDs(cmd, args)
	if err != nil {
		return err
	}
	return each(c, cmd, ids, what, done, jsonKey, do)
}

// each applies do to each item in turn, stopping at the first error; what
// (an action) names it in errors, done (past tense) in output. In JSON, it
// prints {"<jsonKey>": [the items done]}, also when one fails.
func each[T any](c *cli, cmd *cobra.Command, items []T, what, done, jsonKey string,
	do func(*client.Client, context.Context, T) error) error {
	cl, err := c.client(cmd)
	if err != nil {
		return err
	}
	doneItems := []T{}
	for _, it := range items {
		if err = do(cl, cmd.Context(), it); err != nil {
			if noun := what[strings.LastIndexByte(what, ' ')+1:]; !names(err.Error(), noun, it) {
				err = fmt.Errorf("%s %v: %w", what, it, err)
			}
			break
		}
		doneItems = append(doneItems, it)
		if !c.json() {
			fmt.Fprintf(cmd.OutOrStdout(), "%s %v.\n", done, it)
		}
	}
	if c.json() {
		if werr := writeJSON(cmd.OutOrStdout(), map[string][]T{jsonKey: doneItems}); err == nil {
			err = werr
		}
	}
	return err
}

// naming is err about noun it ("execution", 5): as it is when it names
// it already ("no execution 5"), else after "execution 5: ".
func naming(noun string, it any, err error) error {
	if names(err.Error(), noun, it) {
		return err
	}
	return fmt.Errorf("%s %v: %w", noun, it, err)
}

// names tells whether msg names noun it: "execution 5" (not 50),
// `quota "small"`.
func names(msg, noun string, it any) bool {
	v := fmt.Sprint(it)
	for _, name := range []string{noun + " " + v, noun + " " + strconv.Quote(v)} {
		for rest := msg; ; {
			i := strings.Index(rest, name)
			if i < 0 {
				break
			}
			rest = rest[i+len(name):]
			if rest == "" || rest[0] < '0' || rest[0] > '9' {
				return true
			}
		}
	}
	return false
}

// execution makes the client and gets the execution an id argument names.
func (c *cli) execution(cmd *cobra.Command, arg string) (*client.Client, *client.Execution, error) {
	id, cl, err := c.idAndClient(cmd, arg)
	if err != nil {
		return nil, nil, err
	}
	ex, err := cl.GetExecution(cmd.Context(), id)
	return cl, ex, err
}

// idAndClient parses an execution id argument and makes the client.
func (c *cli) idAndClient(cmd *cobra.Command, arg string) (int64, *client.Client, error) {
	ids, err := parseIDs(cmd, []string{arg})
	if err != nil {
		return 0, nil, err
	}
	cl, err := c.client(cmd)
	return ids[0], cl, err
}

func printExecution(w io.Writer, ex *client.Execution) error {
	f := newFields(w)
	f.add("ID", ex.ID)
	f.add("Name", ex.Name)
	f.add("Owner", ex.Owner)
	f.add("Status", ex.Status)
	f.add("Waiting", ex.WaitingReason)
	f.add("Error", ex.ErrorMessage)
	if ex.ExitCode != nil {
		f.add("Exit code", *ex.ExitCode)
	}
	// Size is only what the SIZE and DYNSIZE policies order the queue by.
	f.add("Scheduling size", fmt.Sprintf("%d (the ZApp's size: smaller ones start first under SIZE and DYNSIZE scheduling)", ex.Size))
	f.add("Resources", fmt.Sprintf("%s cores, %s", cores(ex.Cores), size(ex.Memory)))
	f.add("Submitted", timeLocal(ex.SubmittedAt))
	f.add("Started", timePtr(ex.StartedAt))
	f.add("Ended", timePtr(ex.EndedAt))
	if ex.StartedAt != nil {
		end := time.Now()
		if ex.EndedAt != nil {
			end = *ex.EndedAt
		}
		f.add("Run time", duration(end.Sub(*ex.StartedAt)))
	}
	if err := f.flush(); err != nil {
		return err
	}
	if len(ex.Services) > 0 {
		fmt.Fprintln(w, "\nServices:")
		t := newTable(w, "  ID", "NAME", "STATUS", "BACKEND", "NODE", "IP", "ESSENTIAL", "RESTARTS", "EXIT", "ERROR")
		for _, s := range ex.Services {
			exit := ""
			if s.ExitCode != nil {
				exit = fmt.Sprint(*s.ExitCode)
			}
			t.row(fmt.Sprintf("  %d", s.ID), s.Name, s.Status, s.BackendStatus, s.Node, s.IP, yesNo(s.Essential), s.RestartCount, exit, s.ErrorMessage)
		}
		if err := t.flush(); err != nil {
			return err
		}
	}
	if len(ex.Endpoints) > 0 {
		fmt.Fprintln(w, "\nEndpoints:")
		if err := printEndpointRows(w, "  ", ex.Endpoints); err != nil {
			return err
		}
	}
	if len(ex.Events) > 0 {
		fmt.Fprintln(w, "\nEvents:")
		t := newTable(w, "  TIME", "SERVICE", "FROM", "TO", "REASON")
		for _, e := range ex.Events {
			t.row("  "+timeLocal(e.Time), e.Service, e.From, e.To, e.Reason)
		}
		return t.flush()
	}
	return nil
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// killResult is zoe exec kill -o json: the executions terminated (as the
// API gave them, or as they ended with --wait) and the failures, as zoe
// exec rm prints {"deleted": [...]}.
type killResult struct {
	Terminated []*client.Execution `json:"terminated"`
	Errors     []killFailure       `json:"errors,omitempty"`
}

type killFailure struct {
	ID    int64  `json:"id"`
	Error string `json:"error"`
}

func execKillCmd(c *cli) *cobra.Command {
	var (
		wait    bool
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:     "kill ID... [--wait [--timeout D]]",
		Aliases: []string{"terminate", "stop"},
		Short:   "Terminate executions",
		Long: "Asks Zoe to terminate each execution, and reports each one; a failure does not stop the others " +
			"(exit 1 if any failed). With --wait, then waits until every one is terminated (or in error); " +
			"--timeout bounds the whole wait. With -o json, prints {\"terminated\": [the executions], " +
			"\"errors\": [{\"id\": ..., \"error\": ...}]}, also when one fails.",
		Args:              cobra.MinimumNArgs(1),
		ValidArgsFunction: c.completeExecution,
		RunE: c.run(func(cmd *cobra.Command, args []string) error {
			ids, err := parseIDs(cmd, args)
			if err != nil {
				return err
			}
			if timeout < 0 {
				return usageErrorf(cmd, "--timeout must be positive")
			}
			cl, err := c.client(cmd)
			if err != nil {
				return err
			}
			res := killResult{Terminated: []*client.Execution{}}
			var errs []error
			fail := func(id int64, err error) {
				errs = append(errs, naming("execution", id, err))
				res.Errors = append(res.Errors, killFailure{ID: id, Error: err.Error()})
			}
			report := func(ex *client.Execution) {
				if !c.json() {
					fmt.Fprintf(cmd.OutOrStdout(), "Execution %d: %s%s.\n", ex.ID, ex.Status, exitCodeText(ex.ExitCode))
				}
			}
			for _, id := range ids {
				if cmd.Context().Err() != nil {
					break
				}
				ex, err := cl.Terminate(cmd.Context(), id)
				if err != nil {
					fail(id, err)
					continue
				}
				res.Terminated = append(res.Terminated, ex)
				if !wait {
					report(ex)
				}
			}
			if wait {
				deadline := time.Now().Add(timeout)
				for i, ex := range res.Terminated {
					left := time.Duration(0)
					if timeout > 0 {
						// The whole wait has the timeout; one past it
						// still looks once.
						left = max(time.Until(deadline), time.Nanosecond)
					}
					done, err := waitExecution(cmd, c, cl, ex.ID, left, untilEnded)
					if err != nil {
						fail(ex.ID, err)
						continue
					}
					res.Terminated[i] = done
					report(done)
				}
			}
			if c.json() {
				if err := writeJSON(cmd.OutOrStdout(), res); err != nil {
					return err
				}
			}
			if err := cmd.Context().Err(); err != nil && len(errs) == 0 {
				// Interrupted before every id was asked.
				return err
			}
			return killErrors(len(ids), errs)
		}),
	}
	cmd.Flags().BoolVarP(&wait, "wait", "w", false, "wait until the executions are terminated")
	cmd.Flags().DurationVar(&timeout, "timeout", 0, "with --wait, give up after this long (default: wait forever)")
	return cmd
}

// killErrors is the error of zoe exec kill: the one failure, or a list of
// them.
func killErrors(n int, errs []error) error {
	switch {
	case len(errs) == 0:
		return nil
	case n == 1:
		return errs[0]
	}
	items := make([]string, len(errs))
	for i, e := range errs {
		items[i] = e.Error()
	}
	return &listError{head: fmt.Sprintf("%d of %d executions not terminated", len(errs), n), items: items, errs: errs}
}

func execRmCmd(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:               "rm ID...",
		Aliases:           []string{"delete"},
		Short:             "Delete finished executions and their logs (admins)",
		Args:              cobra.MinimumNArgs(1),
		ValidArgsFunction: c.completeExecution,
		RunE: c.run(func(cmd *cobra.Command, args []string) error {
			return c.eachID(cmd, args, "delete execution", "Deleted execution", "deleted", (*client.Client).DeleteExecution)
		}),
	}
}

func execEndpointsCmd(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:               "endpoints ID",
		Short:             "List where an execution's services can be reached",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: c.completeExecution,
		RunE: c.run(func(cmd *cobra.Command, args []string) error {
			_, ex, err := c.execution(cmd, args[0])
			if err != nil {
				return err
			}
			if c.json() {
				eps := ex.Endpoints
				if eps == nil {
					eps = []client.Endpoint{}
				}
				return writeJSON(cmd.OutOrStdout(), eps)
			}
			if len(ex.Endpoints) == 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "Execution %d (%s) has no endpoints.\n", ex.ID, ex.Status)
				return nil
			}
			return printEndpoints(cmd.OutOrStdout(), ex.Endpoints)
		}),
	}
}

func printEndpoints(w io.Writer, eps []client.Endpoint) error {
	return printEndpointRows(w, "", eps)
}

func printEndpointRows(w io.Writer, indent string, eps []client.Endpoint) error {
	t := newTable(w, indent+"SERVICE", "NAME", "PORT", "URL")
	for _, e := range eps {
		t.row(indent+e.Service, e.Name, fmt.Sprintf("%d/%s", e.Port, e.Protocol), endpointURL(e))
	}
	return t.flush()
}

// endpointURL is the endpoint's URL, else its address and port.
func endpointURL(e client.Endpoint) string {
	switch {
	case e.URL != "":
		return e.URL
	case e.ExternalAddress != "" && e.ExternalPort != 0:
		return fmt.Sprintf("%s:%d", e.ExternalAddress, e.ExternalPort)
	}
	return "(not published)"
}

// serviceNames lists the names of an execution's services.
func serviceNames(ex *client.Execution) string {
	names := make([]string, len(ex.Services))
	for i, s := range ex.Services {
		names[i] = s.Name
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}
