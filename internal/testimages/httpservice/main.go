// Command httpservice is a test image: it serves a page naming its hostname
// on $PORT (default 8080), prints "listening" to stdout, a line every $TICK
// when set, and exits 0 on SIGTERM.
package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	name, _ := os.Hostname()
	srv := &http.Server{Addr: ":" + port, ReadHeaderTimeout: 5 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintf(w, "hello from %s\n", name) })}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() {
		if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
			fmt.Fprintln(os.Stderr, "serve:", err)
			os.Exit(1)
		}
	}()
	fmt.Println("listening on :" + port)
	fmt.Fprintln(os.Stderr, "hostname "+name)
	var tick <-chan time.Time
	if d, err := time.ParseDuration(os.Getenv("TICK")); err == nil && d > 0 {
		t := time.NewTicker(d)
		defer t.Stop()
		tick = t.C
	}
	for n := 1; ; n++ {
		select {
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_ = srv.Shutdown(sctx)
			cancel()
			fmt.Println("terminated")
			return
		case <-tick:
			fmt.Printf("tick %d\n", n)
		}
	}
}
