// Command notebook is the stand-in of the shop's notebook images
// (zoe/notebook:1.0, zoe/spark-notebook:1.0) until real Jupyter images are
// built: it runs no code. It serves, on $PORT (default 8888), a page saying
// that it is a stand-in and listing the top of the user's workspace
// ($ZOE_WORKSPACE, else the working directory), to whoever gives the token:
// $NOTEBOOK_TOKEN, or a random one printed in the log when that is empty,
// as ?token=... once (a cookie then keeps it). With $SPARK_MASTER_URL set
// (spark://host:port) the page also says whether the master's web UI
// (http://host:8080/) answers, and :4040 serves a page for the Spark
// application UI saying that no application runs. It exits 0 on SIGTERM.
package main

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"
)

// maxEntries bounds the listing: a workspace may hold many files.
const maxEntries = 500

const cookieName = "zoe_standin_token"

var page = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Notebook stand-in</title></head>
<body>
<h1>Notebook stand-in</h1>
<p>This is a stand-in for a Jupyter notebook, from Zoe's example images:
a small program that runs no code. Real notebook images replace it later.</p>
<p>User: {{.User}}. Idle shutdown: {{.Idle}} minutes (not applied by the stand-in).</p>
{{if .Master}}<p>Spark master: {{.Master}}: {{.MasterState}}</p>{{end}}
<h2>Your workspace ({{.Dir}})</h2>
{{if .Err}}<p>Cannot read it: {{.Err}}</p>{{else}}{{if not .Entries}}<p>It is empty.</p>{{end}}
<ul>{{range .Entries}}<li>{{.}}</li>{{end}}</ul>{{if .More}}<p>… and more.</p>{{end}}{{end}}
</body></html>
`))

type view struct {
	User, Idle, Dir, Err, Master, MasterState string
	Entries                                   []string
	More                                      bool
}

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8888"
	}
	token := os.Getenv("NOTEBOOK_TOKEN")
	if token == "" {
		b := make([]byte, 16)
		if _, err := rand.Read(b); err != nil {
			fmt.Fprintln(os.Stderr, "random token:", err)
			os.Exit(1)
		}
		token = hex.EncodeToString(b)
		fmt.Println("token: " + token)
	}
	dir := os.Getenv("ZOE_WORKSPACE")
	if dir == "" {
		dir, _ = os.Getwd()
	}
	master := os.Getenv("SPARK_MASTER_URL")
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()

	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if !authorized(w, r, token) {
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprintln(w, "Notebook stand-in: open this page with ?token=<the token> (NOTEBOOK_TOKEN, or the one in the service's log).")
			return
		}
		v := view{User: os.Getenv("NOTEBOOK_USER"), Idle: os.Getenv("NOTEBOOK_IDLE_MINUTES"), Dir: dir, Master: master}
		v.Entries, v.More, v.Err = list(dir)
		if master != "" {
			v.MasterState = masterState(r.Context(), master)
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "default-src 'none'")
		_ = page.Execute(w, v)
	})
	servers := []*http.Server{{Addr: ":" + port, Handler: mux, ReadHeaderTimeout: 5 * time.Second}}
	if master != "" {
		servers = append(servers, &http.Server{Addr: ":4040", ReadHeaderTimeout: 5 * time.Second,
			Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				fmt.Fprintln(w, "Spark application UI stand-in: no Spark application runs here.")
			})})
	}
	for _, srv := range servers {
		go func() {
			if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
				fmt.Fprintln(os.Stderr, "serve:", err)
				os.Exit(1)
			}
		}()
		fmt.Println("notebook stand-in listening on " + srv.Addr)
	}
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, srv := range servers {
		_ = srv.Shutdown(sctx)
	}
	fmt.Println("terminated")
}

// authorized accepts the token as ?token= (and then sets the cookie) or as
// the cookie, compared in constant time.
func authorized(w http.ResponseWriter, r *http.Request, token string) bool {
	same := func(s string) bool { return subtle.ConstantTimeCompare([]byte(s), []byte(token)) == 1 }
	if q := r.URL.Query().Get("token"); q != "" && same(q) {
		http.SetCookie(w, &http.Cookie{Name: cookieName, Value: token, HttpOnly: true, SameSite: http.SameSiteStrictMode})
		return true
	}
	c, err := r.Cookie(cookieName)
	return err == nil && same(c.Value)
}

// list names the first entries of dir, directories with a trailing slash.
func list(dir string) (names []string, more bool, problem string) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, false, err.Error()
	}
	defer f.Close()
	ents, err := f.ReadDir(maxEntries + 1)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, false, err.Error()
	}
	for i, e := range ents {
		if i == maxEntries {
			return names, true, ""
		}
		n := e.Name()
		if e.IsDir() {
			n += string(filepath.Separator)
		}
		names = append(names, n)
	}
	return names, false, ""
}

// masterState asks the master's web UI (port 8080 of the host of
// spark://host:port).
func masterState(ctx context.Context, master string) string {
	u, err := url.Parse(master)
	if err != nil || u.Hostname() == "" {
		return "not a spark://host:port address"
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort(u.Hostname(), "8080")+"/", nil)
	if err != nil {
		return err.Error()
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "does not answer (" + err.Error() + ")"
	}
	resp.Body.Close()
	return "answers (" + resp.Status + ")"
}
