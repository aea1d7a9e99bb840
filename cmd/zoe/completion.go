package main

// Dynamic shell completion: execution ids, services, shop entries, users
// and quotas asked of the server with the credentials in force. Any error
// just completes nothing.

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/zoe-project/zoe/client"
)

// completionTimeout bounds a completion's API call: a shell waits for it.
const completionTimeout = 3 * time.Second

const noFiles = cobra.ShellCompDirectiveNoFileComp

// completing runs fn with a client and a short deadline.
func (c *cli) completing(cmd *cobra.Command, fn func(ctx context.Context, cl *client.Client) ([]cobra.Completion, error)) ([]cobra.Completion, cobra.ShellCompDirective) {
	c.noPrompt = true
	cl, err := c.client(cmd)
	if err != nil || !cl.HasCredentials() {
		return nil, noFiles
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), completionTimeout)
	defer cancel()
	out, err := fn(ctx, cl)
	if err != nil {
		return nil, noFiles
	}
	return out, noFiles
}

// completeExecution completes the first argument with recent execution
// ids (active ones first), described by name and status.
func (c *cli) completeExecution(cmd *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
	if len(args) > 0 && cmd.Name() != "rm" {
		return nil, noFiles
	}
	return c.completing(cmd, func(ctx context.Context, cl *client.Client) ([]cobra.Completion, error) {
		l, err := cl.ListExecutions(ctx, client.ExecutionFilter{Limit: 100})
		if err != nil {
			return nil, err
		}
		var out []cobra.Completion
		for _, ex := range l.Executions {
			out = append(out, cobra.CompletionWithDesc(strconv.FormatInt(ex.ID, 10), fmt.Sprintf("%s (%s)", ex.Name, ex.Status)))
		}
		return out, nil
	})
}

// completeExecutionService completes an execution id, then one of its
// services.
func (c *cli) completeExecutionService(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	switch len(args) {
	case 0:
		return c.completeExecution(cmd, args, toComplete)
	case 1:
		id, err := strconv.ParseInt(args[0], 10, 64)
		if err != nil {
			return nil, noFiles
		}
		return c.completing(cmd, func(ctx context.Context, cl *client.Client) ([]cobra.Completion, error) {
			ex, err := cl.GetExecution(ctx, id)
			if err != nil {
				return nil, err
			}
			var out []cobra.Completion
			for _, s := range ex.Services {
				out = append(out, cobra.CompletionWithDesc(s.Name, s.Status))
			}
			return out, nil
		})
	}
	return nil, noFiles
}

func (c *cli) completeShop(cmd *cobra.Command, _ []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
	return c.completing(cmd, func(ctx context.Context, cl *client.Client) ([]cobra.Completion, error) {
		l, err := cl.Shop(ctx)
		if err != nil {
			return nil, err
		}
		var out []cobra.Completion
		for _, e := range l.Entries {
			out = append(out, cobra.CompletionWithDesc(e.ID, e.Name))
		}
		return out, nil
	})
}

// completeShopArg completes a shop entry as the first argument.
func (c *cli) completeShopArg(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveDefault
	}
	return c.completeShop(cmd, args, toComplete)
}

func (c *cli) completeUser(cmd *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, noFiles
	}
	return c.completing(cmd, func(ctx context.Context, cl *client.Client) ([]cobra.Completion, error) {
		l, err := cl.Users(ctx)
		if err != nil {
			return nil, err
		}
		var out []cobra.Completion
		for _, u := range l.Users {
			out = append(out, cobra.CompletionWithDesc(u.Username, u.Role))
		}
		return out, nil
	})
}

func (c *cli) completeQuota(cmd *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
	if len(args) > 0 && cmd.Name() != "rm" {
		return nil, noFiles
	}
	return c.completing(cmd, func(ctx context.Context, cl *client.Client) ([]cobra.Completion, error) {
		l, err := cl.Quotas(ctx)
		if err != nil {
			return nil, err
		}
		var out []cobra.Completion
		for _, q := range l.Quotas {
			out = append(out, cobra.Completion(q.Name))
		}
		return out, nil
	})
}
