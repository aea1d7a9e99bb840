package openapitest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
)

// validator is the generated client's HTTP doer: it sends each request,
// fails the test when the document has no operation for it or when the
// answer (status, headers, body) is not one the document describes, and
// records which statuses each operation answered.
type validator struct {
	t      *testing.T
	base   string
	doc    *openapi3.T
	router routers.Router
	http   *http.Client

	mu   sync.Mutex
	seen map[string][]int // operationId → statuses answered
}

func newValidator(t *testing.T, base string, document []byte) *validator {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(document)
	if err != nil {
		t.Fatalf("load the document: %v", err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		t.Fatalf("the document is not valid OpenAPI 3: %v", err)
	}
	// The document's server is relative ("/api/v1"): the router matches
	// whole URLs.
	doc.Servers = openapi3.Servers{{URL: base}}
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	// Logos are images: read as bytes, checked against type string,
	// format binary.
	for _, ct := range []string{"image/png", "image/svg+xml", "image/jpeg"} {
		openapi3filter.RegisterBodyDecoder(ct, openapi3filter.FileBodyDecoder)
	}
	return &validator{t: t, base: base, doc: doc, router: router, http: &http.Client{}, seen: map[string][]int{}}
}

// client is a generated client calling as user ("": anonymous).
func (v *validator) client(user string) *ClientWithResponses {
	v.t.Helper()
	c, err := NewClientWithResponses(v.base, WithHTTPClient(v), WithRequestEditorFn(func(_ context.Context, req *http.Request) error {
		if user != "" {
			req.SetBasicAuth(user, passwords[user])
		}
		return nil
	}))
	if err != nil {
		v.t.Fatal(err)
	}
	return c
}

// bearer is a generated client calling with a token.
func (v *validator) bearer(token string) *ClientWithResponses {
	v.t.Helper()
	c, err := NewClientWithResponses(v.base, WithHTTPClient(v), WithRequestEditorFn(func(_ context.Context, req *http.Request) error {
		req.Header.Set("Authorization", "Bearer "+token)
		return nil
	}))
	if err != nil {
		v.t.Fatal(err)
	}
	return c
}

// streaming tells an answer that goes on: its body is left to the test.
func streaming(req *http.Request, resp *http.Response) bool {
	return resp.StatusCode == http.StatusOK &&
		(strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") || req.URL.Query().Get("follow") == "true")
}

func (v *validator) Do(req *http.Request) (*http.Response, error) {
	what := req.Method + " " + req.URL.RequestURI()
	route, params, err := v.router.FindRoute(req)
	if err != nil {
		v.t.Errorf("%s: no operation of the document: %v", what, err)
	}
	var sent []byte
	if req.Body != nil {
		var err error
		if sent, err = io.ReadAll(req.Body); err != nil {
			return nil, err
		}
		req.Body.Close()
		req.Body = io.NopCloser(bytes.NewReader(sent))
	}
	resp, err := v.http.Do(req)
	if err != nil || route == nil {
		return resp, err
	}
	// A request the document refuses must be refused by the server too:
	// this catches a parameter of the wrong type or a body field the
	// document wants and the server does not.
	check := req.Clone(req.Context())
	check.Body = io.NopCloser(bytes.NewReader(sent))
	reqIn := &openapi3filter.RequestValidationInput{Request: check, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, MultiError: true}}
	if err := openapi3filter.ValidateRequest(req.Context(), reqIn); err != nil &&
		resp.StatusCode != http.StatusBadRequest && resp.StatusCode != http.StatusUnsupportedMediaType {
		v.t.Errorf("%s: the document refuses the request, the server answers %d: %v", what, resp.StatusCode, err)
	}
	opts := &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 resp.StatusCode, Header: resp.Header, Options: opts,
	}
	var body []byte
	if streaming(req, resp) {
		opts.ExcludeResponseBody = true
	} else {
		body, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		resp.Body = io.NopCloser(bytes.NewReader(body))
		in.SetBodyBytes(body)
	}
	if err := openapi3filter.ValidateResponse(req.Context(), in); err != nil {
		v.t.Errorf("%s: the answer %d %s is not what the document says: %v\n%.600s", what, resp.StatusCode, resp.Header.Get("Content-Type"), err, body)
	}
	v.mu.Lock()
	v.seen[route.Operation.OperationID] = append(v.seen[route.Operation.OperationID], resp.StatusCode)
	v.mu.Unlock()
	return resp, nil
}

// checkCoverage fails for an operation of the document the test did not
// call, or a status it documents that no answer had.
func (v *validator) checkCoverage() {
	v.t.Helper()
	for path, item := range v.doc.Paths.Map() {
		for method, op := range item.Operations() {
			seen := v.seen[op.OperationID]
			if len(seen) == 0 {
				v.t.Errorf("%s %s (%s) was never called", method, path, op.OperationID)
				continue
			}
			for code := range op.Responses.Map() {
				if code == "default" {
					continue
				}
				var n int
				if _, err := fmt.Sscan(code, &n); err != nil || !slices.Contains(seen, n) {
					v.t.Errorf("%s %s: no answer had the documented status %s (seen %v)", method, path, code, seen)
				}
			}
			if !slices.ContainsFunc(seen, func(s int) bool { return s >= 400 }) && !slices.Contains([]string{"getInfo", "getOpenapiJson", "getHealth"}, op.OperationID) {
				v.t.Errorf("%s %s: no error was tried (seen %v)", method, path, seen)
			}
		}
	}
}

// firstEvent reads a Server-Sent Events stream up to its first message
// and checks its data against the schema the document names for them.
func (v *validator) firstEvent(resp *http.Response, path string) map[string]any {
	v.t.Helper()
	defer resp.Body.Close()
	mt := v.doc.Paths.Find(path).Get.Responses.Status(http.StatusOK).Value.Content.Get("text/event-stream")
	ref, ok := mt.Extensions["x-zoe-event-data"].(map[string]any)
	if !ok {
		v.t.Fatalf("GET %s: the document names no schema for the data of its messages", path)
	}
	name := strings.TrimPrefix(fmt.Sprint(ref["$ref"]), "#/components/schemas/")
	schema := v.doc.Components.Schemas[name]
	if schema == nil {
		v.t.Fatalf("GET %s: x-zoe-event-data: no schema %q", path, name)
	}
	lines, done := make(chan string), make(chan struct{})
	defer close(done) // before the body is closed, which ends the scan
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-done:
				return
			}
		}
	}()
	timeout := time.After(time.Minute)
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				v.t.Fatalf("GET %s: the stream ended before a message", path)
			}
			data, isData := strings.CutPrefix(line, "data:")
			if !isData {
				continue
			}
			var value any
			if err := json.Unmarshal([]byte(strings.TrimSpace(data)), &value); err != nil {
				v.t.Fatalf("GET %s: data is not JSON: %q", path, data)
			}
			if err := schema.Value.VisitJSON(value); err != nil {
				v.t.Errorf("GET %s: the data of a message is not a %s: %v\n%s", path, name, err, data)
			}
			m, _ := value.(map[string]any)
			return m
		case <-timeout:
			v.t.Fatalf("GET %s: no message within a minute", path)
		}
	}
}
