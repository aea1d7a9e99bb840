// Command worker is a test image: it asks the master at $MASTER (host:port)
// for its page over HTTP, retrying for up to $GIVE_UP (a duration, default
// 30s), prints "answer: <page>" and exits 0, or exits 1 when the master
// never answers. With $HOLD set it stays up after the answer, like a
// cluster's worker, until SIGTERM (then it exits 0). Without $MASTER, it
// finds the master in $SPARK_MASTER_URL (spark://host:port), as a Spark
// worker would, and asks port 8080 of that host.
package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	master := os.Getenv("MASTER")
	if u, err := url.Parse(os.Getenv("SPARK_MASTER_URL")); master == "" && err == nil && u.Hostname() != "" {
		master = net.JoinHostPort(u.Hostname(), "8080")
	}
	if master == "" {
		fmt.Fprintln(os.Stderr, "neither MASTER nor SPARK_MASTER_URL is set")
		os.Exit(2)
	}
	giveUp := 30 * time.Second
	if d, err := time.ParseDuration(os.Getenv("GIVE_UP")); err == nil && d > 0 {
		giveUp = d
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	c := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(giveUp)
	for {
		resp, err := c.Get("http://" + master + "/")
		if err == nil {
			body, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			if rerr == nil && resp.StatusCode == http.StatusOK {
				fmt.Println("answer: " + strings.TrimSpace(string(body)))
				break
			}
			err = fmt.Errorf("status %s, %v", resp.Status, rerr)
		}
		if time.Now().After(deadline) {
			fmt.Fprintln(os.Stderr, "master never answered:", err)
			os.Exit(1)
		}
		select {
		case <-ctx.Done():
			os.Exit(1)
		case <-time.After(200 * time.Millisecond):
		}
	}
	if os.Getenv("HOLD") != "" {
		<-ctx.Done()
		fmt.Println("terminated")
	}
}
