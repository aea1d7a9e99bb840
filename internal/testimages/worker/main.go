// Command worker is a test image: it asks the master at $MASTER (host:port)
// for its page over HTTP, retrying for up to 30 seconds, prints
// "answer: <page>" and exits 0, or exits 1 when the master never answers.
package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

func main() {
	master := os.Getenv("MASTER")
	if master == "" {
		fmt.Fprintln(os.Stderr, "MASTER is not set")
		os.Exit(2)
	}
	c := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := c.Get("http://" + master + "/")
		if err == nil {
			body, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			if rerr == nil && resp.StatusCode == http.StatusOK {
				fmt.Println("answer: " + strings.TrimSpace(string(body)))
				return
			}
			err = fmt.Errorf("status %s, %v", resp.Status, rerr)
		}
		if time.Now().After(deadline) {
			fmt.Fprintln(os.Stderr, "master never answered:", err)
			os.Exit(1)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
